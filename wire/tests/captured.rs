//! Captured bytes from real peers decode to the values tshark shows for
//! them. The expected files in `testdata/` were written from tshark's
//! dissection (`make_expected.py` beside them), never from this crate.

use hsscan_wire::deframer::{Deframer, Event, Side};
use hsscan_wire::{ClientExtension, ClientHello, ExtensionType, ServerExtension, ServerKeyExchange};
use serde_json::Value;
use std::path::PathBuf;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(rel)
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex4(v: u16) -> String {
    format!("0x{v:04x}")
}

fn strs(v: &Value) -> Option<Vec<String>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_ascii_lowercase()).collect())
}

fn nums(v: &Value) -> Option<Vec<u64>> {
    v.as_array().map(|a| a.iter().map(|x| x.as_u64().unwrap()).collect())
}

const HELLOS: [&str; 6] = [
    "exim-gnutls-3.7.9-normal",
    "openssl-3.0.19-default",
    "postfix-3.7-openssl-3.0.19-may",
    "postfix-openssl-1.0.2e-may",
    "postfix-openssl-1.0.2e-verify",
    "postfix-openssl-1.1.1w-may",
];

fn read_hello(name: &str) -> (Vec<u8>, ClientHello, hsscan_wire::deframer::HelloFraming) {
    let bytes = unhex(&std::fs::read_to_string(testdata(&format!("clienthellos/{name}.hex"))).unwrap());
    let mut d = Deframer::new(Side::Client);
    d.push(&bytes).unwrap();
    let Some(Event::ClientHello(hello)) = d.next_event().unwrap() else {
        panic!("{name}: no ClientHello")
    };
    assert!(d.next_event().unwrap().is_none());
    let framing = d.hello_framing().unwrap();
    (bytes, hello, framing)
}

#[test]
fn captured_client_hellos_match_tshark() {
    for name in HELLOS {
        let (bytes, hello, framing) = read_hello(name);
        let exp: Value = serde_json::from_str(
            &std::fs::read_to_string(testdata(&format!("clienthellos/{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let ctx = |f: &str| format!("{name}: {f}");
        assert_eq!(
            hex4(framing.record_version.0),
            exp["record_version"].as_str().unwrap(),
            "{}",
            ctx("record_version")
        );
        assert_eq!(
            framing.bytes as u64,
            exp["record_length"].as_u64().unwrap() + 5,
            "{}",
            ctx("record_length")
        );
        assert_eq!(framing.records, 1);
        assert_eq!(
            hex4(hello.legacy_version.0),
            exp["legacy_version"].as_str().unwrap(),
            "{}",
            ctx("legacy_version")
        );
        assert_eq!(
            hsscan_wire::hex(&hello.random),
            exp["random"].as_str().unwrap(),
            "{}",
            ctx("random")
        );
        assert_eq!(
            hsscan_wire::hex(&hello.session_id),
            exp["session_id"].as_str().unwrap(),
            "{}",
            ctx("session_id")
        );
        let suites: Vec<String> = hello.cipher_suites.iter().map(|s| hex4(s.0)).collect();
        assert_eq!(Some(suites), strs(&exp["cipher_suites"]), "{}", ctx("cipher_suites"));
        let comp: Vec<u64> = hello.compression_methods.iter().map(|c| u64::from(c.0)).collect();
        assert_eq!(
            Some(comp),
            nums(&exp["compression_methods"]),
            "{}",
            ctx("compression_methods")
        );

        // Extensions: types and body lengths in wire order, from re-encoding each one.
        let exts = hello.extensions.as_ref().unwrap();
        let got: Vec<(String, u64)> = exts
            .iter()
            .map(|e| {
                let mut w = hsscan_wire::Writer::new();
                e.write(&mut w).unwrap();
                (hex4(e.typ().0), (w.len() - 4) as u64)
            })
            .collect();
        let want: Vec<(String, u64)> = exp["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_ascii_lowercase(),
                    e["length"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{}", ctx("extensions"));

        let find = |t: ExtensionType| hello.extension(t);
        assert_eq!(
            hello.sni().map(str::to_owned),
            exp["sni"].as_str().map(str::to_owned),
            "{}",
            ctx("sni")
        );
        let groups = match find(ExtensionType::SUPPORTED_GROUPS) {
            Some(ClientExtension::SupportedGroups(g)) => Some(g.iter().map(|g| hex4(g.0)).collect()),
            _ => None,
        };
        assert_eq!(groups, strs(&exp["supported_groups"]), "{}", ctx("supported_groups"));
        let formats = match find(ExtensionType::EC_POINT_FORMATS) {
            Some(ClientExtension::EcPointFormats(f)) => Some(f.iter().map(|f| u64::from(f.0)).collect()),
            _ => None,
        };
        assert_eq!(formats, nums(&exp["ec_point_formats"]), "{}", ctx("ec_point_formats"));
        let sigs = match find(ExtensionType::SIGNATURE_ALGORITHMS) {
            Some(ClientExtension::SignatureAlgorithms(s)) => Some(s.iter().map(|s| hex4(s.0)).collect()),
            _ => None,
        };
        assert_eq!(
            sigs,
            strs(&exp["signature_algorithms"]),
            "{}",
            ctx("signature_algorithms")
        );
        let versions = match find(ExtensionType::SUPPORTED_VERSIONS) {
            Some(ClientExtension::SupportedVersions(v)) => Some(v.iter().map(|v| hex4(v.0)).collect()),
            _ => None,
        };
        assert_eq!(
            versions,
            strs(&exp["supported_versions"]),
            "{}",
            ctx("supported_versions")
        );
        let (share_groups, share_lens) = match find(ExtensionType::KEY_SHARE) {
            Some(ClientExtension::KeyShare(k)) => (
                Some(k.iter().map(|e| hex4(e.group.0)).collect::<Vec<_>>()),
                Some(k.iter().map(|e| e.key_exchange.len() as u64).collect::<Vec<_>>()),
            ),
            _ => (None, None),
        };
        assert_eq!(
            share_groups,
            strs(&exp["key_share_groups"]),
            "{}",
            ctx("key_share_groups")
        );
        assert_eq!(
            share_lens,
            nums(&exp["key_share_lengths"]),
            "{}",
            ctx("key_share_lengths")
        );
        let modes = match find(ExtensionType::PSK_KEY_EXCHANGE_MODES) {
            Some(ClientExtension::PskKeyExchangeModes(m)) => Some(m.iter().map(|m| u64::from(m.0)).collect()),
            _ => None,
        };
        assert_eq!(
            modes,
            nums(&exp["psk_key_exchange_modes"]),
            "{}",
            ctx("psk_key_exchange_modes")
        );
        let alpn = match find(ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION) {
            Some(ClientExtension::Alpn(a)) => Some(a.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()),
            _ => None,
        };
        assert_eq!(alpn, strs(&exp["alpn"]), "{}", ctx("alpn"));
        assert_eq!(
            matches!(
                find(ExtensionType::STATUS_REQUEST),
                Some(ClientExtension::StatusRequest)
            ),
            exp["status_request"].as_bool().unwrap(),
            "{}",
            ctx("status_request")
        );
        let ticket = match find(ExtensionType::SESSION_TICKET) {
            Some(ClientExtension::SessionTicket(t)) => Some(t.len() as u64),
            _ => None,
        };
        assert_eq!(
            ticket,
            exp["session_ticket_length"].as_u64(),
            "{}",
            ctx("session_ticket_length")
        );
        let padding = match find(ExtensionType::PADDING_0015) {
            Some(ClientExtension::Padding(n)) => Some(*n as u64),
            _ => None,
        };
        assert_eq!(padding, exp["padding_length"].as_u64(), "{}", ctx("padding_length"));
        // tshark gives the extension data length: one length byte plus the body.
        let reneg = match find(ExtensionType::RENEGOTIATION_INFO) {
            Some(ClientExtension::RenegotiationInfo(r)) => Some(1 + r.len() as u64),
            _ => None,
        };
        assert_eq!(
            reneg,
            exp["renegotiation_info_length"].as_u64(),
            "{}",
            ctx("renegotiation_info")
        );
        assert_eq!(
            find(ExtensionType::EXTENDED_MASTER_SECRET).is_some(),
            exp["extended_master_secret"].as_bool().unwrap(),
            "{}",
            ctx("ems")
        );
        assert_eq!(
            find(ExtensionType::ENCRYPT_THEN_MAC).is_some(),
            exp["encrypt_then_mac"].as_bool().unwrap(),
            "{}",
            ctx("etm")
        );
        let heartbeat = match find(ExtensionType::HEARTBEAT) {
            Some(ClientExtension::Heartbeat(m)) => Some(u64::from(m.0)),
            _ => None,
        };
        assert_eq!(heartbeat, exp["heartbeat_mode"].as_u64(), "{}", ctx("heartbeat"));
        let rsl = match find(ExtensionType::RECORD_SIZE_LIMIT) {
            Some(ClientExtension::RecordSizeLimit(n)) => Some(u64::from(*n)),
            _ => None,
        };
        assert_eq!(rsl, exp["record_size_limit"].as_u64(), "{}", ctx("record_size_limit"));

        // And the decoded hello re-encodes to the captured bytes, record header included.
        assert_eq!(
            hello.to_record(framing.record_version).unwrap(),
            bytes,
            "{}",
            ctx("re-encoding")
        );
    }
}

#[test]
fn every_strict_prefix_of_a_captured_hello_is_incomplete_or_rejected() {
    for name in HELLOS {
        let (bytes, _, _) = read_hello(name);
        for cut in 0..bytes.len() {
            let mut d = Deframer::new(Side::Client);
            d.push(&bytes[..cut]).unwrap();
            // A prefix never yields a hello: the deframer waits for more.
            assert!(
                d.next_event().unwrap().is_none(),
                "{name}: a {cut}-byte prefix yielded an event"
            );
            // Decoding the truncated message directly is an error, never a panic.
            if cut > 5 {
                assert!(
                    ClientHello::read_message(&bytes[5..cut]).is_err(),
                    "{name}: accepted a {cut}-byte prefix"
                );
            }
        }
    }
}

const FLIGHTS: [&str; 7] = [
    "openssl-tls12-ecdhe-rsa-3certs",
    "openssl-tls12-dhe-rsa",
    "openssl-tls13-hrr",
    "openssl-tls13-server-hello",
    "gnutls-tls12-flight",
    "openssl-alert-handshake-failure",
    "openssl-tls10-rsa",
];

fn flight_events(bytes: &[u8], chunk: usize) -> Vec<Event> {
    let mut d = Deframer::new(Side::Server);
    let mut out = Vec::new();
    for part in bytes.chunks(chunk) {
        d.push(part).unwrap();
        while let Some(e) = d.next_event().unwrap() {
            out.push(e);
        }
    }
    assert!(d.unconsumed().is_empty());
    out
}

#[test]
fn captured_server_flights_match_tshark() {
    for name in FLIGHTS {
        let bytes = std::fs::read(testdata(&format!("flights/{name}.bin"))).unwrap();
        let exp: Value =
            serde_json::from_str(&std::fs::read_to_string(testdata(&format!("flights/{name}.expected.json"))).unwrap())
                .unwrap();
        // Whole, byte by byte and in odd chunks: the same events.
        let events = flight_events(&bytes, bytes.len());
        assert_eq!(flight_events(&bytes, 1), events, "{name}: byte-at-a-time differs");
        assert_eq!(flight_events(&bytes, 7), events, "{name}: 7-byte chunks differ");

        let want_types: Vec<u64> = exp["handshake_messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_u64().unwrap())
            .collect();
        let got_types: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::ServerHello(_) | Event::HelloRetryRequest(_) => Some(2),
                Event::Certificate(_) => Some(11),
                Event::ServerKeyExchange(_) => Some(12),
                Event::CertificateRequest(_) => Some(13),
                Event::ServerHelloDone => Some(14),
                Event::CertificateStatus(_) => Some(22),
                Event::Handshake { typ, .. } => Some(u64::from(typ.0)),
                _ => None,
            })
            .collect();
        assert_eq!(got_types, want_types, "{name}: handshake message types");

        let alerts: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Alert(a) => Some((u64::from(a.level.0), u64::from(a.description.0))),
                _ => None,
            })
            .collect();
        let want_alerts: Vec<(u64, u64)> = exp["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["level"].as_u64().unwrap(), a["description"].as_u64().unwrap()))
            .collect();
        assert_eq!(alerts, want_alerts, "{name}: alerts");

        if let Some(sh) = exp["server_hello"].as_object() {
            let hello = events
                .iter()
                .find_map(|e| match e {
                    Event::ServerHello(h) | Event::HelloRetryRequest(h) => Some(h),
                    _ => None,
                })
                .unwrap();
            assert_eq!(
                hex4(hello.legacy_version.0),
                sh["version"].as_str().unwrap(),
                "{name}: version"
            );
            assert_eq!(
                hsscan_wire::hex(&hello.random),
                sh["random"].as_str().unwrap(),
                "{name}: random"
            );
            assert_eq!(
                hello.is_retry_request(),
                sh["hello_retry_request"].as_bool().unwrap(),
                "{name}: hrr"
            );
            assert_eq!(
                hsscan_wire::hex(&hello.session_id),
                sh["session_id"].as_str().unwrap(),
                "{name}: session_id"
            );
            assert_eq!(
                hex4(hello.cipher_suite.0),
                sh["cipher_suite"].as_str().unwrap(),
                "{name}: suite"
            );
            assert_eq!(
                u64::from(hello.compression.0),
                sh["compression"].as_u64().unwrap(),
                "{name}: compression"
            );
            let exts: Vec<(String, u64)> = hello
                .extensions
                .iter()
                .flatten()
                .map(|e| {
                    let mut w = hsscan_wire::Writer::new();
                    e.write(&mut w).unwrap();
                    (hex4(e.typ().0), (w.len() - 4) as u64)
                })
                .collect();
            let want: Vec<(String, u64)> = sh["extensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap().to_ascii_lowercase(),
                        e["length"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(exts, want, "{name}: server extensions");
            let selected = match hello.extension(ExtensionType::SUPPORTED_VERSIONS) {
                Some(ServerExtension::SupportedVersions(v)) => Some(hex4(v.0)),
                _ => None,
            };
            assert_eq!(
                selected.as_deref(),
                sh["supported_versions_selected"].as_str(),
                "{name}: selected version"
            );
            assert_eq!(
                hello.key_share_group().map(|g| hex4(g.0)).as_deref(),
                sh["key_share_group"].as_str(),
                "{name}: key share group"
            );
            let share_len = match hello.extension(ExtensionType::KEY_SHARE) {
                Some(ServerExtension::KeyShare(k)) => Some(k.key_exchange.len() as u64),
                _ => None,
            };
            assert_eq!(share_len, sh["key_share_length"].as_u64(), "{name}: key share length");
        }

        let cert_lens: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Certificate(c) => Some(c.entries.iter().map(|e| e.der.len() as u64)),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(
            Some(cert_lens),
            nums(&exp["certificate_lengths"]).or(Some(vec![])),
            "{name}: certificates"
        );

        if let Some(ske) = exp["server_key_exchange"].as_object() {
            let got = events
                .iter()
                .find_map(|e| match e {
                    Event::ServerKeyExchange(s) => Some(s),
                    _ => None,
                })
                .unwrap();
            match (ske["kind"].as_str().unwrap(), got) {
                (
                    "ecdhe",
                    ServerKeyExchange::Ecdh {
                        curve_type,
                        group,
                        public,
                        signature,
                        ..
                    },
                ) => {
                    assert_eq!(u64::from(curve_type.0), ske["curve_type"].as_u64().unwrap());
                    assert_eq!(
                        group.map(|g| hex4(g.0)).as_deref(),
                        ske["named_curve"].as_str(),
                        "{name}: curve"
                    );
                    assert_eq!(
                        public.len() as u64,
                        ske["pubkey_length"].as_u64().unwrap(),
                        "{name}: point"
                    );
                    let sig = signature.as_ref().unwrap();
                    assert_eq!(sig.signature.len() as u64, ske["signature_length"].as_u64().unwrap());
                    assert_eq!(
                        sig.scheme.map(|s| hex4(s.0)).as_deref(),
                        ske["signature_scheme"].as_str()
                    );
                }
                (
                    "dhe",
                    ServerKeyExchange::Dh {
                        p, g, ys, signature, ..
                    },
                ) => {
                    assert_eq!(p.len() as u64, ske["p_length"].as_u64().unwrap(), "{name}: p");
                    assert_eq!(g.len() as u64, ske["g_length"].as_u64().unwrap(), "{name}: g");
                    assert_eq!(ys.len() as u64, ske["ys_length"].as_u64().unwrap(), "{name}: Ys");
                    let sig = signature.as_ref().unwrap();
                    assert_eq!(sig.signature.len() as u64, ske["signature_length"].as_u64().unwrap());
                    assert_eq!(
                        sig.scheme.map(|s| hex4(s.0)).as_deref(),
                        ske["signature_scheme"].as_str()
                    );
                }
                (kind, got) => panic!("{name}: expected {kind}, decoded {got:?}"),
            }
        }
    }
}

#[test]
fn every_strict_prefix_of_a_captured_flight_is_rejected_cleanly() {
    for name in FLIGHTS {
        let bytes = std::fs::read(testdata(&format!("flights/{name}.bin"))).unwrap();
        let full = flight_events(&bytes, bytes.len());
        for cut in 0..bytes.len() {
            let mut d = Deframer::new(Side::Server);
            d.push(&bytes[..cut]).unwrap();
            let mut got = Vec::new();
            while let Some(e) = d.next_event().unwrap() {
                got.push(e);
            }
            // Only whole records are decoded: a prefix yields a strict prefix
            // of the events and leaves the cut record unconsumed.
            assert!(
                got.len() < full.len() || cut == 0,
                "{name}: a {cut}-byte prefix yielded every event"
            );
            assert_eq!(
                &full[..got.len()],
                &got[..],
                "{name}: a {cut}-byte prefix changed an event"
            );
        }
    }
}
