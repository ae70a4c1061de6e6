//! The certificates TLS 1.3 hides (SPEC §4): against TLS 1.3-only
//! `openssl s_server` and `gnutls-serv` with RSA and ECDSA keys, hsscan
//! decrypts the server's first flight and reports the chain it carries —
//! byte for byte the configured certificate — judged for expiry, name and
//! trust like a TLS 1.2 chain. A server whose TLS 1.3 chain differs from
//! its TLS 1.2 chain shows both; the emulator's TLS 1.3 flight, which is
//! not really encrypted, gives a warning, never a crash.

use std::process::Command;

use serde_json::Value;

use crate::emulate::emulator;
use crate::scan_support::{at, hsscan, Run};
use crate::support::{certs, Server, GNUTLS_SERV};

/// SHA-256 of a PEM certificate's DER, as `openssl x509 -outform DER | sha256sum` gives it.
fn der_sha256(pem: &str) -> String {
    let path = certs().join(pem);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -outform DER | sha256sum",
            path.display()
        ))
        .output()
        .expect("run openssl x509 | sha256sum");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `hsscan --json` against `localhost:PORT` (the leaves' name), the test
/// root trusted, plus `extra`.
fn scan(server: &Server, extra: &[&str]) -> Run {
    let target = format!("localhost:{}", server.port);
    let ca = certs().join("ca.pem").display().to_string();
    let mut args = vec!["--json", "--resolve", "localhost:127.0.0.1", "--ca-file", &ca];
    args.extend_from_slice(extra);
    args.push(&target);
    hsscan(&args)
}

/// The certificate reports as (version, key, leaf sha256, chain length).
fn chains(r: &Value) -> Vec<(String, String, String, usize)> {
    r["certificates"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["version"].as_str().unwrap_or("").to_owned(),
                        c["key"].as_str().unwrap_or("").to_owned(),
                        at(c, "/chain/0/sha256").as_str().unwrap_or("").to_owned(),
                        c["chain"].as_array().map_or(0, Vec::len),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn finding_ids(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn openssl_tls13(name: &'static str, key: &str, extra: &[&str]) -> Server {
    let args: Vec<String> = std::iter::once("-tls1_3")
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect();
    let mut server = openssl_s_server_with_key(name, key, &args);
    drop(server.connect());
    server
}

/// `openssl s_server` with the leaf of `key` ("rsa" or "ecdsa") and the
/// intermediate, plus `extra`.
fn openssl_s_server_with_key(name: &'static str, key: &str, extra: &[String]) -> Server {
    let dir = certs();
    let path = move |f: &str| dir.join(f).display().to_string();
    let (cert, k, int) = (
        path(&format!("{key}.pem")),
        path(&format!("{key}.key")),
        path("int.pem"),
    );
    let extra = extra.to_vec();
    Server::start(name, crate::support::OPENSSL, move |port| {
        let mut args: Vec<String> = vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            cert.clone(),
            "-cert_chain".into(),
            int.clone(),
            "-key".into(),
            k.clone(),
        ];
        args.extend(extra.iter().cloned());
        args
    })
}

#[test]
fn openssl_tls13_only_rsa_chain_is_decrypted_and_judged() {
    let server = openssl_tls13("openssl-tls13-rsa", "rsa", &[]);
    let run = scan(&server, &[]);
    let r = run.record();
    assert_eq!(run.code, 0, "{}\n{}", run.describe(), server.log());
    assert_eq!(r["status"], "negotiated", "{r:#}");
    assert_eq!(
        chains(&r),
        [("TLSv1.3".into(), "RSA 2048".into(), der_sha256("rsa.pem"), 2)],
        "{r:#}"
    );
    assert_eq!(
        at(&r, "/certificates/0/chain/1/sha256"),
        &Value::from(der_sha256("int.pem"))
    );
    // Trusted through --ca-file and named localhost: no verdict at all.
    assert_eq!(at(&r, "/certificates/0/verdicts"), &serde_json::json!([]), "{r:#}");
    // Modern (TLS 1.3), legacy (refused), the certificate hello, the
    // headline sender's own hello.
    assert_eq!(r["connections"], 4, "{r:#}");

    // Judged like a TLS 1.2 chain: a name the leaf does not carry, an
    // instant past its expiry, and no trusted root.
    let target = format!("mx.other.example:{}", server.port);
    let ca = certs().join("ca.pem").display().to_string();
    let run = hsscan(&[
        "--json",
        "--resolve",
        "mx.other.example:127.0.0.1",
        "--ca-file",
        &ca,
        "--at",
        "2099-01-01T00:00:00Z",
        &target,
    ]);
    let ids = finding_ids(&run.record());
    for id in ["cert-hostname-mismatch", "cert-expired"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing: {ids:?}\n{}", run.describe());
    }
    let run = hsscan(&["--json", &format!("127.0.0.1:{}", server.port)]);
    let ids = finding_ids(&run.record());
    assert!(ids.iter().any(|i| i == "cert-untrusted"), "{ids:?}\n{}", run.describe());
}

#[test]
fn openssl_tls13_only_ecdsa_with_p256_only_answers_a_retry_request_and_is_decrypted() {
    // The certificate hello's first share is X25519: a P-256-only server
    // asks again by HelloRetryRequest, and the second hello's P-256 share
    // derives the keys.
    let server = openssl_tls13("openssl-tls13-ecdsa-p256", "ecdsa", &["-groups", "P-256"]);
    let run = scan(&server, &[]);
    let r = run.record();
    assert_eq!(run.code, 0, "{}\n{}", run.describe(), server.log());
    assert_eq!(
        chains(&r),
        [("TLSv1.3".into(), "EC P-256".into(), der_sha256("ecdsa.pem"), 2)],
        "{r:#}"
    );
    assert_eq!(at(&r, "/certificates/0/verdicts"), &serde_json::json!([]), "{r:#}");
    // Each suite decrypts: AES-256-GCM/SHA-384 and ChaCha20-Poly1305.
    for suite in ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"] {
        let server = openssl_tls13("openssl-tls13-suite", "ecdsa", &["-ciphersuites", suite]);
        let r = scan(&server, &[]).record();
        assert_eq!(
            chains(&r),
            [("TLSv1.3".into(), "EC P-256".into(), der_sha256("ecdsa.pem"), 2)],
            "{suite}: {r:#}"
        );
    }
}

fn gnutls_tls13_only(name: &'static str) -> Server {
    let dir = certs();
    let p = move |f: &str| dir.join(f).display().to_string();
    let mut server = Server::start(name, GNUTLS_SERV, move |port| {
        vec![
            "--port".into(),
            port.to_string(),
            "--x509certfile".into(),
            p("ecdsa-chain.pem"),
            "--x509keyfile".into(),
            p("ecdsa.key"),
            "--x509certfile".into(),
            p("rsa-chain.pem"),
            "--x509keyfile".into(),
            p("rsa.key"),
            "--priority".into(),
            "NORMAL:-VERS-ALL:+VERS-TLS1.3".into(),
        ]
    });
    drop(server.connect());
    server
}

#[test]
fn gnutls_tls13_only_with_rsa_and_ecdsa_shows_both_chains() {
    let server = gnutls_tls13_only("gnutls-serv-tls13");
    // The quick check: the chain a modern sender gets.
    let r = scan(&server, &[]).record();
    let quick = chains(&r);
    assert_eq!(quick.len(), 1, "{r:#}\n{}", server.log());
    assert_eq!(quick[0].0, "TLSv1.3");
    // --enumerate: each key type the server presents (DANE rollover needs both).
    let run = scan(&server, &["--enumerate"]);
    let r = run.record();
    let mut got = chains(&r);
    got.sort();
    assert_eq!(
        got,
        [
            ("TLSv1.3".into(), "EC P-256".into(), der_sha256("ecdsa.pem"), 2),
            ("TLSv1.3".into(), "RSA 2048".into(), der_sha256("rsa.pem"), 2),
        ],
        "{}\n{}",
        run.describe(),
        server.log()
    );
    assert!(
        !finding_ids(&r).iter().any(|i| i == "tls13-certificate-not-decrypted"),
        "{r:#}"
    );
}

#[test]
fn a_tls13_chain_that_differs_from_the_tls12_chain_is_shown_beside_it() {
    // TLS 1.2 only with ECDHE-RSA suites: the RSA chain; TLS 1.3 picks by
    // signature algorithm, and the hello prefers ECDSA: the ECDSA chain.
    let dir = certs();
    let p = |f: &str| dir.join(f).display().to_string();
    let extra: Vec<String> = [
        "-dcert",
        &p("ecdsa.pem"),
        "-dkey",
        &p("ecdsa.key"),
        "-dcert_chain",
        &p("int.pem"),
        "-cipher",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "-no_tls1",
        "-no_tls1_1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut server = openssl_s_server_with_key("openssl-two-chains", "rsa", &extra);
    drop(server.connect());
    let run = scan(&server, &["--enumerate"]);
    let r = run.record();
    let mut got = chains(&r);
    got.sort();
    assert_eq!(
        got,
        [
            ("TLSv1.2".into(), "RSA 2048".into(), der_sha256("rsa.pem"), 2),
            ("TLSv1.3".into(), "EC P-256".into(), der_sha256("ecdsa.pem"), 2),
        ],
        "{}\n{}",
        run.describe(),
        server.log()
    );
}

#[test]
fn the_emulators_tls13_flight_is_a_warning_not_a_chain_nor_a_crash() {
    let em = emulator("tls13-only", &[]);
    for extra in [&[][..], &["--enumerate"][..]] {
        let target = format!("127.0.0.1:{}", em.port);
        let mut args = vec!["--json", "--starttls", "smtp"];
        args.extend_from_slice(extra);
        args.push(&target);
        let run = hsscan(&args);
        let r = run.record();
        assert_eq!(r["status"], "negotiated", "{}", run.describe());
        assert_eq!(r["certificates"], serde_json::json!([]), "{r:#}");
        let warning = r["findings"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["id"] == "tls13-certificate-not-decrypted"))
            .cloned()
            .unwrap_or_else(|| panic!("no warning: {r:#}"));
        assert_eq!(warning["severity"], "low", "{warning:#}");
        assert!(!run.stderr.contains("panicked"), "{}", run.describe());
    }
}
