//! Hello extensions (RFC 8446 §4.2, RFC 6066, RFC 7301, RFC 5746, RFC 7627,
//! RFC 7366, RFC 5077, RFC 6520, RFC 8449, RFC 7685).
//!
//! Each extension we build or analyse has a typed variant; anything else,
//! and any known extension whose content is well-formed TLS but odd (two
//! server names, non-zero padding), is kept as `Raw` with its bytes, so a
//! decoded hello always re-encodes to the same bytes.

use crate::codepoints::{
    CertificateStatusType, EcPointFormat, ExtensionType, HeartbeatMode, MaxFragmentLength, NamedGroup, ProtocolVersion,
    PskKeyExchangeMode, ServerNameType, SignatureScheme,
};
use crate::error::{DecodeError, EncodeError, Kind};
use crate::reader::Reader;
use crate::writer::Writer;

/// A key share entry (RFC 8446 §4.2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyShareEntry {
    pub group: NamedGroup,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub key_exchange: Vec<u8>,
}

/// A ClientHello extension.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum ClientExtension {
    /// server_name with one host_name entry (RFC 6066 §3).
    ServerName(String),
    SupportedGroups(Vec<NamedGroup>),
    EcPointFormats(Vec<EcPointFormat>),
    SignatureAlgorithms(Vec<SignatureScheme>),
    SignatureAlgorithmsCert(Vec<SignatureScheme>),
    SupportedVersions(Vec<ProtocolVersion>),
    /// key_share; an empty list draws a HelloRetryRequest.
    KeyShare(Vec<KeyShareEntry>),
    PskKeyExchangeModes(Vec<PskKeyExchangeMode>),
    /// status_request of type ocsp with empty responder ids and extensions.
    StatusRequest,
    /// ALPN protocol names (RFC 7301).
    Alpn(Vec<Vec<u8>>),
    /// renegotiation_info with its renegotiated_connection (empty initially).
    RenegotiationInfo(Vec<u8>),
    ExtendedMasterSecret,
    EncryptThenMac,
    /// session_ticket with the ticket (empty to ask for one).
    SessionTicket(Vec<u8>),
    Heartbeat(HeartbeatMode),
    MaxFragmentLength(MaxFragmentLength),
    RecordSizeLimit(u16),
    /// padding of this many zero bytes (RFC 7685).
    Padding(usize),
    /// Any other extension, or a known one with unusual content.
    Raw {
        typ: ExtensionType,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        data: Vec<u8>,
    },
}

impl ClientExtension {
    /// The extension's codepoint.
    pub fn typ(&self) -> ExtensionType {
        use ClientExtension as E;
        match self {
            E::ServerName(_) => ExtensionType::SERVER_NAME,
            E::SupportedGroups(_) => ExtensionType::SUPPORTED_GROUPS,
            E::EcPointFormats(_) => ExtensionType::EC_POINT_FORMATS,
            E::SignatureAlgorithms(_) => ExtensionType::SIGNATURE_ALGORITHMS,
            E::SignatureAlgorithmsCert(_) => ExtensionType::SIGNATURE_ALGORITHMS_CERT,
            E::SupportedVersions(_) => ExtensionType::SUPPORTED_VERSIONS,
            E::KeyShare(_) => ExtensionType::KEY_SHARE,
            E::PskKeyExchangeModes(_) => ExtensionType::PSK_KEY_EXCHANGE_MODES,
            E::StatusRequest => ExtensionType::STATUS_REQUEST,
            E::Alpn(_) => ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION,
            E::RenegotiationInfo(_) => ExtensionType::RENEGOTIATION_INFO,
            E::ExtendedMasterSecret => ExtensionType::EXTENDED_MASTER_SECRET,
            E::EncryptThenMac => ExtensionType::ENCRYPT_THEN_MAC,
            E::SessionTicket(_) => ExtensionType::SESSION_TICKET,
            E::Heartbeat(_) => ExtensionType::HEARTBEAT,
            E::MaxFragmentLength(_) => ExtensionType::MAX_FRAGMENT_LENGTH,
            E::RecordSizeLimit(_) => ExtensionType::RECORD_SIZE_LIMIT,
            E::Padding(_) => ExtensionType::PADDING_0015,
            E::Raw { typ, .. } => *typ,
        }
    }

    /// Writes type, length and body.
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        use ClientExtension as E;
        w.u16(self.typ().0);
        w.u16_prefixed("extension_data", |w| {
            match self {
                E::ServerName(name) => w.u16_prefixed("server_name_list", |w| {
                    w.u8(ServerNameType::HOST_NAME.0);
                    w.u16_prefixed("host_name", |w| {
                        w.bytes(name.as_bytes());
                        Ok(())
                    })
                })?,
                E::SupportedGroups(v) => write_u16s(w, "named_group_list", v.iter().map(|g| g.0))?,
                E::EcPointFormats(v) => w.u8_prefixed("ec_point_format_list", |w| {
                    v.iter().for_each(|f| w.u8(f.0));
                    Ok(())
                })?,
                E::SignatureAlgorithms(v) | E::SignatureAlgorithmsCert(v) => {
                    write_u16s(w, "supported_signature_algorithms", v.iter().map(|s| s.0))?
                }
                E::SupportedVersions(v) => w.u8_prefixed("supported_versions", |w| {
                    v.iter().for_each(|s| w.u16(s.0));
                    Ok(())
                })?,
                E::KeyShare(v) => w.u16_prefixed("client_shares", |w| {
                    for e in v {
                        w.u16(e.group.0);
                        w.u16_prefixed("key_exchange", |w| {
                            w.bytes(&e.key_exchange);
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?,
                E::PskKeyExchangeModes(v) => w.u8_prefixed("ke_modes", |w| {
                    v.iter().for_each(|m| w.u8(m.0));
                    Ok(())
                })?,
                E::StatusRequest => {
                    w.u8(CertificateStatusType::OCSP.0);
                    w.u16(0); // responder_id_list
                    w.u16(0); // request_extensions
                }
                E::Alpn(v) => w.u16_prefixed("protocol_name_list", |w| {
                    for p in v {
                        w.u8_prefixed("protocol_name", |w| {
                            w.bytes(p);
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?,
                E::RenegotiationInfo(v) => w.u8_prefixed("renegotiated_connection", |w| {
                    w.bytes(v);
                    Ok(())
                })?,
                E::ExtendedMasterSecret | E::EncryptThenMac => {}
                E::SessionTicket(t) => w.bytes(t),
                E::Heartbeat(m) => w.u8(m.0),
                E::MaxFragmentLength(m) => w.u8(m.0),
                E::RecordSizeLimit(n) => w.u16(*n),
                E::Padding(n) => w.zeros(*n),
                E::Raw { data, .. } => w.bytes(data),
            }
            Ok(())
        })
    }

    /// Decodes one extension body. Content that is well-formed but does not
    /// fit the typed variant exactly becomes `Raw`, so re-encoding is exact.
    pub fn read(typ: ExtensionType, data: &[u8], base: usize) -> Result<Self, DecodeError> {
        use ClientExtension as E;
        let mut r = Reader::at(data, base);
        let typed = match typ {
            ExtensionType::SERVER_NAME => read_server_name(&mut r)?.map(E::ServerName),
            ExtensionType::SUPPORTED_GROUPS => Some(E::SupportedGroups(
                read_u16s(&mut r, "supported_groups")?
                    .into_iter()
                    .map(NamedGroup)
                    .collect(),
            )),
            ExtensionType::EC_POINT_FORMATS => {
                let mut l = r.nested_u8("ec_point_formats")?;
                Some(E::EcPointFormats(l.rest().iter().map(|&b| EcPointFormat(b)).collect()))
            }
            ExtensionType::SIGNATURE_ALGORITHMS => Some(E::SignatureAlgorithms(
                read_u16s(&mut r, "signature_algorithms")?
                    .into_iter()
                    .map(SignatureScheme)
                    .collect(),
            )),
            ExtensionType::SIGNATURE_ALGORITHMS_CERT => Some(E::SignatureAlgorithmsCert(
                read_u16s(&mut r, "signature_algorithms_cert")?
                    .into_iter()
                    .map(SignatureScheme)
                    .collect(),
            )),
            ExtensionType::SUPPORTED_VERSIONS => {
                let mut l = r.nested_u8("supported_versions")?;
                Some(E::SupportedVersions(
                    l.u16_list("supported_versions")?
                        .into_iter()
                        .map(ProtocolVersion)
                        .collect(),
                ))
            }
            ExtensionType::KEY_SHARE => {
                let mut l = r.nested_u16("key_share.client_shares")?;
                let mut v = Vec::new();
                while !l.is_empty() {
                    let group = NamedGroup(l.u16("key_share.group")?);
                    let key_exchange = l.nested_u16("key_share.key_exchange")?.rest().to_vec();
                    v.push(KeyShareEntry { group, key_exchange });
                }
                Some(E::KeyShare(v))
            }
            ExtensionType::PSK_KEY_EXCHANGE_MODES => {
                let mut l = r.nested_u8("psk_key_exchange_modes")?;
                Some(E::PskKeyExchangeModes(
                    l.rest().iter().map(|&b| PskKeyExchangeMode(b)).collect(),
                ))
            }
            ExtensionType::STATUS_REQUEST if data == [1, 0, 0, 0, 0] => {
                r.rest();
                Some(E::StatusRequest)
            }
            ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION => {
                let mut l = r.nested_u16("alpn.protocol_name_list")?;
                let mut v = Vec::new();
                while !l.is_empty() {
                    v.push(l.nested_u8("alpn.protocol_name")?.rest().to_vec());
                }
                Some(E::Alpn(v))
            }
            ExtensionType::RENEGOTIATION_INFO => {
                Some(E::RenegotiationInfo(r.nested_u8("renegotiation_info")?.rest().to_vec()))
            }
            ExtensionType::EXTENDED_MASTER_SECRET if data.is_empty() => Some(E::ExtendedMasterSecret),
            ExtensionType::ENCRYPT_THEN_MAC if data.is_empty() => Some(E::EncryptThenMac),
            ExtensionType::SESSION_TICKET => Some(E::SessionTicket(r.rest().to_vec())),
            ExtensionType::HEARTBEAT if data.len() == 1 => Some(E::Heartbeat(HeartbeatMode(r.u8("heartbeat.mode")?))),
            ExtensionType::MAX_FRAGMENT_LENGTH if data.len() == 1 => {
                Some(E::MaxFragmentLength(MaxFragmentLength(r.u8("max_fragment_length")?)))
            }
            ExtensionType::RECORD_SIZE_LIMIT if data.len() == 2 => {
                Some(E::RecordSizeLimit(r.u16("record_size_limit")?))
            }
            ExtensionType::PADDING_0015 if data.iter().all(|&b| b == 0) => Some(E::Padding(r.rest().len())),
            _ => None,
        };
        match typed {
            Some(e) => {
                r.finish(field_of(typ))?;
                Ok(e)
            }
            None => Ok(E::Raw {
                typ,
                data: data.to_vec(),
            }),
        }
    }
}

/// A ServerHello or HelloRetryRequest extension.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum ServerExtension {
    /// The version the server selected (RFC 8446 §4.2.1).
    SupportedVersions(ProtocolVersion),
    /// The server's share (ServerHello).
    KeyShare(KeyShareEntry),
    /// The group the server asks for (HelloRetryRequest).
    KeyShareRetry(NamedGroup),
    /// A cookie to echo (HelloRetryRequest).
    Cookie(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))] Vec<u8>),
    /// The selected ALPN protocol.
    Alpn(Vec<u8>),
    RenegotiationInfo(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))] Vec<u8>),
    ExtendedMasterSecret,
    EncryptThenMac,
    /// The server will send a NewSessionTicket (empty body).
    SessionTicket,
    /// The server will staple an OCSP response (empty body).
    StatusRequest,
    /// The server saw our SNI (empty body).
    ServerName,
    EcPointFormats(Vec<EcPointFormat>),
    Heartbeat(HeartbeatMode),
    MaxFragmentLength(MaxFragmentLength),
    RecordSizeLimit(u16),
    /// The PSK identity the server selected.
    PreSharedKey(u16),
    Raw {
        typ: ExtensionType,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        data: Vec<u8>,
    },
}

impl ServerExtension {
    pub fn typ(&self) -> ExtensionType {
        use ServerExtension as E;
        match self {
            E::SupportedVersions(_) => ExtensionType::SUPPORTED_VERSIONS,
            E::KeyShare(_) | E::KeyShareRetry(_) => ExtensionType::KEY_SHARE,
            E::Cookie(_) => ExtensionType::COOKIE,
            E::Alpn(_) => ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION,
            E::RenegotiationInfo(_) => ExtensionType::RENEGOTIATION_INFO,
            E::ExtendedMasterSecret => ExtensionType::EXTENDED_MASTER_SECRET,
            E::EncryptThenMac => ExtensionType::ENCRYPT_THEN_MAC,
            E::SessionTicket => ExtensionType::SESSION_TICKET,
            E::StatusRequest => ExtensionType::STATUS_REQUEST,
            E::ServerName => ExtensionType::SERVER_NAME,
            E::EcPointFormats(_) => ExtensionType::EC_POINT_FORMATS,
            E::Heartbeat(_) => ExtensionType::HEARTBEAT,
            E::MaxFragmentLength(_) => ExtensionType::MAX_FRAGMENT_LENGTH,
            E::RecordSizeLimit(_) => ExtensionType::RECORD_SIZE_LIMIT,
            E::PreSharedKey(_) => ExtensionType::PRE_SHARED_KEY,
            E::Raw { typ, .. } => *typ,
        }
    }

    /// Writes type, length and body (the emulator and tests build server hellos).
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        use ServerExtension as E;
        w.u16(self.typ().0);
        w.u16_prefixed("extension_data", |w| {
            match self {
                E::SupportedVersions(v) => w.u16(v.0),
                E::KeyShare(e) => {
                    w.u16(e.group.0);
                    w.u16_prefixed("key_exchange", |w| {
                        w.bytes(&e.key_exchange);
                        Ok(())
                    })?;
                }
                E::KeyShareRetry(g) => w.u16(g.0),
                E::Cookie(c) => w.u16_prefixed("cookie", |w| {
                    w.bytes(c);
                    Ok(())
                })?,
                E::Alpn(p) => w.u16_prefixed("protocol_name_list", |w| {
                    w.u8_prefixed("protocol_name", |w| {
                        w.bytes(p);
                        Ok(())
                    })
                })?,
                E::RenegotiationInfo(v) => w.u8_prefixed("renegotiated_connection", |w| {
                    w.bytes(v);
                    Ok(())
                })?,
                E::ExtendedMasterSecret | E::EncryptThenMac | E::SessionTicket | E::StatusRequest | E::ServerName => {}
                E::EcPointFormats(v) => w.u8_prefixed("ec_point_format_list", |w| {
                    v.iter().for_each(|f| w.u8(f.0));
                    Ok(())
                })?,
                E::Heartbeat(m) => w.u8(m.0),
                E::MaxFragmentLength(m) => w.u8(m.0),
                E::RecordSizeLimit(n) => w.u16(*n),
                E::PreSharedKey(n) => w.u16(*n),
                E::Raw { data, .. } => w.bytes(data),
            }
            Ok(())
        })
    }

    /// Decodes one extension of a ServerHello (`retry` for a HelloRetryRequest,
    /// whose key_share carries only the selected group).
    pub fn read(typ: ExtensionType, data: &[u8], base: usize, retry: bool) -> Result<Self, DecodeError> {
        use ServerExtension as E;
        let mut r = Reader::at(data, base);
        let typed = match typ {
            ExtensionType::SUPPORTED_VERSIONS => Some(E::SupportedVersions(ProtocolVersion(
                r.u16("supported_versions.selected_version")?,
            ))),
            ExtensionType::KEY_SHARE if retry => Some(E::KeyShareRetry(NamedGroup(r.u16("key_share.selected_group")?))),
            ExtensionType::KEY_SHARE => {
                let group = NamedGroup(r.u16("key_share.group")?);
                let key_exchange = r.nested_u16("key_share.key_exchange")?.rest().to_vec();
                Some(E::KeyShare(KeyShareEntry { group, key_exchange }))
            }
            ExtensionType::COOKIE => Some(E::Cookie(r.nested_u16("cookie")?.rest().to_vec())),
            ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION => {
                let mut l = r.nested_u16("alpn.protocol_name_list")?;
                let p = l.nested_u8("alpn.protocol_name")?.rest().to_vec();
                // RFC 7301 §3.1: exactly one protocol in the server's list.
                l.finish("alpn.protocol_name_list")?;
                Some(E::Alpn(p))
            }
            ExtensionType::RENEGOTIATION_INFO => {
                Some(E::RenegotiationInfo(r.nested_u8("renegotiation_info")?.rest().to_vec()))
            }
            ExtensionType::EXTENDED_MASTER_SECRET if data.is_empty() => Some(E::ExtendedMasterSecret),
            ExtensionType::ENCRYPT_THEN_MAC if data.is_empty() => Some(E::EncryptThenMac),
            ExtensionType::SESSION_TICKET if data.is_empty() => Some(E::SessionTicket),
            ExtensionType::STATUS_REQUEST if data.is_empty() => Some(E::StatusRequest),
            ExtensionType::SERVER_NAME if data.is_empty() => Some(E::ServerName),
            ExtensionType::EC_POINT_FORMATS => {
                let mut l = r.nested_u8("ec_point_formats")?;
                Some(E::EcPointFormats(l.rest().iter().map(|&b| EcPointFormat(b)).collect()))
            }
            ExtensionType::HEARTBEAT if data.len() == 1 => Some(E::Heartbeat(HeartbeatMode(r.u8("heartbeat.mode")?))),
            ExtensionType::MAX_FRAGMENT_LENGTH if data.len() == 1 => {
                Some(E::MaxFragmentLength(MaxFragmentLength(r.u8("max_fragment_length")?)))
            }
            ExtensionType::RECORD_SIZE_LIMIT if data.len() == 2 => {
                Some(E::RecordSizeLimit(r.u16("record_size_limit")?))
            }
            ExtensionType::PRE_SHARED_KEY if data.len() == 2 => {
                Some(E::PreSharedKey(r.u16("pre_shared_key.selected_identity")?))
            }
            _ => None,
        };
        match typed {
            Some(e) => {
                r.finish(field_of(typ))?;
                Ok(e)
            }
            None => Ok(E::Raw {
                typ,
                data: data.to_vec(),
            }),
        }
    }
}

/// Reads an extensions block (`u16` length, then type/length/body entries),
/// refusing duplicates (RFC 8446 §4.2).
pub(crate) fn read_block<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    mut one: impl FnMut(ExtensionType, &[u8], usize) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut l = r.nested_u16(field)?;
    let mut out = Vec::new();
    // At most 65535/4 extensions fit: a bitmap would be 8 KiB, a sorted
    // list of seen types is cheaper for real hellos (< 30 extensions).
    let mut seen: Vec<u16> = Vec::new();
    while !l.is_empty() {
        let at = l.offset();
        let typ = ExtensionType(l.u16("extension.type")?);
        let mut body = l.nested_u16("extension.data")?;
        match seen.binary_search(&typ.0) {
            Ok(_) => {
                return Err(DecodeError {
                    field: "extension.type",
                    offset: at,
                    kind: Kind::DuplicateExtension(typ.0),
                })
            }
            Err(i) => seen.insert(i, typ.0),
        }
        let base = body.offset();
        out.push(one(typ, body.rest(), base)?);
    }
    Ok(out)
}

fn read_server_name(r: &mut Reader<'_>) -> Result<Option<String>, DecodeError> {
    let mut list = r.nested_u16("server_name.server_name_list")?;
    let typ = list.u8("server_name.name_type")?;
    let name = list.nested_u16("server_name.host_name")?.rest();
    if typ != ServerNameType::HOST_NAME.0 || !list.is_empty() {
        return Ok(None);
    }
    Ok(std::str::from_utf8(name).ok().map(str::to_owned))
}

fn read_u16s(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u16>, DecodeError> {
    r.nested_u16(field)?.u16_list(field)
}

fn write_u16s(w: &mut Writer, field: &'static str, v: impl Iterator<Item = u16>) -> Result<(), EncodeError> {
    w.u16_prefixed(field, |w| {
        v.for_each(|x| w.u16(x));
        Ok(())
    })
}

fn field_of(typ: ExtensionType) -> &'static str {
    typ.name().unwrap_or("extension.data")
}
