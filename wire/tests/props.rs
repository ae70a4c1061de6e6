//! Property tests: every hello the builder can make decodes back to the
//! same value, whatever its framing; arbitrary bytes never panic and never
//! make the deframer hold more than its caps.

use hsscan_wire::deframer::{Deframer, Event, Side, MAX_BUFFERED, MAX_HANDSHAKE_LEN};
use hsscan_wire::*;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![
        Just(ProtocolVersion::SSL3),
        Just(ProtocolVersion::TLS10),
        Just(ProtocolVersion::TLS11),
        Just(ProtocolVersion::TLS12),
        Just(ProtocolVersion::TLS13),
        any::<u16>().prop_map(ProtocolVersion),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn u16s<T: From<u16> + std::fmt::Debug>(max: usize) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(any::<u16>().prop_map(T::from), 0..=max)
}

fn u8s<T: From<u8> + std::fmt::Debug>(max: usize) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(any::<u8>().prop_map(T::from), 0..=max)
}

/// Extension types the decoder does not type, for `Raw`.
fn raw_type() -> impl Strategy<Value = ExtensionType> {
    prop_oneof![
        Just(ExtensionType::SIGNED_CERTIFICATE_TIMESTAMP),
        Just(ExtensionType::EARLY_DATA),
        Just(ExtensionType::COMPRESS_CERTIFICATE),
        Just(ExtensionType::ENCRYPTED_CLIENT_HELLO),
        Just(ExtensionType(0x0a0a)),
        Just(ExtensionType(0x4469)),
    ]
}

fn client_extension() -> impl Strategy<Value = ClientExtension> {
    use ClientExtension as E;
    prop_oneof![
        "[a-z0-9.-]{0,64}".prop_map(E::ServerName),
        u16s(40).prop_map(E::SupportedGroups),
        u8s(8).prop_map(E::EcPointFormats),
        u16s(40).prop_map(E::SignatureAlgorithms),
        u16s(10).prop_map(E::SignatureAlgorithmsCert),
        u16s(8).prop_map(E::SupportedVersions),
        prop::collection::vec(
            (any::<u16>(), bytes(200)).prop_map(|(g, k)| KeyShareEntry {
                group: NamedGroup(g),
                key_exchange: k
            }),
            0..4
        )
        .prop_map(E::KeyShare),
        u8s(3).prop_map(E::PskKeyExchangeModes),
        Just(E::StatusRequest),
        prop::collection::vec(bytes(20), 0..4).prop_map(E::Alpn),
        bytes(48).prop_map(E::RenegotiationInfo),
        Just(E::ExtendedMasterSecret),
        Just(E::EncryptThenMac),
        bytes(200).prop_map(E::SessionTicket),
        any::<u8>().prop_map(|m| E::Heartbeat(HeartbeatMode(m))),
        any::<u8>().prop_map(|m| E::MaxFragmentLength(MaxFragmentLength(m))),
        any::<u16>().prop_map(E::RecordSizeLimit),
        (0usize..600).prop_map(E::Padding),
        (raw_type(), bytes(100)).prop_map(|(typ, data)| E::Raw { typ, data }),
    ]
}

prop_compose! {
    fn client_hello()(
        legacy_version in version(),
        random in any::<[u8; 32]>(),
        session_id in bytes(32),
        cipher_suites in u16s::<CipherSuite>(500),
        compression_methods in prop::collection::vec(any::<u8>().prop_map(CompressionMethod), 1..4),
        extensions in prop::option::of(prop::collection::vec(client_extension(), 0..20)),
    ) -> ClientHello {
        // An extension type appears at most once (RFC 8446 §4.2).
        let extensions = extensions.map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|e| seen.insert(e.typ()));
            v
        });
        ClientHello { legacy_version, random, session_id, cipher_suites, compression_methods, extensions }
    }
}

fn server_extension(retry: bool) -> impl Strategy<Value = ServerExtension> {
    use ServerExtension as E;
    let share = if retry {
        any::<u16>().prop_map(|g| E::KeyShareRetry(NamedGroup(g))).boxed()
    } else {
        (any::<u16>(), bytes(100))
            .prop_map(|(g, k)| {
                E::KeyShare(KeyShareEntry {
                    group: NamedGroup(g),
                    key_exchange: k,
                })
            })
            .boxed()
    };
    prop_oneof![
        any::<u16>().prop_map(|v| E::SupportedVersions(ProtocolVersion(v))),
        share,
        bytes(40).prop_map(E::Cookie),
        bytes(20).prop_map(E::Alpn),
        bytes(48).prop_map(E::RenegotiationInfo),
        Just(E::ExtendedMasterSecret),
        Just(E::EncryptThenMac),
        Just(E::SessionTicket),
        Just(E::StatusRequest),
        Just(E::ServerName),
        u8s(4).prop_map(E::EcPointFormats),
        any::<u8>().prop_map(|m| E::Heartbeat(HeartbeatMode(m))),
        any::<u16>().prop_map(E::RecordSizeLimit),
        any::<u16>().prop_map(E::PreSharedKey),
        (raw_type(), bytes(50)).prop_map(|(typ, data)| E::Raw { typ, data }),
    ]
}

prop_compose! {
    fn server_hello()(
        retry in any::<bool>(),
    )(
        legacy_version in version(),
        random in any::<[u8; 32]>().prop_map(move |r| if retry { server_hello::HELLO_RETRY_REQUEST_RANDOM } else { r }),
        session_id in bytes(32),
        cipher_suite in any::<u16>().prop_map(CipherSuite),
        compression in any::<u8>().prop_map(CompressionMethod),
        extensions in prop::option::of(prop::collection::vec(server_extension(retry), 0..10)),
    ) -> ServerHello {
        let extensions = extensions.map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|e| seen.insert(e.typ()));
            v
        });
        // Before TLS 1.3 draft 22 a ServerHello has no session id, no
        // compression method, and always an extensions block.
        let draft = legacy_version.0 & 0xff00 == 0x7f00 && legacy_version.0 & 0xff < 22;
        let (session_id, compression, extensions) = if draft {
            (Vec::new(), CompressionMethod::NULL, Some(extensions.unwrap_or_default()))
        } else {
            (session_id, compression, extensions)
        };
        ServerHello { legacy_version, random, session_id, cipher_suite, compression, extensions }
    }
}

fn framing(len: usize) -> impl Strategy<Value = Framing> {
    (
        version(),
        prop::collection::vec(1usize..300, 0..6),
        prop::collection::vec(1usize..400, 0..6),
    )
        .prop_map(move |(v, records, writes)| {
            let _ = len;
            Framing {
                record_version: ProtocolVersion(0x0300 | (v.0 & 0x00ff)),
                record_sizes: records,
                write_sizes: writes,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn built_hello_decodes_to_the_same_value(hello in client_hello()) {
        let bytes = hello.to_bytes().unwrap();
        prop_assert_eq!(ClientHello::read_message(&bytes).unwrap(), hello);
    }

    #[test]
    fn hello_survives_any_framing(hello in client_hello(), framing in framing(0)) {
        let writes = hello.to_writes(&framing).unwrap();
        let mut d = Deframer::new(Side::Client);
        let mut events = Vec::new();
        for w in &writes {
            d.push(w).unwrap();
            while let Some(e) = d.next_event().unwrap() {
                events.push(e);
            }
        }
        prop_assert_eq!(events, vec![Event::ClientHello(hello)]);
        let f = d.hello_framing().unwrap();
        prop_assert_eq!(f.record_version, framing.record_version);
        prop_assert_eq!(f.bytes, writes.iter().map(Vec::len).sum::<usize>());
    }

    #[test]
    fn padding_reaches_the_requested_length(hello in client_hello(), extra in 4usize..700) {
        let mut hello = hello;
        hello.extensions.get_or_insert_with(Vec::new).retain(|e| !matches!(e, ClientExtension::Padding(_)));
        if hello.extensions.as_ref().is_some_and(|e| e.len() >= 19) {
            return Ok(());
        }
        // Any length at least four bytes past the unpadded hello is reachable.
        let base = hello.to_record(ProtocolVersion::TLS10).unwrap().len();
        let target = base + extra;
        hello.pad_to(target).unwrap();
        prop_assert_eq!(hello.to_record(ProtocolVersion::TLS10).unwrap().len(), target);
    }

    #[test]
    fn built_server_hello_decodes_to_the_same_value(hello in server_hello()) {
        let mut w = Writer::new();
        hello.write(&mut w).unwrap();
        let record = Framing::single(ProtocolVersion::TLS12).frame(ContentType::HANDSHAKE, w.as_bytes()).unwrap().concat();
        let mut d = Deframer::new(Side::Server);
        d.push(&record).unwrap();
        let event = d.next_event().unwrap().unwrap();
        let decoded = match event {
            Event::ServerHello(h) | Event::HelloRetryRequest(h) => h,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(decoded.is_retry_request(), hello.is_retry_request());
        prop_assert_eq!(decoded, hello);
    }

    #[test]
    fn certificate_chain_round_trips(certs in prop::collection::vec((bytes(300).prop_filter("non-empty", |b| !b.is_empty()), bytes(20)), 0..6), tls13 in any::<bool>(), ctx in bytes(8)) {
        let c = Certificate {
            context: tls13.then_some(ctx),
            entries: certs.into_iter().map(|(der, ext)| CertificateEntry { der, extensions: if tls13 { ext } else { vec![] } }).collect(),
            omitted: Default::default(),
        };
        let mut w = Writer::new();
        c.write(&mut w).unwrap();
        prop_assert_eq!(Certificate::read_body(&w.as_bytes()[4..], 4, tls13).unwrap(), c);
    }

    #[test]
    fn sslv2_client_hello_round_trips(version in version(), specs in prop::collection::vec(0u32..0x100_0000, 0..60), sid in bytes(16), challenge in bytes(32)) {
        let hello = Sslv2ClientHello { version, cipher_specs: specs.into_iter().map(Sslv2CipherSpec).collect(), session_id: sid, challenge };
        let record = hello.to_record().unwrap();
        prop_assert_eq!(Sslv2ClientHello::read_body(&record[2..], 2).unwrap(), hello.clone());
        let mut d = Deframer::new(Side::Client);
        d.push(&record).unwrap();
        // A v2 record whose type byte happens to be a TLS content type is not v2;
        // real v2 hellos have the high bit set, which `to_record` guarantees.
        prop_assert_eq!(d.next_event().unwrap(), Some(Event::Sslv2ClientHello(hello)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(3000)) {
        hsscan_wire::fuzzing::deframer(&data);
        hsscan_wire::fuzzing::client_hello(&data);
        hsscan_wire::fuzzing::server_flight(&data);
        hsscan_wire::fuzzing::certificate(&data);
        let _ = ServerHello::read_body(&data, 0);
        let _ = Sslv2ServerHello::read_body(&data, 0);
        let _ = Sslv2ClientHello::read_body(&data, 0);
        let _ = CertificateStatus::read_body(&data, 0);
        let _ = CertificateRequest::read_body(&data, 0, true);
    }

    #[test]
    fn tls_shaped_garbage_never_panics(records in prop::collection::vec((20u8..25, 0u8..5, bytes(64)), 0..20)) {
        // Valid record headers around random bodies reach the message decoders.
        let mut stream = Vec::new();
        for (ct, minor, body) in records {
            stream.extend_from_slice(&[ct, 3, minor]);
            stream.extend_from_slice(&(body.len() as u16).to_be_bytes());
            stream.extend_from_slice(&body);
        }
        hsscan_wire::fuzzing::deframer(&stream);
    }

}

proptest! {
    // Large inputs: few cases, each pushing up to ~1.5 MiB.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn deframer_holds_no_more_than_its_caps(first in 20u8..25, chunks in prop::collection::vec(bytes(40_000), 1..40)) {
        let mut d = Deframer::new(Side::Server);
        d.push(&[first, 3, 3]).unwrap();
        for c in &chunks {
            if d.push(c).is_err() {
                break;
            }
            prop_assert!(d.unconsumed().len() <= MAX_BUFFERED);
            while let Ok(Some(_)) = d.next_event() {}
        }
    }
}

#[test]
fn an_oversized_handshake_length_fails_before_its_body_arrives() {
    let mut d = Deframer::new(Side::Server);
    // One record holding only the header of a 16 MiB ServerKeyExchange (a
    // Certificate message that long is legal, and read as it streams in).
    d.push(&[22, 3, 3, 0, 4, 12, 0xff, 0xff, 0xff]).unwrap();
    let e = d.next_event().unwrap_err();
    assert_eq!(e.field, "handshake.length");
    assert!(matches!(e.kind, Kind::TooLong { max, .. } if max == MAX_HANDSHAKE_LEN));
    // It stays failed.
    assert!(d.next_event().is_err());
}

#[test]
fn a_flood_of_unread_bytes_is_refused() {
    let mut d = Deframer::new(Side::Server);
    // A record header announcing 18 KiB keeps the deframer waiting; the
    // caller pushing a mebibyte without draining is refused.
    assert!(d.push(&vec![0x17; MAX_BUFFERED]).is_ok());
    assert!(d.push(&[0x17]).is_err());
}

#[test]
fn plaintext_reply_is_an_event() {
    let mut d = Deframer::new(Side::Server);
    d.push(b"220 mx.example.net ESMTP Postfix\r\n").unwrap();
    assert_eq!(
        d.next_event().unwrap(),
        Some(Event::NotTls(b"220 mx.example.net ESMTP Postfix\r\n".to_vec()))
    );
    assert_eq!(d.next_event().unwrap(), None);
}

#[test]
fn partial_plaintext_line_waits_for_the_newline() {
    let mut d = Deframer::new(Side::Server);
    d.push(b"220 mx.exa").unwrap();
    assert_eq!(d.next_event().unwrap(), None);
    assert_eq!(d.unconsumed(), b"220 mx.exa");
    d.push(b"mple\r\n").unwrap();
    assert!(matches!(d.next_event().unwrap(), Some(Event::NotTls(_))));
}

#[test]
fn garbage_after_a_valid_record_names_the_offset() {
    let mut d = Deframer::new(Side::Server);
    d.push(&[21, 3, 3, 0, 2, 2, 40, 0x99]).unwrap();
    assert!(matches!(d.next_event().unwrap(), Some(Event::Alert(_))));
    let e = d.next_event().unwrap_err();
    assert_eq!((e.field, e.offset), ("record.content_type", 7));
}

#[test]
fn sslv2_server_hello_and_error_are_recognised() {
    let hello = [
        0x80, 0x12, 4, 0, 1, 0, 2, 0, 2, 0, 3, 0, 2, 0xaa, 0xbb, 0x01, 0x00, 0x80, 0xcc, 0xdd,
    ];
    let mut d = Deframer::new(Side::Server);
    d.push(&hello).unwrap();
    match d.next_event().unwrap() {
        Some(Event::Sslv2ServerHello(h)) => {
            assert_eq!(h.version, ProtocolVersion::SSL2);
            assert_eq!(h.certificate, vec![0xaa, 0xbb]);
            assert_eq!(h.cipher_specs, vec![Sslv2CipherSpec(0x010080)]);
            assert_eq!(h.connection_id, vec![0xcc, 0xdd]);
        }
        other => panic!("{other:?}"),
    }
    let mut d = Deframer::new(Side::Server);
    d.push(&[0x80, 0x03, 0x00, 0x00, 0x01]).unwrap();
    assert_eq!(d.next_event().unwrap(), Some(Event::Sslv2Error(1)));
}

#[test]
fn tls13_server_hello_switches_to_encrypted() {
    let hello = ServerHello {
        legacy_version: ProtocolVersion::TLS12,
        random: [7; 32],
        session_id: vec![],
        cipher_suite: CipherSuite::TLS_AES_128_GCM_SHA256,
        compression: CompressionMethod::NULL,
        extensions: Some(vec![ServerExtension::SupportedVersions(ProtocolVersion::TLS13)]),
    };
    let mut w = Writer::new();
    hello.write(&mut w).unwrap();
    let mut stream = Framing::single(ProtocolVersion::TLS12)
        .frame(ContentType::HANDSHAKE, w.as_bytes())
        .unwrap()
        .concat();
    stream.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    stream.extend_from_slice(&[23, 3, 3, 0, 3, 1, 2, 3]);
    let mut d = Deframer::new(Side::Server);
    d.push(&stream).unwrap();
    assert!(matches!(d.next_event().unwrap(), Some(Event::ServerHello(_))));
    assert_eq!(d.next_event().unwrap(), Some(Event::ChangeCipherSpec));
    assert_eq!(
        d.next_event().unwrap(),
        Some(Event::Encrypted {
            content_type: ContentType::APPLICATION_DATA,
            len: 3
        })
    );
    assert_eq!(d.version(), Some(ProtocolVersion::TLS13));
}

#[test]
fn downgrade_sentinels_are_read() {
    let mut random = [0u8; 32];
    random[24..].copy_from_slice(b"DOWNGRD\x01");
    let hello = ServerHello {
        legacy_version: ProtocolVersion::TLS12,
        random,
        session_id: vec![],
        cipher_suite: CipherSuite(0xc02f),
        compression: CompressionMethod::NULL,
        extensions: None,
    };
    assert_eq!(hello.downgrade(), Some(server_hello::Downgrade::Tls12));
    random[31] = 0;
    assert_eq!(
        ServerHello {
            random,
            ..hello.clone()
        }
        .downgrade(),
        Some(server_hello::Downgrade::Tls11OrBelow)
    );
    random[31] = 2;
    assert_eq!(ServerHello { random, ..hello }.downgrade(), None);
}

#[test]
fn typical_hellos_have_the_expected_shape() {
    let suites: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS13).map(|s| s.id).collect();
    let h = ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS13,
        [1; 32],
        suites,
        Some("mx.example.net"),
    );
    assert_eq!(h.legacy_version, ProtocolVersion::TLS12);
    assert_eq!(h.sni(), Some("mx.example.net"));
    assert_eq!(
        h.offered_versions(),
        vec![
            ProtocolVersion::TLS13,
            ProtocolVersion::TLS12,
            ProtocolVersion::TLS11,
            ProtocolVersion::TLS10
        ]
    );
    match h.extension(ExtensionType::KEY_SHARE) {
        Some(ClientExtension::KeyShare(k)) => {
            assert_eq!(
                k.iter().map(|e| (e.group, e.key_exchange.len())).collect::<Vec<_>>(),
                vec![(NamedGroup::X25519, 32), (NamedGroup::SECP256R1, 65)]
            )
        }
        other => panic!("{other:?}"),
    }
    let ssl3 = ClientHello::typical(
        ProtocolVersion::SSL3,
        ProtocolVersion::SSL3,
        [1; 32],
        vec![CipherSuite(0x000a)],
        None,
    );
    assert_eq!(ssl3.extensions, Some(vec![]));
}
