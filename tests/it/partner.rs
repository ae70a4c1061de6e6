//! `--report partner` (SPEC §1 item 1): the Markdown report for the
//! receiving admin, checked for each failure class — a drop after the
//! hello, an alert, no shared protocol, a broken chain — against real or
//! emulated receivers on loopback.

use std::path::Path;
use std::process::Command;

use crate::emulate::emulator;
use crate::support::{certs, openssl_s_server, Server};

fn partner(target: &str, extra: &[&str]) -> (String, Option<i32>) {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let out = Command::new(hsscan)
        .arg(target)
        .args(["--report", "partner"])
        .args(extra)
        .output()
        .expect("hsscan runs");
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code())
}

#[track_caller]
fn has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "the partner report lacks {n:?}:\n{text}");
    }
}

const SECTIONS: [&str; 6] = [
    "# TLS problem report: ",
    "## Where the session fails",
    "## What the server negotiates",
    "## Certificate chain",
    "## Senders",
    "## Requested checks",
];

#[test]
fn a_drop_after_the_hello_points_at_the_device_in_front() {
    let em = emulator("lb-drop-after-hello", &[]);
    let (text, code) = partner(
        &format!("127.0.0.1:{}", em.port),
        &["--starttls", "smtp", "--sender", "local"],
    );
    assert_eq!(code, Some(1), "{text}");
    has(&text, &SECTIONS);
    has(
        &text,
        &[
            "SMTP reached: banner",
            "STARTTLS: offered",
            "the connection is dropped right after the client's ClientHello",
            "check the device in front of the mail server",
            "- No certificate was seen.",
        ],
    );
}

#[test]
fn an_alert_names_the_schannel_cipher_settings_of_an_exchange() {
    let em = emulator("exchange2007", &[]);
    let (text, code) = partner(&format!("127.0.0.1:{}", em.port), &["--starttls", "smtp"]);
    assert_eq!(code, Some(1), "{text}");
    has(&text, &SECTIONS);
    has(
        &text,
        &[
            "Microsoft ESMTP",
            "the server answers the ClientHello with a fatal alert",
            "handshake_failure(40)",
            "SSL Cipher Suite Order",
            "| Exchange Online (Microsoft 365) outbound | no-tls |",
            "legacy hello (up to TLSv1.0, 215 suites): TLSv1.0 TLS_RSA_WITH_RC4_128_MD5",
        ],
    );
}

#[test]
fn no_shared_protocol_asks_for_tls12() {
    let mut s: Server = openssl_s_server("partner-tls10", &["-tls1", "-cipher", "AES256-SHA:@SECLEVEL=0"]);
    drop(s.connect());
    let (text, code) = partner(
        &format!("127.0.0.1:{}", s.port),
        &["--starttls", "none", "--sender", "postfix-openssl-3.5-may"],
    );
    assert_eq!(code, Some(1), "{text}");
    has(&text, &SECTIONS);
    has(
        &text,
        &[
            "the server and the client share no protocol version",
            "no-shared-protocol",
            "Enable TLS 1.2",
        ],
    );
}

#[test]
fn a_broken_chain_asks_for_the_intermediate() {
    // The leaf alone: its intermediate is not sent.
    let dir = certs();
    let mut s = Server::start("partner-leaf-only", crate::support::OPENSSL, move |port| {
        vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            dir.join("rsa.pem").display().to_string(),
            "-key".into(),
            dir.join("rsa.key").display().to_string(),
        ]
    });
    drop(s.connect());
    let ca = certs().join("ca.pem").display().to_string();
    let (text, code) = partner(
        &format!("localhost:{}", s.port),
        &[
            "--starttls",
            "none",
            "-4",
            "--resolve",
            "localhost:127.0.0.1",
            "--ca-file",
            &ca,
            "--sender",
            "postfix-3.7-openssl-3.0-verify",
        ],
    );
    assert_eq!(code, Some(1), "{text}");
    has(&text, &SECTIONS);
    has(
        &text,
        &[
            "the server's certificate chain does not verify",
            "certificate-rejected",
            "cert-missing-intermediate",
            "with its intermediate certificates",
        ],
    );
}
