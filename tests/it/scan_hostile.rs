//! hsscan against hostile servers written for the tests ([`crate::rogue`]):
//! escape sequences in what a server says never reach the terminal raw;
//! answers that select what no hello offered are `invalid-server-hello`.

use serde_json::Value;

use crate::rogue::{self, Behaviour, Rogue};
use crate::scan_support::{at, hsscan, EHLO};

/// An OSC that sets the window title, then a clear-screen, as a hostile MX
/// would put them in its banner and certificate.
const ESCAPES: &str = "\x1b]0;pwned\x07\x1b[2J\x1b[1;32mNEGOTIATED\x1b[0m";

/// The bytes a terminal would act on: C0 controls other than the line end,
/// DEL, and the C1 range as UTF-8.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c))
        .collect()
}

#[test]
fn escape_sequences_in_banner_and_certificate_never_reach_the_terminal() {
    let cert = rogue::certificate_named(&format!("mx.rogue.test {ESCAPES}"), "mx.rogue.test");
    let server = Rogue::start(Behaviour {
        banner: Some(format!("220 mx.rogue.test ESMTP {ESCAPES}").into_bytes()),
        ..Behaviour::tls(rogue::tls12_flight(0xc02f, &cert))
    });
    let target = server.target();
    for args in [
        vec!["--no-color", "--starttls", "smtp", "--ehlo", EHLO, target.as_str()],
        vec!["--starttls", "smtp", "--ehlo", EHLO, target.as_str()],
    ] {
        let run = hsscan(&args);
        assert_eq!(raw_controls(&run.stdout), Vec::<char>::new(), "{}", run.describe());
        assert_eq!(raw_controls(&run.stderr), Vec::<char>::new(), "{}", run.describe());
        assert!(
            run.stdout.contains(
                "smtp banner: 220 mx.rogue.test ESMTP \\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;32mNEGOTIATED\\x1b[0m"
            ),
            "{}",
            run.describe()
        );
        assert!(
            run.stdout.contains("mx.rogue.test \\x1b]0;pwned\\x07\\x1b[2J"),
            "the certificate subject, escaped\n{}",
            run.describe()
        );
    }
    // JSON keeps the bytes exactly as the server sent them.
    let run = hsscan(&["--json", "--starttls", "smtp", "--ehlo", EHLO, &target]);
    let r = run.record();
    assert_eq!(
        at(&r, "/smtp/banner"),
        &Value::from(format!("220 mx.rogue.test ESMTP {ESCAPES}")),
        "{r:#}"
    );
    assert_eq!(
        at(&r, "/certificates/0/chain/0/subject"),
        &Value::from(format!("CN=mx.rogue.test {ESCAPES}")),
        "{r:#}"
    );
}

#[test]
fn the_emulator_log_escapes_the_sni_a_client_sent() {
    use hsscan_wire::{CipherSuite, ClientHello, ProtocolVersion};
    let mut em = crate::emulate::emulator_with(
        ["emulate", "--profile", "postfix-default", "--front", "tls"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    );
    // A few suites, so that the log's tail holds the whole hello.
    let suites = vec![CipherSuite(0xc02f), CipherSuite(0x009c), CipherSuite(0x002f)];
    let sni = format!("evil{ESCAPES}.test");
    let hello = ClientHello::typical(
        ProtocolVersion::TLS12,
        ProtocolVersion::TLS12,
        crate::support::random(9),
        suites,
        Some(&sni),
    );
    let flight = em.hello(&hello, ProtocolVersion::TLS10);
    flight.expect_server_hello();
    let want = "SNI evil\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;32mNEGOTIATED\\x1b[0m.test";
    let start = std::time::Instant::now();
    while !em.log().contains(want) && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = em.log();
    assert!(log.contains(want), "{log}");
    assert_eq!(raw_controls(&log), Vec::<char>::new(), "{log}");
}

/// The ClientHello's `legacy_version` (client_version), from the record
/// that carried it: 0x0301 for the legacy hello, 0x0303 for the others.
fn client_version(hello: &[u8]) -> u16 {
    match hello.get(9..11) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// A fatal handshake_failure alert.
const REFUSE: [u8; 7] = [21, 3, 3, 0, 2, 2, 40];

/// `hsscan --json TARGET` against an implicit-TLS rogue server.
fn scan(server: &Rogue, extra: &[&str]) -> crate::scan_support::Run {
    let target = server.target();
    let mut args = vec!["--json"];
    args.extend(extra);
    args.push(&target);
    hsscan(&args)
}

#[track_caller]
fn assert_invalid(r: &Value, pointer: &str, detail: &str) {
    crate::scan_support::assert_failure(r, pointer, "handshake", "invalid-server-hello", detail);
}

#[test]
fn a_server_hello_selecting_version_0x0305_is_invalid_not_negotiated() {
    let sh = rogue::server_hello(0x0303, 0x1301, &[(0x002b, vec![0x03, 0x05])]);
    let server = Rogue::start(Behaviour::tls(rogue::record(22, 0x0303, &sh)));
    let run = scan(&server, &[]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_invalid(&r, "/failure", "the server selected 0x0305, above the offered TLSv1.3");
    assert_invalid(
        &r,
        "/quick/modern/failure",
        "the server selected 0x0305, above the offered TLSv1.3",
    );
    assert_invalid(
        &r,
        "/quick/legacy/failure",
        "the server selected 0x0305, above the offered TLSv1.0",
    );
    for a in ["modern", "legacy", "wide"] {
        assert_eq!(at(&r, &format!("/quick/{a}/result")), &Value::Null, "{r:#}");
    }
}

#[test]
fn tls12_answered_to_a_hello_offering_at_most_tls10_is_invalid() {
    // The legacy hello (client_version TLS 1.0) draws TLS 1.2; every other
    // hello is refused.
    let cert = rogue::certificate_named("mx.rogue.test", "mx.rogue.test");
    let flight = rogue::tls12_flight(0x002f, &cert);
    let server = Rogue::start(Behaviour {
        answer: std::sync::Arc::new(move |hello| {
            if client_version(hello) <= 0x0301 {
                flight.clone()
            } else {
                REFUSE.to_vec()
            }
        }),
        ..Behaviour::tls(Vec::new())
    });
    let run = scan(&server, &[]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_invalid(
        &r,
        "/quick/legacy/failure",
        "the server selected TLSv1.2, above the offered TLSv1.0",
    );
    assert_eq!(at(&r, "/quick/legacy/result"), &Value::Null, "{r:#}");
    crate::scan_support::assert_failure(&r, "/failure", "handshake", "alert", "handshake_failure(40)");

    // The enumeration never counts it as TLS 1.0 (nor as TLS 1.2).
    let run = scan(&server, &["--enumerate", "--retry-delay", "0.1"]);
    let r = run.record();
    assert_ne!(at(&r, "/enumeration/protocols/TLSv1.0"), &Value::Bool(true), "{r:#}");
    assert_ne!(at(&r, "/enumeration/protocols/TLSv1.2"), &Value::Bool(true), "{r:#}");
    assert_eq!(r["status"], "failed", "{r:#}");
}

#[test]
fn a_suite_the_hello_never_offered_is_invalid() {
    // An export suite, and an unassigned one, answered to every hello.
    for (suite, name) in [(0x0003u16, "0x0003"), (0x7777, "0x7777")] {
        let mut flight = rogue::server_hello(0x0303, suite, &[]);
        flight.extend(rogue::handshake(14, &[]));
        let server = Rogue::start(Behaviour::tls(rogue::record(22, 0x0303, &flight)));
        let run = scan(&server, &[]);
        let r = run.record();
        assert_eq!(run.code, 1, "{}", run.describe());
        assert_eq!(r["status"], "failed", "{r:#}");
        let detail = format!("the server chose cipher suite {name}, which was not offered");
        assert_invalid(&r, "/failure", &detail);
        assert_invalid(&r, "/quick/modern/failure", &detail);
        let findings: Vec<&str> = r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["id"].as_str())
            .collect();
        assert!(!findings.iter().any(|f| f.starts_with("cipher-")), "{findings:?}");
    }
    // A TLS 1.3 suite at TLS 1.0: the legacy hello never offered it.
    let mut flight = rogue::server_hello(0x0301, 0x1301, &[]);
    flight.extend(rogue::handshake(14, &[]));
    let server = Rogue::start(Behaviour::tls(rogue::record(22, 0x0301, &flight)));
    let r = scan(&server, &[]).record();
    assert_invalid(
        &r,
        "/quick/legacy/failure",
        "the server chose cipher suite 0x1301, which was not offered",
    );
    assert_eq!(r["status"], "failed", "{r:#}");
}

#[test]
fn an_sslv2_server_hello_to_a_tls_hello_is_invalid() {
    let cert = rogue::certificate_named("mx.rogue.test", "mx.rogue.test");
    // RC4_128_WITH_MD5 and a spec whose low 16 bits look like a GOST suite.
    let server = Rogue::start(Behaviour::tls(rogue::sslv2_server_hello(
        &cert,
        &[[0x01, 0x00, 0x80], [0x00, 0x00, 0x81]],
    )));
    let run = scan(&server, &[]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(r["status"], "failed", "{r:#}");
    let detail = "the server answered a TLS hello with an SSLv2 SERVER-HELLO";
    assert_invalid(&r, "/failure", detail);
    assert_invalid(&r, "/quick/modern/failure", detail);
    assert_invalid(&r, "/quick/legacy/failure", detail);
    assert!(!r.to_string().contains("GOST"), "{r:#}");
}

#[test]
fn a_hello_retry_request_for_ever_is_a_failure() {
    // x25519: a share the modern hello already sent; P-384: one it did not,
    // so the second hello carries it, and draws a second retry request.
    for (group, detail) in [
        (
            0x001du16,
            "a HelloRetryRequest asked for group X25519, whose key share the hello already sent (RFC 8446 §4.1.4)",
        ),
        (0x0018, "a second HelloRetryRequest on one connection (RFC 8446 §4.1.4)"),
    ] {
        let server = Rogue::start(Behaviour::tls(rogue::hello_retry_request(0x1301, group)));
        let run = scan(&server, &[]);
        let r = run.record();
        assert_eq!(r["status"], "failed", "group {group:#06x}: {r:#}");
        assert_invalid(&r, "/failure", detail);
        assert_invalid(&r, "/quick/modern/failure", detail);
        assert_invalid(
            &r,
            "/quick/legacy/failure",
            "the server selected TLSv1.3, above the offered TLSv1.0",
        );
        assert_eq!(run.code, 1, "{}", run.describe());
    }
    // The enumeration never counts retry requests alone as TLS 1.3.
    let server = Rogue::start(Behaviour::tls(rogue::hello_retry_request(0x1301, 0x0018)));
    let run = scan(&server, &["--enumerate", "--retry-delay", "0.1"]);
    let r = run.record();
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_eq!(at(&r, "/enumeration/protocols/TLSv1.3"), &Value::Null, "{r:#}");
    assert_eq!(at(&r, "/enumeration/complete/TLSv1.3"), &Value::Bool(false), "{r:#}");
    assert_eq!(run.code, 1, "{}", run.describe());
}
