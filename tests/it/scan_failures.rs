//! Where a scan breaks, against real peers on loopback: the failure
//! `stage`, `kind` and evidence of SPEC §3, the SMTP dialog kept, and the
//! exit code (1 when an endpoint did not negotiate, 2 for bad input).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use hsscan_wire::{CipherSuite, Deframer, Event, Side};
use serde_json::{json, Value};

use crate::postfix::{Postfix, HOSTNAME};
use crate::scan_support::{assert_failure, at, hsscan, FullBacklog, Run, EHLO, PYTHON3};
use crate::support::{certs, Server};

/// What Postfix 3.7 (Debian 12, compatibility_level 3.6) says to EHLO,
/// without STARTTLS.
const POSTFIX_EXTENSIONS_NO_TLS: [&str; 9] = [
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
];

/// The same with STARTTLS, where Postfix puts it.
const POSTFIX_EXTENSIONS: [&str; 10] = [
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
];

fn banner() -> String {
    format!("220 {HOSTNAME} ESMTP Postfix")
}

/// `hsscan --json --starttls smtp --ehlo … ip:port` against a Postfix.
fn scan_smtp(pf: &Postfix) -> Run {
    let target = pf.target();
    hsscan(&["--json", "--starttls", "smtp", "--ehlo", EHLO, &target])
}

/// Asserts that both quick-check attempts failed the same way and that the
/// endpoint's failure is that one.
#[track_caller]
fn assert_both_failed(r: &Value, stage: &str, kind: &str, detail: &str) {
    assert_failure(r, "/failure", stage, kind, detail);
    assert_failure(r, "/quick/modern/failure", stage, kind, detail);
    assert_failure(r, "/quick/legacy/failure", stage, kind, detail);
    assert_eq!(at(r, "/quick/modern/result"), &Value::Null, "{r:#}");
    assert_eq!(at(r, "/quick/legacy/result"), &Value::Null, "{r:#}");
}

#[test]
fn refused_port_fails_at_connect() {
    // A port that was just free on 127.0.0.1: nothing listens, the kernel answers RST.
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("local_addr").port()
    };
    let target = format!("127.0.0.1:{port}");
    let run = hsscan(&["--json", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_both_failed(
        &r,
        "connect",
        "refused",
        &format!("connecting to {target}: Connection refused (os error 111)"),
    );
    assert_eq!(r["target"]["transport"], "implicit-tls", "{r:#}");
    assert_eq!(r["smtp"], Value::Null, "no SMTP on an implicit-TLS port: {r:#}");
    // Both attempts connected (and were refused): both count.
    assert_eq!(r["connections"], 2, "{r:#}");
    assert_eq!(r["certificates"], json!([]), "{r:#}");
}

#[test]
fn starttls_absent_when_postfix_has_no_tls() {
    let pf = Postfix::start(&[("smtpd_tls_security_level", "none")]);
    let run = scan_smtp(&pf);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), pf.log());
    assert_eq!(r["status"], "failed", "{r:#}\n{}", pf.log());
    assert_both_failed(
        &r,
        "starttls",
        "starttls-absent",
        "STARTTLS is not among the EHLO keywords",
    );
    assert_eq!(
        r["smtp"],
        json!({
            "banner": banner(),
            "ehlo_name": EHLO,
            "extensions": POSTFIX_EXTENSIONS_NO_TLS,
            "starttls": "absent",
            "reply": null,
        }),
        "{r:#}"
    );
    assert_eq!(r["target"]["transport"], "smtp-starttls", "{r:#}");
    assert_eq!(r["connections"], 2, "{r:#}");
}

#[test]
fn starttls_rejected_with_454_when_postfix_cannot_read_its_key() {
    let missing = certs().join("no-such-postfix.key");
    let missing = missing.display().to_string();
    let pf = Postfix::start(&[("smtpd_tls_key_file", &missing)]);
    let run = scan_smtp(&pf);
    let r = run.record();
    let reply = "454 4.7.0 TLS not available due to local problem";
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), pf.log());
    assert_eq!(r["status"], "failed", "{r:#}\n{}", pf.log());
    assert_both_failed(&r, "starttls", "starttls-rejected", reply);
    assert_eq!(
        r["smtp"],
        json!({
            "banner": banner(),
            "ehlo_name": EHLO,
            "extensions": POSTFIX_EXTENSIONS,
            "starttls": "rejected",
            "reply": reply,
        }),
        "{r:#}"
    );
    // The cause, as Postfix logs it.
    let cause = format!("cannot get RSA private key from file \"{missing}\": disabling TLS support");
    let log = pf.log_when(|log| log.contains(&cause));
    assert!(log.contains(&cause), "{log}");
}

#[test]
fn implicit_tls_to_a_starttls_port_is_a_plaintext_reply() {
    let pf = Postfix::start(&[]);
    let target = pf.target();
    let run = hsscan(&["--json", "--starttls", "none", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), pf.log());
    assert_eq!(r["status"], "failed", "{r:#}\n{}", pf.log());
    assert_both_failed(
        &r,
        "handshake",
        "plaintext-reply",
        &format!(
            "the server answered the ClientHello with an SMTP reply ({}): this port expects STARTTLS, not implicit TLS",
            banner()
        ),
    );
    assert_eq!(r["target"]["transport"], "implicit-tls", "{r:#}");
    assert_eq!(r["smtp"], Value::Null, "--starttls none speaks no SMTP: {r:#}");
}

#[test]
fn http_server_answer_is_not_tls() {
    // python3's http.server reads a request line up to the first '\n': both
    // hellos hold 0x0a bytes (suites 0x000a, 0xc00a), so it always answers,
    // with an HTTP/0.9-style error page (no status line).
    let mut server = Server::start("python3-http.server", PYTHON3, |port| {
        vec![
            "-m".into(),
            "http.server".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            port.to_string(),
        ]
    });
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    let run = hsscan(&["--json", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), server.log());
    assert_eq!(r["status"], "failed", "{r:#}");
    for pointer in ["/failure", "/quick/modern/failure", "/quick/legacy/failure"] {
        assert_eq!(at(&r, &format!("{pointer}/stage")), "handshake", "{r:#}");
        assert_eq!(at(&r, &format!("{pointer}/kind")), "not-tls", "{r:#}");
        let detail = at(&r, &format!("{pointer}/detail")).as_str().unwrap_or("");
        assert!(
            detail.starts_with("the server answered with bytes that are not TLS: <!DOCTYPE HTML>")
                && detail.contains("Error code: 400"),
            "{pointer}: {r:#}"
        );
    }
}

/// The suites a prepared hello of hsscan offers, read back from its bytes.
fn offered_suites(hello: &hsscan::hellos::Prepared) -> Vec<CipherSuite> {
    let mut d = Deframer::new(Side::Client);
    for w in &hello.writes {
        d.push(w).expect("hsscan's own hello deframes");
    }
    loop {
        match d.next_event().expect("hsscan's own hello decodes") {
            Some(Event::ClientHello(h)) => return h.cipher_suites,
            Some(_) => continue,
            None => panic!("no ClientHello in hsscan's hello"),
        }
    }
}

#[test]
fn a_suite_in_neither_quick_hello_is_found_by_the_wide_hello() {
    // TLS_RSA_WITH_ARIA_256_GCM_SHA384: TLS 1.2 only, and in neither hello.
    let aria = CipherSuite(0xc051);
    let modern = hsscan::hellos::modern(None).expect("modern hello");
    let legacy = hsscan::hellos::legacy(None).expect("legacy hello");
    assert!(
        !offered_suites(&modern).contains(&aria),
        "the modern hello offers 0xc051"
    );
    assert!(
        !offered_suites(&legacy).contains(&aria),
        "the legacy hello offers 0xc051"
    );

    let mut server =
        crate::support::openssl_s_server("openssl-s_server-aria", &["-tls1_2", "-cipher", "ARIA256-GCM-SHA384"]);
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    let run = hsscan(&["--json", &target]);
    let r = run.record();
    // Both quick hellos are refused, and the wide one negotiates: never a false "no TLS".
    assert_eq!(run.code, 0, "{}\n{}", run.describe(), server.log());
    assert_eq!(r["status"], "negotiated", "{r:#}\n{}", server.log());
    assert_eq!(r["failure"], Value::Null, "{r:#}");
    assert_failure(
        &r,
        "/quick/modern/failure",
        "handshake",
        "alert",
        "handshake_failure(40)",
    );
    // OpenSSL checks the version before the suites: TLS 1.0 gets protocol_version.
    assert_failure(
        &r,
        "/quick/legacy/failure",
        "handshake",
        "alert",
        "protocol_version(70)",
    );
    assert_eq!(r["quick"]["wide"]["result"]["cipher"]["id"], "0xc051", "{r:#}");
    assert_eq!(r["quick"]["wide"]["result"]["version"]["name"], "TLSv1.2", "{r:#}");
    // Three hellos, then the headline sender's own.
    assert_eq!(r["connections"], 4, "{r:#}");
}

#[test]
fn no_shared_suite_is_a_handshake_failure_alert() {
    // A PSK suite without a PSK: OpenSSL can negotiate nothing any hello offers.
    let mut server = crate::support::openssl_s_server(
        "openssl-s_server-psk-only",
        &["-tls1_2", "-cipher", "PSK-AES128-CBC-SHA"],
    );
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    let run = hsscan(&["--json", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), server.log());
    assert_eq!(r["status"], "failed", "{r:#}\n{}", server.log());
    // The endpoint's failure is the modern attempt's.
    assert_failure(&r, "/failure", "handshake", "alert", "handshake_failure(40)");
    assert_failure(
        &r,
        "/quick/modern/failure",
        "handshake",
        "alert",
        "handshake_failure(40)",
    );
    assert_failure(
        &r,
        "/quick/legacy/failure",
        "handshake",
        "alert",
        "protocol_version(70)",
    );
    assert_failure(&r, "/quick/wide/failure", "handshake", "alert", "handshake_failure(40)");
    assert_eq!(r["findings"], json!([]), "{r:#}");
    assert_eq!(r["certificates"], json!([]), "{r:#}");
}

/// One polite SMTP session (banner, QUIT) that uses up a rate budget of one.
fn plain_session(pf: &Postfix) {
    let addr = SocketAddr::from((pf.ip, pf.port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}\n{}", pf.log()));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("banner");
    assert_eq!(line.trim_end(), banner(), "first connection:\n{}", pf.log());
    (&stream).write_all(b"QUIT\r\n").expect("QUIT");
    line.clear();
    reader.read_line(&mut line).expect("QUIT reply");
    assert_eq!(line.trim_end(), "221 2.0.0 Bye", "{}", pf.log());
}

#[test]
fn connection_rate_limit_421_is_inconclusive() {
    // Localhost is exempt from anvil limits by default (mynetworks); the
    // budget lasts an hour, so the result never depends on timing.
    let pf = Postfix::start(&[
        ("smtpd_client_connection_rate_limit", "1"),
        ("smtpd_client_event_limit_exceptions", ""),
        ("anvil_rate_time_unit", "3600s"),
    ]);
    plain_session(&pf);
    let run = scan_smtp(&pf);
    let r = run.record();
    let reply = format!("421 4.7.0 {HOSTNAME} Error: too many connections from 127.0.0.1");
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), pf.log());
    assert_eq!(r["status"], "inconclusive", "{r:#}\n{}", pf.log());
    assert_both_failed(&r, "banner", "rate-limited", &reply);
    assert_eq!(
        r["smtp"],
        json!({
            "banner": reply,
            "ehlo_name": EHLO,
            "extensions": [],
            "starttls": null,
            "reply": null,
        }),
        "{r:#}"
    );
    assert_eq!(r["connections"], 2, "{r:#}");
    // Postfix counted our banner-and-QUIT session as the first, the scan's as 2 and 3.
    let seen = |log: &str| {
        log.contains("warning: Connection rate limit exceeded: 2 from ")
            && log.contains("warning: Connection rate limit exceeded: 3 from ")
    };
    let log = pf.log_when(seen);
    assert!(seen(&log), "{log}");
}

#[test]
fn silent_listener_is_a_connect_timeout() {
    let backlog = FullBacklog::new();
    let target = format!("127.0.0.1:{}", backlog.port);
    let run = hsscan(&["--json", "--connect-timeout", "1", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_both_failed(
        &r,
        "connect",
        "timeout",
        &format!("connecting to {target}: no answer within 1s"),
    );
}

/// Asserts exit code 2, nothing on stdout, and one stderr line
/// `hsscan: …` that contains `names`.
#[track_caller]
fn assert_usage_error(args: &[&str], names: &str) {
    let run = hsscan(args);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert_eq!(run.stdout, "", "{}", run.describe());
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line\n{}", run.describe());
    assert!(run.stderr.ends_with('\n'), "{}", run.describe());
    let line = lines.first().copied().unwrap_or("");
    assert!(line.starts_with("hsscan: "), "{}", run.describe());
    assert!(line.contains(names), "does not name {names:?}\n{}", run.describe());
}

#[test]
fn target_without_port_number_is_a_usage_error() {
    // --resolve keeps the name off DNS should parsing ever let it through.
    assert_usage_error(
        &["--json", "--resolve", "mx.example.net:127.0.0.1", "mx.example.net:"],
        "'mx.example.net:'",
    );
    let run = hsscan(&["--resolve", "mx.example.net:127.0.0.1", "mx.example.net:"]);
    assert_eq!(
        run.stderr,
        "hsscan: parsing target 'mx.example.net:': missing port number after ':'; write host:port, e.g. mx.example.net:25\n"
    );
}

#[test]
fn target_with_a_space_is_a_usage_error() {
    assert_usage_error(&["--json", "bad host"], "'bad host'");
}

#[test]
fn per_host_zero_is_a_usage_error() {
    assert_usage_error(&["--json", "--per-host", "0", "127.0.0.1"], "--per-host");
    let run = hsscan(&["--per-host", "0", "127.0.0.1"]);
    assert!(run.stderr.contains("'0'"), "{}", run.describe());
}

#[test]
fn unknown_starttls_mode_is_a_usage_error() {
    assert_usage_error(&["--json", "--starttls", "pop3", "127.0.0.1"], "'pop3'");
    let run = hsscan(&["--starttls", "pop3", "127.0.0.1"]);
    assert!(run.stderr.contains("--starttls"), "{}", run.describe());
}

/// Implicit TLS, TLS 1.2 with one suite, and this misbehaviour.
fn misbehaving(after_hello: &str) -> String {
    format!(
        "description = \"{after_hello} after every hello\"\n[tls]\nversions = [\"TLSv1.2\"]\nciphers = [\"TLS_RSA_WITH_AES_128_CBC_SHA\"]\n[misbehave]\nafter_hello = \"{after_hello}\"\n"
    )
}

#[test]
fn reset_after_the_hello() {
    let em = crate::emulate::emulator_config("scan-reset", &misbehaving("reset"));
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&["--json", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), em.log());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_both_failed(
        &r,
        "handshake",
        "reset-after-hello",
        "connection reset: Connection reset by peer (os error 104)",
    );
    // The wide hello, then its 64-suite form, are reset too, and so is the
    // headline sender's own hello.
    assert_failure(
        &r,
        "/quick/wide/failure",
        "handshake",
        "reset-after-hello",
        "connection reset: Connection reset by peer (os error 104)",
    );
    assert_eq!(r["verdict"]["outcome"], "no-tls", "{r:#}");
    assert_eq!(r["senders"][0]["reason"]["kind"], "dropped", "{r:#}");
    // A small hello is tried too (a length limit would let it through).
    let detail = r["senders"][0]["reason"]["detail"].as_str().unwrap_or("");
    assert!(detail.contains("a small hello ("), "{detail}");
    assert!(detail.ends_with("bytes) is not answered either"), "{detail}");
    assert_eq!(r["connections"], 6, "{r:#}");
}

#[test]
fn silence_after_the_hello_is_a_timeout() {
    let em = crate::emulate::emulator_config("scan-silence", &misbehaving("silence"));
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&["--json", "--timeout", "1", &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), em.log());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_both_failed(
        &r,
        "handshake",
        "timeout-after-hello",
        "no answer within 1s after the hello",
    );
}

#[test]
fn load_balancer_closing_after_starttls_is_closed_after_hello() {
    let em = crate::emulate::emulator("lb-drop-after-hello", &[]);
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&["--json", "--starttls", "smtp", "--ehlo", EHLO, &target]);
    let r = run.record();
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), em.log());
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_both_failed(
        &r,
        "handshake",
        "closed-after-hello",
        "the server closed the connection without answering the hello",
    );
    // The SMTP dialog up to STARTTLS is kept.
    assert_eq!(r["smtp"]["starttls"], "offered", "{r:#}");
    assert_eq!(r["smtp"]["reply"], "220 2.0.0 Ready to start TLS", "{r:#}");
    assert_eq!(
        r["smtp"]["banner"], "220 mx.emulated.test Microsoft ESMTP MAIL Service ready",
        "{r:#}"
    );
}

#[test]
fn emulated_connection_limit_is_inconclusive() {
    // Two connections held open; the scan's is the third.
    let em = crate::emulate::emulator("rate-limited", &[]);
    let _held = crate::emulate::hold_open(SocketAddr::from((Ipv4Addr::LOCALHOST, em.port)), 2);
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&["--json", "--starttls", "smtp", "--ehlo", EHLO, &target]);
    let r = run.record();
    assert_eq!(r["status"], "inconclusive", "{r:#}\n{}", em.log());
    assert_both_failed(
        &r,
        "banner",
        "rate-limited",
        "421 4.7.0 mx.emulated.test Error: too many connections from 127.0.0.1",
    );
}

#[test]
fn spent_connection_budget_is_ours_and_never_blamed_on_the_server() {
    let em = crate::emulate::emulator("postfix-default", &[]);
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&[
        "--json",
        "--starttls",
        "smtp",
        "--ehlo",
        EHLO,
        "--max-connections",
        "1",
        &target,
    ]);
    let r = run.record();
    // One connection: the hello that got it negotiates, the other is never
    // sent, and neither is the headline sender's own: its verdict is
    // inconclusive, so the run exits 1.
    assert_eq!(run.code, 1, "{}\n{}", run.describe(), em.log());
    assert_eq!(r["connections"], 1, "{r:#}");
    assert_eq!(r["status"], "negotiated", "{r:#}");
    assert_eq!(r["verdict"]["outcome"], "inconclusive", "{r:#}");
    assert_eq!(r["senders"][0]["confirmed"], false, "{r:#}");
    assert_eq!(r["senders"][0]["reason"]["kind"], "not-confirmed", "{r:#}");
    let budget = json!({
        "stage": "local",
        "kind": "budget-spent",
        "detail": "the --max-connections budget for this host is spent",
    });
    let attempts = [at(&r, "/quick/modern"), at(&r, "/quick/legacy")];
    let stopped = attempts
        .iter()
        .filter(|a| a["failure"] == budget && a["result"].is_null())
        .count();
    let negotiated = attempts.iter().filter(|a| !a["result"].is_null()).count();
    assert_eq!((stopped, negotiated), (1, 1), "{r:#}");
}

/// With a descriptor limit so low that a probe's socket cannot be opened,
/// the probe fails on this machine (EMFILE), not at the server: it backs
/// off and tries again (with a warning on stderr), and what it reports is
/// `local`/`local-error` (inconclusive) while the limit lasts, never
/// `unreachable` — and the server's real answer once a descriptor frees
/// up. The limits are tried upward from one too low to start at all, so
/// the test does not depend on how many descriptors the runtime needs. The
/// server holds each connection a while, so that at the limit that leaves
/// one descriptor for the two hellos, the second must wait for the first.
#[cfg(target_os = "linux")]
#[test]
fn running_out_of_descriptors_backs_off_and_is_never_blamed_on_the_server() {
    let cert = crate::rogue::certificate_named("mx.rogue.test", "mx.rogue.test");
    let server = crate::rogue::Rogue::start(crate::rogue::Behaviour {
        hold: Duration::from_millis(300),
        ..crate::rogue::Behaviour::tls(crate::rogue::tls12_flight(0xc02f, &cert))
    });
    let target = server.target();
    let mut backed_off = 0;
    for limit in 4..=64 {
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
                env!("CARGO_BIN_EXE_hsscan"),
                "--json",
                &target,
            ])
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Too few descriptors to start the runtime: no record, try more.
        let Some(line) = stdout.lines().next() else { continue };
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for pointer in ["/failure", "/quick/modern/failure", "/quick/legacy/failure"] {
            let f = at(&r, pointer);
            assert_ne!(f["kind"], "unreachable", "limit {limit}: {r:#}");
            if f["detail"].as_str().is_some_and(|d| d.contains("Too many open files")) {
                assert_eq!(
                    (&f["stage"], &f["kind"]),
                    (&json!("local"), &json!("local-error")),
                    "{r:#}"
                );
            }
        }
        if at(&r, "/failure/kind") == "local-error" {
            assert_eq!(r["status"], "inconclusive", "{r:#}");
        }
        let negotiated = r["status"] == "negotiated";
        let emfile = stderr.contains("Too many open files");
        if emfile {
            assert!(
                stderr.contains("connections back off and retry"),
                "limit {limit}: {stderr}"
            );
            // The second hello waited for the first one's descriptor.
            if negotiated {
                backed_off += 1;
            }
        }
        if negotiated && !emfile {
            break;
        }
    }
    assert!(backed_off > 0, "no descriptor limit made a probe back off and succeed");
}

#[test]
fn a_scan_that_panics_still_writes_its_record() {
    // Nothing listens there: the calm target is refused, the other panics first.
    let port = crate::support::free_port();
    let (calm, wild) = (format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(["--json", &calm, &wild])
        .env("NO_COLOR", "1")
        .env("HSSCAN_TEST_PANIC_HOST", "127.0.0.2")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hsscan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(records.len(), 2, "{stdout}\n{stderr}");
    let of = |ip: &str| {
        records
            .iter()
            .find(|r| r["target"]["ip"] == ip)
            .unwrap_or_else(|| panic!("no record for {ip}: {stdout}"))
    };
    let r = of("127.0.0.2");
    assert_eq!(r["status"], "inconclusive", "{r:#}");
    assert_both_failed(
        r,
        "local",
        "internal-error",
        "the scan panicked (a bug in hsscan): HSSCAN_TEST_PANIC_HOST names 127.0.0.2",
    );
    assert_eq!(r["connections"], 0, "{r:#}");
    assert_eq!(at(of("127.0.0.1"), "/failure/kind"), "refused");
}
