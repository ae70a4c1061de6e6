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
