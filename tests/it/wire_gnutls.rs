//! The ClientHello builder and the deframer against `gnutls-serv`, a
//! second TLS stack independent of OpenSSL.
//!
//! gnutls-serv has no listen-address option: it binds the wildcard
//! addresses. The tests only ever connect to 127.0.0.1.

use hsscan_wire::{NamedGroup, ProtocolVersion};

use crate::support::{self, certs, Server, GNUTLS_SERV};
use crate::wire_openssl::retry_group;

/// NORMAL with TLS 1.0 and 1.1 spelled out (a no-op in Debian 12's build,
/// kept so that the string stays portable), as in tests/support/GNUTLS.md.
const PRIORITY: &str = "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1";

/// `gnutls-serv` as an echo server with the RSA and ECDSA chains, not
/// asking for a client certificate (`-a`).
pub fn gnutls_serv(name: &'static str, priority: String) -> Server {
    let dir = certs();
    let path = move |f: &str| dir.join(f).display().to_string();
    Server::start(name, GNUTLS_SERV, move |port| {
        vec![
            "-p".into(),
            port.to_string(),
            "--echo".into(),
            "-a".into(),
            "--priority".into(),
            priority.clone(),
            "--x509certfile".into(),
            path("rsa-chain.pem"),
            "--x509keyfile".into(),
            path("rsa.key"),
            "--x509certfile".into(),
            path("ecdsa-chain.pem"),
            "--x509keyfile".into(),
            path("ecdsa.key"),
        ]
    })
}

fn draws_server_hello_of(v: ProtocolVersion) {
    let mut server = gnutls_serv("gnutls-serv", PRIORITY.to_owned());
    let hello = support::hello_for(v, 11);
    let flight = server.hello(&hello, ProtocolVersion::TLS10);
    let sh = flight.expect_server_hello();
    support::assert_selects(sh, v, &hello.cipher_suites);
    support::assert_downgrade_sentinel(sh, v);
    if v != ProtocolVersion::TLS13 {
        assert!(
            matches!(flight.events.last(), Some(hsscan_wire::Event::ServerHelloDone)),
            "{}",
            flight.describe()
        );
        // `-a`: no CertificateRequest in the flight.
        assert!(
            !flight
                .events
                .iter()
                .any(|e| matches!(e, hsscan_wire::Event::CertificateRequest(_))),
            "{}",
            flight.describe()
        );
    }
}

#[test]
fn gnutls_answers_tls10_hello_with_tls10_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS10);
}

#[test]
fn gnutls_answers_tls11_hello_with_tls11_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS11);
}

#[test]
fn gnutls_answers_tls12_hello_with_tls12_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS12);
}

#[test]
fn gnutls_answers_tls13_hello_with_tls13_server_hello() {
    draws_server_hello_of(ProtocolVersion::TLS13);
}

#[test]
fn gnutls_answers_empty_key_share_with_retry_request_for_an_offered_group() {
    let mut server = gnutls_serv("gnutls-serv", PRIORITY.to_owned());
    retry_group(&mut server, &[NamedGroup::X25519, NamedGroup::SECP256R1], 12);
    let group = retry_group(&mut server, &[NamedGroup::SECP384R1], 13);
    assert_eq!(group, NamedGroup::SECP384R1);
}
