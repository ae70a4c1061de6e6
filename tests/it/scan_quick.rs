//! The quick check's happy paths against real peers on loopback: what the
//! modern and legacy hellos negotiate, the SMTP dialog, the certificate
//! chain and how many connections it all cost (SPEC §1 item 1, §3, §7).

use serde_json::{json, Value};

use crate::postfix::{Postfix, HOSTNAME};
use crate::scan_support::{assert_failure, at, hsscan, Run, EHLO};
use crate::support::certs;

/// `hsscan --json --starttls smtp` as a mail admin would run it against a
/// named MX: the name pinned to the instance's address (never DNS), the
/// test root trusted.
fn scan_named(pf: &Postfix) -> Run {
    let resolve = format!("{HOSTNAME}:{}", pf.ip);
    let target = format!("{HOSTNAME}:{}", pf.port);
    let ca = certs().join("ca.pem").display().to_string();
    hsscan(&[
        "--json",
        "--starttls",
        "smtp",
        "--ehlo",
        EHLO,
        "--resolve",
        &resolve,
        "--ca-file",
        &ca,
        &target,
    ])
}

/// `{"version": …, "cipher": …, "group": …}` by names, as hsscan reports them.
fn negotiated(version: (&str, &str), cipher: (&str, &str), group: Option<(&str, &str)>) -> Value {
    let cp = |(id, name): (&str, &str)| json!({"id": id, "name": name});
    json!({"version": cp(version), "cipher": cp(cipher), "group": group.map(cp)})
}

const TLS13: (&str, &str) = ("0x0304", "TLSv1.3");
const TLS10: (&str, &str) = ("0x0301", "TLSv1.0");
const AES256_GCM_SHA384: (&str, &str) = ("0x1302", "TLS_AES_256_GCM_SHA384");
const RSA_AES128_CBC_SHA: (&str, &str) = ("0x002f", "TLS_RSA_WITH_AES_128_CBC_SHA");
const X25519: (&str, &str) = ("0x001d", "X25519");

/// The RSA leaf and intermediate of `tests/support/mkcerts.sh`, as sent by
/// a server configured with `rsa-chain.pem`.
#[track_caller]
fn assert_test_chain(r: &Value) {
    let certificates = at(r, "/certificates").as_array().cloned().unwrap_or_default();
    assert_eq!(certificates.len(), 1, "{r:#}");
    assert_eq!(at(r, "/certificates/0/key"), "RSA 2048", "{r:#}");
    let chain = at(r, "/certificates/0/chain").as_array().cloned().unwrap_or_default();
    assert_eq!(chain.len(), 2, "leaf and intermediate: {r:#}");
    assert_eq!(
        at(r, "/certificates/0/chain/0/subject"),
        "O=hsscan test, CN=localhost",
        "{r:#}"
    );
    assert_eq!(
        at(r, "/certificates/0/chain/0/issuer"),
        "O=hsscan test, CN=hsscan test intermediate CA",
        "{r:#}"
    );
    assert_eq!(
        at(r, "/certificates/0/chain/0/san"),
        &json!(["localhost", "mx.test.example", "127.0.0.1"]),
        "{r:#}"
    );
    assert_eq!(
        at(r, "/certificates/0/chain/1/subject"),
        "O=hsscan test, CN=hsscan test intermediate CA",
        "{r:#}"
    );
}

/// Postfix's SMTP dialog up to a successful STARTTLS.
fn postfix_dialog() -> Value {
    json!({
        "banner": format!("220 {HOSTNAME} ESMTP Postfix"),
        "ehlo_name": EHLO,
        "extensions": [
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
        ],
        "starttls": "offered",
        "reply": "220 2.0.0 Ready to start TLS",
    })
}

#[test]
fn postfix_at_defaults_negotiates_tls13_and_shows_its_chain() {
    let pf = Postfix::start(&[]);
    eprintln!("postfix start took {:?}", pf.started_in);
    let run = scan_named(&pf);
    let r = run.record();
    let log = pf.log();
    assert_eq!(run.code, 0, "{}\n{log}", run.describe());
    assert_eq!(r["status"], "negotiated", "{r:#}\n{log}");
    assert_eq!(r["failure"], Value::Null, "{r:#}");
    assert_eq!(
        r["target"],
        json!({
            "input": format!("{HOSTNAME}:{}", pf.port),
            "host": HOSTNAME,
            "ip": pf.ip.to_string(),
            "port": pf.port,
            "transport": "smtp-starttls",
            "sni": HOSTNAME,
            "mx_of": null,
        }),
        "{r:#}"
    );
    assert_eq!(r["smtp"], postfix_dialog(), "{r:#}");
    assert_eq!(
        at(&r, "/quick/modern/result"),
        &negotiated(TLS13, AES256_GCM_SHA384, Some(X25519)),
        "{r:#}"
    );
    assert_eq!(at(&r, "/quick/modern/failure"), &Value::Null, "{r:#}");
    assert_eq!(at(&r, "/quick/modern/offered/max_version/name"), "TLSv1.3", "{r:#}");
    // Postfix 3.7's default smtpd_tls_protocols is ">=TLSv1": the legacy
    // hello gets TLS 1.0 and the first suite of its list that Postfix's
    // "medium" grade allows (RC4 and 3DES come before it and are refused).
    assert_eq!(
        at(&r, "/quick/legacy/result"),
        &negotiated(TLS10, RSA_AES128_CBC_SHA, None),
        "{r:#}"
    );
    assert_eq!(at(&r, "/quick/legacy/offered/max_version/name"), "TLSv1.0", "{r:#}");
    assert_test_chain(&r);
    // Trusted through --ca-file, named through --resolve: no verdict at all
    // (in particular no cert-untrusted), and TLS 1.3 is best: no finding.
    assert_eq!(at(&r, "/certificates/0/verdicts"), &json!([]), "{r:#}");
    assert_eq!(r["findings"], json!([]), "{r:#}");
    // Two connections, not three: the modern hello's TLS 1.3 answer hides the
    // chain, but the legacy hello's TLS 1.0 flight carries it in clear, so
    // scan.rs sends no third (TLS 1.2) hello just for the certificate;
    // the third connection is the headline sender's own hello.
    assert_eq!(r["connections"], 3, "{r:#}");
    assert_eq!(r["verdict"]["outcome"], "tls", "{r:#}");
    // Politeness (SPEC §7): EHLO and STARTTLS only, never MAIL FROM, and
    // the handshake is never completed; Postfix logs each session as such.
    let ended = |log: &str| log.matches(" disconnect from ").count();
    let log = pf.log_when(|log| ended(log) >= 3);
    assert_eq!(ended(&log), 3, "{log}");
    let sessions = log.matches(" ehlo=1 starttls=0/1 commands=1/2\n").count();
    assert_eq!(sessions, 3, "{log}");
}

#[test]
fn postfix_with_a_tls12_minimum_costs_a_certificate_connection() {
    let pf = Postfix::start(&[
        ("smtpd_tls_protocols", ">=TLSv1.2"),
        ("smtpd_tls_mandatory_protocols", ">=TLSv1.2"),
    ]);
    let run = scan_named(&pf);
    let r = run.record();
    let log = pf.log();
    assert_eq!(run.code, 0, "{}\n{log}", run.describe());
    assert_eq!(r["status"], "negotiated", "{r:#}\n{log}");
    assert_eq!(r["smtp"], postfix_dialog(), "{r:#}");
    assert_eq!(
        at(&r, "/quick/modern/result"),
        &negotiated(TLS13, AES256_GCM_SHA384, Some(X25519)),
        "{r:#}"
    );
    assert_eq!(at(&r, "/quick/legacy/result"), &Value::Null, "{r:#}");
    assert_failure(
        &r,
        "/quick/legacy/failure",
        "handshake",
        "alert",
        "protocol_version(70)",
    );
    assert_test_chain(&r);
    assert_eq!(at(&r, "/certificates/0/verdicts"), &json!([]), "{r:#}");
    assert_eq!(r["findings"], json!([]), "{r:#}");
    // Modern (TLS 1.3: chain encrypted), legacy (refused: no chain), then
    // one TLS 1.3 hello with a real key share whose first flight hsscan
    // decrypts: the chain a TLS 1.3 sender sees; then the headline
    // sender's own hello.
    assert_eq!(at(&r, "/certificates/0/version"), "TLSv1.3", "{r:#}");
    assert_eq!(r["connections"], 4, "{r:#}");
}

#[test]
fn tls10_only_server_negotiates_only_the_legacy_hello() {
    let mut server =
        crate::support::openssl_s_server("openssl-s_server-tls1", &["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"]);
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    let ca = certs().join("ca.pem").display().to_string();
    let run = hsscan(&["--json", "--ca-file", &ca, &target]);
    let r = run.record();
    assert_eq!(run.code, 0, "{}\n{}", run.describe(), server.log());
    assert_eq!(r["status"], "negotiated", "{r:#}\n{}", server.log());
    assert_eq!(r["failure"], Value::Null, "{r:#}");
    // The modern hello (TLS 1.2/1.3) meets a TLS 1.0-only OpenSSL.
    assert_eq!(at(&r, "/quick/modern/result"), &Value::Null, "{r:#}");
    assert_failure(
        &r,
        "/quick/modern/failure",
        "handshake",
        "alert",
        "protocol_version(70)",
    );
    assert_eq!(
        at(&r, "/quick/legacy/result"),
        &negotiated(TLS10, RSA_AES128_CBC_SHA, None),
        "{r:#}"
    );
    assert_eq!(at(&r, "/quick/legacy/failure"), &Value::Null, "{r:#}");
    let ids: Vec<&str> = r["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["protocol-below-tls12", "modern-hello-refused"], "{r:#}");
    assert_eq!(
        at(&r, "/findings/1/evidence"),
        "modern: alert (protocol_version(70)); legacy: TLSv1.0 TLS_RSA_WITH_AES_128_CBC_SHA",
        "{r:#}"
    );
    assert_test_chain(&r);
    // The legacy flight carried the chain: no certificate connection; the
    // third is the headline sender's own hello.
    assert_eq!(r["connections"], 3, "{r:#}");
}
