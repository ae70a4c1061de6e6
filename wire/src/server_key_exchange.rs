//! ServerKeyExchange (RFC 5246 §7.4.3, RFC 8422 §5.4, RFC 4279 §2, RFC 4346
//! §A.5 for export RSA). The body's layout depends on the negotiated suite,
//! so a caller without that context keeps it `Opaque`.

use crate::catalog;
use crate::codepoints::{CipherSuite, EcCurveType, NamedGroup, ProtocolVersion, SignatureScheme};
use crate::error::{DecodeError, EncodeError};
use crate::handshake::{write_message, HandshakeType};
use crate::reader::Reader;
use crate::writer::Writer;

/// The signature over the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DigitallySigned {
    /// TLS 1.2's SignatureAndHashAlgorithm; `None` before TLS 1.2.
    pub scheme: Option<SignatureScheme>,
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
    pub signature: Vec<u8>,
}

/// Which parameter layout a suite's ServerKeyExchange has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyExchangeLayout {
    /// ServerECDHParams (ECDHE, ECDH_anon), after a PSK hint for ECDHE_PSK.
    Ecdh { psk_hint: bool, signed: bool },
    /// ServerDHParams (DHE, DH_anon), after a PSK hint for DHE_PSK.
    Dh { psk_hint: bool, signed: bool },
    /// Temporary RSA key of an export suite.
    RsaExport,
    /// A PSK identity hint only (PSK, RSA_PSK).
    PskHint,
    /// Anything else (SRP, GOST, KRB5, …): kept as bytes.
    Other,
}

impl KeyExchangeLayout {
    /// The layout for `suite`, from the catalog's kx and auth columns.
    pub fn of(suite: CipherSuite) -> Self {
        let Some(p) = catalog::suite(suite).and_then(|s| s.properties) else {
            return Self::Other;
        };
        let anon = p.auth == "anon";
        match p.kx {
            "ECDHE" => Self::Ecdh {
                psk_hint: false,
                signed: !anon,
            },
            "ECDH" if anon => Self::Ecdh {
                psk_hint: false,
                signed: false,
            },
            "ECDHE_PSK" => Self::Ecdh {
                psk_hint: true,
                signed: false,
            },
            "DHE" | "DHE(512)" | "DHE(1024)" => Self::Dh {
                psk_hint: false,
                signed: !anon,
            },
            "DH" | "DH(512)" if anon => Self::Dh {
                psk_hint: false,
                signed: false,
            },
            "DHE_PSK" => Self::Dh {
                psk_hint: true,
                signed: false,
            },
            "RSA(512)" | "RSA(1024)" => Self::RsaExport,
            "PSK" | "RSA_PSK" => Self::PskHint,
            _ => Self::Other,
        }
    }
}

/// A decoded ServerKeyExchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum ServerKeyExchange {
    Ecdh {
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        psk_hint: Vec<u8>,
        curve_type: EcCurveType,
        /// The named curve (explicit curves are kept as `Opaque`).
        group: Option<NamedGroup>,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        public: Vec<u8>,
        signature: Option<DigitallySigned>,
    },
    Dh {
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        psk_hint: Vec<u8>,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        p: Vec<u8>,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        g: Vec<u8>,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        ys: Vec<u8>,
        signature: Option<DigitallySigned>,
    },
    RsaExport {
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        modulus: Vec<u8>,
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))]
        exponent: Vec<u8>,
        signature: Option<DigitallySigned>,
    },
    PskHint(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))] Vec<u8>),
    Opaque(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex_bytes"))] Vec<u8>),
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
pub fn bit_len(n: &[u8]) -> usize {
    let trimmed: &[u8] = match n.iter().position(|&b| b != 0) {
        Some(i) => n.get(i..).unwrap_or(&[]),
        None => &[],
    };
    match trimmed.first() {
        Some(&b) => 8 * trimmed.len() - b.leading_zeros() as usize,
        None => 0,
    }
}

impl ServerKeyExchange {
    /// Decodes a body for the negotiated `suite` and `version`.
    pub fn read_body(
        body: &[u8],
        base: usize,
        suite: CipherSuite,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::at(body, base);
        let tls12 = version == ProtocolVersion::TLS12;
        let layout = KeyExchangeLayout::of(suite);
        let hint = |r: &mut Reader<'_>, yes: bool| -> Result<Vec<u8>, DecodeError> {
            if yes {
                Ok(r.nested_u16("server_key_exchange.psk_identity_hint")?.rest().to_vec())
            } else {
                Ok(Vec::new())
            }
        };
        let ske = match layout {
            KeyExchangeLayout::Ecdh { psk_hint, signed } => {
                let psk_hint = hint(&mut r, psk_hint)?;
                let curve_type = EcCurveType(r.u8("server_key_exchange.curve_type")?);
                if curve_type != EcCurveType::NAMED_CURVE {
                    // Explicit curves (deprecated by RFC 8422): keep the body whole.
                    return Ok(Self::Opaque(body.to_vec()));
                }
                let group = Some(NamedGroup(r.u16("server_key_exchange.named_curve")?));
                let public = r.nested_u8("server_key_exchange.ec_point")?.rest().to_vec();
                let signature = read_signature(&mut r, signed, tls12)?;
                Self::Ecdh {
                    psk_hint,
                    curve_type,
                    group,
                    public,
                    signature,
                }
            }
            KeyExchangeLayout::Dh { psk_hint, signed } => {
                let psk_hint = hint(&mut r, psk_hint)?;
                let p = r.nested_u16("server_key_exchange.dh_p")?.rest().to_vec();
                let g = r.nested_u16("server_key_exchange.dh_g")?.rest().to_vec();
                let ys = r.nested_u16("server_key_exchange.dh_Ys")?.rest().to_vec();
                let signature = read_signature(&mut r, signed, tls12)?;
                Self::Dh {
                    psk_hint,
                    p,
                    g,
                    ys,
                    signature,
                }
            }
            KeyExchangeLayout::RsaExport => {
                let modulus = r.nested_u16("server_key_exchange.rsa_modulus")?.rest().to_vec();
                let exponent = r.nested_u16("server_key_exchange.rsa_exponent")?.rest().to_vec();
                let signature = read_signature(&mut r, true, tls12)?;
                Self::RsaExport {
                    modulus,
                    exponent,
                    signature,
                }
            }
            KeyExchangeLayout::PskHint => {
                Self::PskHint(r.nested_u16("server_key_exchange.psk_identity_hint")?.rest().to_vec())
            }
            KeyExchangeLayout::Other => Self::Opaque(r.rest().to_vec()),
        };
        r.finish("server_key_exchange")?;
        Ok(ske)
    }

    /// The named group of an ECDHE exchange.
    pub fn group(&self) -> Option<NamedGroup> {
        match self {
            Self::Ecdh { group, .. } => *group,
            _ => None,
        }
    }

    /// Bits of the DH prime (or of the export RSA modulus).
    pub fn modulus_bits(&self) -> Option<usize> {
        match self {
            Self::Dh { p, .. } => Some(bit_len(p)),
            Self::RsaExport { modulus, .. } => Some(bit_len(modulus)),
            _ => None,
        }
    }

    /// The TLS 1.2 signature scheme, when there is one.
    pub fn signature_scheme(&self) -> Option<SignatureScheme> {
        match self {
            Self::Ecdh { signature, .. } | Self::Dh { signature, .. } | Self::RsaExport { signature, .. } => {
                signature.as_ref().and_then(|s| s.scheme)
            }
            _ => None,
        }
    }

    /// Writes the handshake message. Signatures are whatever bytes the
    /// value holds: the caller signs (this crate does no cryptography).
    pub fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_message(w, HandshakeType::SERVER_KEY_EXCHANGE, "server_key_exchange", |w| {
            let (hint, signature) = match self {
                Self::Ecdh {
                    psk_hint, signature, ..
                }
                | Self::Dh {
                    psk_hint, signature, ..
                } => (psk_hint.as_slice(), signature.as_ref()),
                Self::RsaExport { signature, .. } => (&[][..], signature.as_ref()),
                Self::PskHint(_) | Self::Opaque(_) => (&[][..], None),
            };
            if !hint.is_empty() {
                write_v16(w, "psk_identity_hint", hint)?;
            }
            self.write_params(w)?;
            write_signature(w, signature)
        })
    }

    /// The parameters a signature covers after the two hello randoms
    /// (RFC 5246 §7.4.3, RFC 8422 §5.4, RFC 4346 §7.4.3): ServerDHParams,
    /// ServerECDHParams or the export ServerRSAParams, as written.
    pub fn signed_params(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        self.write_params(&mut w)?;
        Ok(w.into_bytes())
    }

    /// The body between the PSK hint and the signature.
    fn write_params(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            Self::Ecdh {
                curve_type,
                group,
                public,
                ..
            } => {
                w.u8(curve_type.0);
                if let Some(g) = group {
                    w.u16(g.0);
                }
                w.u8_prefixed("ec_point", |w| {
                    w.bytes(public);
                    Ok(())
                })?;
            }
            Self::Dh { p, g, ys, .. } => {
                write_v16(w, "dh_p", p)?;
                write_v16(w, "dh_g", g)?;
                write_v16(w, "dh_Ys", ys)?;
            }
            Self::RsaExport { modulus, exponent, .. } => {
                write_v16(w, "rsa_modulus", modulus)?;
                write_v16(w, "rsa_exponent", exponent)?;
            }
            Self::PskHint(h) => write_v16(w, "psk_identity_hint", h)?,
            Self::Opaque(b) => w.bytes(b),
        }
        Ok(())
    }
}

fn write_v16(w: &mut Writer, field: &'static str, b: &[u8]) -> Result<(), EncodeError> {
    w.u16_prefixed(field, |w| {
        w.bytes(b);
        Ok(())
    })
}

fn read_signature(r: &mut Reader<'_>, signed: bool, tls12: bool) -> Result<Option<DigitallySigned>, DecodeError> {
    if !signed {
        return Ok(None);
    }
    let scheme = if tls12 {
        Some(SignatureScheme(r.u16("server_key_exchange.signature_algorithm")?))
    } else {
        None
    };
    let signature = r.nested_u16("server_key_exchange.signature")?.rest().to_vec();
    Ok(Some(DigitallySigned { scheme, signature }))
}

fn write_signature(w: &mut Writer, s: Option<&DigitallySigned>) -> Result<(), EncodeError> {
    if let Some(s) = s {
        if let Some(scheme) = s.scheme {
            w.u16(scheme.0);
        }
        w.u16_prefixed("signature", |w| {
            w.bytes(&s.signature);
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_follow_the_catalog() {
        assert_eq!(
            KeyExchangeLayout::of(CipherSuite(0xc02f)),
            KeyExchangeLayout::Ecdh {
                psk_hint: false,
                signed: true
            }
        );
        assert_eq!(
            KeyExchangeLayout::of(CipherSuite(0x009e)),
            KeyExchangeLayout::Dh {
                psk_hint: false,
                signed: true
            }
        );
        assert_eq!(
            KeyExchangeLayout::of(CipherSuite(0x0034)),
            KeyExchangeLayout::Dh {
                psk_hint: false,
                signed: false
            }
        ); // ADH-AES128-SHA
        assert_eq!(
            KeyExchangeLayout::of(CipherSuite(0xc018)),
            KeyExchangeLayout::Ecdh {
                psk_hint: false,
                signed: false
            }
        ); // AECDH-AES128-SHA
        assert_eq!(KeyExchangeLayout::of(CipherSuite(0x0003)), KeyExchangeLayout::RsaExport);
        assert_eq!(KeyExchangeLayout::of(CipherSuite(0x002f)), KeyExchangeLayout::Other);
    }

    #[test]
    fn signed_params_are_the_body_between_hint_and_signature() {
        let ske = ServerKeyExchange::Ecdh {
            psk_hint: Vec::new(),
            curve_type: EcCurveType::NAMED_CURVE,
            group: Some(NamedGroup::X25519),
            public: vec![9; 32],
            signature: Some(DigitallySigned {
                scheme: Some(SignatureScheme::RSA_PKCS1_SHA256),
                signature: vec![7; 4],
            }),
        };
        let params = ske.signed_params().unwrap();
        // RFC 8422 §5.4: curve_type, named curve, opaque point<1..2^8-1>.
        assert_eq!(params[..5], [3, 0x00, 0x1d, 32, 9]);
        assert_eq!(params.len(), 4 + 32);
        let mut w = Writer::new();
        ske.write(&mut w).unwrap();
        let body = &w.as_bytes()[4..];
        assert_eq!(&body[..params.len()], params.as_slice());
        assert_eq!(&body[params.len()..], [0x04, 0x01, 0, 4, 7, 7, 7, 7]);
        let read = ServerKeyExchange::read_body(body, 0, CipherSuite(0xc02f), ProtocolVersion::TLS12).unwrap();
        assert_eq!(read, ske);
    }

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[]), 0);
    }
}
