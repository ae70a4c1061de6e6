//! The ClientHello builder and the deframer against tlslite-ng's
//! `tls.py server`: the only SSLv3 and RC4 server a modern machine runs
//! (OpenSSL 3 has neither), see tests/support/TLSLITE.md.

use hsscan_wire::{AlertDescription, AlertLevel, CipherSuite, ClientHello, ProtocolVersion};

use crate::support::{self, certs, Server, TLSLITE};

/// `tls.py server` as an echo server on 127.0.0.1 with the RSA chain,
/// SSLv3 enabled, and the given `--cipherlist`.
pub fn tls_py(name: &'static str, cipherlist: &'static str) -> Server {
    let dir = certs();
    let path = move |f: &str| dir.join(f).display().to_string();
    Server::start(name, TLSLITE, move |port| {
        vec![
            "server".into(),
            "-c".into(),
            path("rsa-chain.pem"),
            "-k".into(),
            path("rsa.key"),
            "--ssl3".into(),
            "--max-ver".into(),
            "tls1.2".into(),
            "--cipherlist".into(),
            cipherlist.into(),
            "--echo".into(),
            format!("127.0.0.1:{port}"),
        ]
    })
}

/// Every cipher tlslite can do, RC4 included.
const ALL_CIPHERS: &str = "rc4,3des,aes128,aes256,aes128gcm,aes256gcm,chacha20-poly1305";

/// An SSLv3 hello as SSLv3 clients sent it: no extensions block at all.
fn sslv3_hello(suites: &[u16], tag: u8) -> ClientHello {
    let mut hello = ClientHello::new(
        ProtocolVersion::SSL3,
        support::random(tag),
        suites.iter().map(|&s| CipherSuite(s)).collect(),
    );
    hello.extensions = None;
    hello
}

#[test]
fn tlslite_answers_sslv3_hello_with_sslv3_server_hello() {
    let mut server = tls_py("tlslite", ALL_CIPHERS);
    let hello = sslv3_hello(&[0x0005, 0x000a, 0x002f, 0x0004], 21);
    let record = hello.to_record(ProtocolVersion::SSL3).expect("encode");
    assert_eq!(record.get(..3), Some(&[0x16, 0x03, 0x00][..]));
    let flight = server.exchange(&[record]);
    // The answer comes in SSLv3 records too.
    assert_eq!(
        flight.bytes.get(..3),
        Some(&[0x16, 0x03, 0x00][..]),
        "{}",
        flight.describe()
    );
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, ProtocolVersion::SSL3, &hello.cipher_suites);
    assert_eq!(
        sh.extensions, None,
        "extensions answered to a hello without any: {sh:?}"
    );
    assert!(
        matches!(flight.events.last(), Some(hsscan_wire::Event::ServerHelloDone)),
        "{}",
        flight.describe()
    );
}

#[test]
fn tlslite_with_only_rc4_answers_rc4_sha_offer_with_rc4_sha() {
    let mut server = tls_py("tlslite", "rc4");
    let rc4_sha = CipherSuite(0x0005);

    let hello = sslv3_hello(&[0x0005], 22);
    let flight = server.hello(&hello, ProtocolVersion::SSL3);
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, ProtocolVersion::SSL3, &hello.cipher_suites);
    assert_eq!(sh.cipher_suite, rc4_sha);

    // The same suite over TLS 1.2 (RC4 suites are valid up to 1.2).
    let hello = ClientHello::typical(
        ProtocolVersion::TLS12,
        ProtocolVersion::TLS12,
        support::random(23),
        vec![rc4_sha],
        Some("localhost"),
    );
    let flight = server.hello(&hello, ProtocolVersion::TLS10);
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, ProtocolVersion::TLS12, &hello.cipher_suites);
    assert_eq!(sh.cipher_suite, rc4_sha);
}

/// tlslite rejects an IP literal in server_name ("Host name in SNI is not
/// valid DNS name"), which RFC 6066 §3 forbids; the scanner must not send
/// one when it scans by address.
#[test]
fn tlslite_rejects_ip_literal_sni_with_illegal_parameter_and_accepts_no_sni() {
    let mut server = tls_py("tlslite", ALL_CIPHERS);
    let suites = support::suites_for(ProtocolVersion::TLS12);

    let with_ip = ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS12,
        support::random(24),
        suites.clone(),
        Some("127.0.0.1"),
    );
    let flight = server.hello(&with_ip, ProtocolVersion::TLS10);
    let alert = flight
        .alert()
        .unwrap_or_else(|| panic!("expected an alert, got {}", flight.describe()));
    assert_eq!(alert.level, AlertLevel::FATAL, "{alert}");
    assert_eq!(alert.description, AlertDescription::ILLEGAL_PARAMETER, "{alert}");
    assert!(flight.server_hello().is_none(), "{}", flight.describe());

    let without = ClientHello::typical(
        ProtocolVersion::TLS10,
        ProtocolVersion::TLS12,
        support::random(24),
        suites,
        None,
    );
    let flight = server.hello(&without, ProtocolVersion::TLS10);
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, ProtocolVersion::TLS12, &without.cipher_suites);
    assert!(flight.alert().is_none(), "{}", flight.describe());
}
