//! Real clients against the emulator's real keys: with a real
//! ServerKeyExchange signature and real key-exchange parameters,
//! `openssl s_client` and a real Postfix smtp client get as far as their
//! ClientKeyExchange against an emulated legacy flight, or refuse it for
//! the reason their own security level gives, and the emulator logs which
//! (`client_reply` on its JSON connection line, "the client accepted the
//! negotiation: …" in its text log).
//!
//! The truth is the client's own output — what `s_client -trace` says it
//! sent and the error it printed, the handshake states Postfix logs at
//! `smtp_tls_loglevel = 2` — never the emulator's log, which must agree
//! with it. Debian 12's OpenSSL 3.0 runs at security level 2 by default
//! (`CipherString = DEFAULT:@SECLEVEL=2` in /etc/ssl/openssl.cnf); Postfix
//! sets level 0 below `verify` (`tls_client_init()`, see emulate_postfix).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulate::{emulator, emulator_with, profile_file, s_client, Trace};
use crate::emulate_postfix::submit;
use crate::postfix::Postfix;
use crate::support::{certs, Server};

/// How long the emulator may take to write a connection's record after
/// the client has gone (it waits up to 1 s for the client's close).
const RECORD_WINDOW: Duration = Duration::from_secs(15);

/// The emulator playing a profile file written here, with `--json`.
fn emulator_config(name: &str, toml: &str) -> Server {
    emulator_with(vec![
        "emulate".into(),
        "--json".into(),
        "--config".into(),
        profile_file(name, toml).display().to_string(),
    ])
}

/// The emulator's JSON connection records that got as far as a TLS ≤ 1.2
/// flight, once there are `n` of them.
fn replies(em: &Server, n: usize) -> Vec<Value> {
    let begun = Instant::now();
    loop {
        let text = std::fs::read_to_string(em.log_path()).unwrap_or_default();
        // Only whole lines: the last one may still be being written.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        let records: Vec<Value> = whole
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["record"] == "connection" && !v["client_reply"].is_null())
            .collect();
        if records.len() >= n {
            return records;
        }
        assert!(
            begun.elapsed() < RECORD_WINDOW,
            "{} of {n} connection records with a client_reply within {RECORD_WINDOW:?}\n{}",
            records.len(),
            em.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The emulator's text log once it holds `n` lines with `needle`.
fn text_log_with(em: &Server, needle: &str, n: usize) -> String {
    let begun = Instant::now();
    loop {
        let text = std::fs::read_to_string(em.log_path()).unwrap_or_default();
        if text.matches(needle).count() >= n {
            return text;
        }
        assert!(
            begun.elapsed() < RECORD_WINDOW,
            "no {needle:?} ×{n} in the emulator's log within {RECORD_WINDOW:?}\n{}",
            em.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether s_client's trace shows it sending a ClientKeyExchange.
fn sent_client_key_exchange(t: &Trace) -> bool {
    let mut sent = false;
    for line in t.text.lines().map(str::trim) {
        match line {
            "Sent Record" => sent = true,
            "Received Record" => sent = false,
            l if sent && l.starts_with("ClientKeyExchange, Length=") => return true,
            _ => {}
        }
    }
    false
}

/// The fatal alert s_client's trace shows it sending, e.g. "internal error(80)".
fn sent_alert(t: &Trace) -> Option<String> {
    let mut sent = false;
    for line in t.text.lines().map(str::trim) {
        match line {
            "Sent Record" => sent = true,
            "Received Record" => sent = false,
            l if sent => {
                if let Some(a) = l.strip_prefix("Level=fatal(2), description=") {
                    return Some(a.to_owned());
                }
            }
            _ => {}
        }
    }
    None
}

#[track_caller]
fn assert_accepted(t: &Trace, record: &Value, em: &Server) {
    let ctx = format!(
        "{}\n--- emulator record ---\n{}",
        t.text,
        serde_json::to_string_pretty(record).unwrap_or_default()
    );
    assert!(sent_client_key_exchange(t), "s_client sent no ClientKeyExchange\n{ctx}");
    let reply = &record["client_reply"];
    assert_eq!(reply["result"], "accepted", "{ctx}\n{}", em.log());
    assert!(
        reply["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("the client accepted the negotiation: ClientKeyExchange received")),
        "{ctx}"
    );
    let messages: Vec<&str> = reply["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        messages.first().is_some_and(|m| m.starts_with("ClientKeyExchange (")),
        "{ctx}"
    );
    assert!(messages.contains(&"ChangeCipherSpec"), "{ctx}");
    assert!(reply["alert"].is_null(), "{ctx}");
}

#[track_caller]
fn assert_refused(t: &Trace, record: &Value, alert: &str, openssl_error: &str) {
    let ctx = format!(
        "{}\n--- emulator record ---\n{}",
        t.text,
        serde_json::to_string_pretty(record).unwrap_or_default()
    );
    assert!(
        t.text.contains(openssl_error),
        "s_client does not say {openssl_error:?}\n{ctx}"
    );
    assert!(!sent_client_key_exchange(t), "{ctx}");
    let reply = &record["client_reply"];
    assert_eq!(reply["result"], "refused", "{ctx}");
    assert_eq!(reply["alert"], alert, "{ctx}");
    assert_eq!(
        reply["detail"],
        format!("the client refused the negotiation: alert {alert}"),
        "{ctx}"
    );
}

#[test]
fn exchange2010_s_client_at_seclevel_0_sends_its_client_key_exchange() {
    let em = emulator("exchange2010", &[]);
    let t = s_client(em.port, true, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    let r = replies(&em, 1);
    assert_accepted(&t, &r[0], &em);
    // What s_client saw: a TLS 1.0 MD5+SHA-1 RSA signature over a real
    // P-256 point, then the emulator's close.
    for line in [
        "Peer signing digest: MD5-SHA1",
        "Peer signature type: RSA",
        "Server Temp Key: ECDH, prime256v1, 256 bits",
        "Protocol  : TLSv1",
    ] {
        assert!(t.text.contains(line), "no {line:?}\n{}", t.text);
    }
    let answer = &r[0]["hellos"][0]["answer"];
    assert_eq!(answer["cipher"]["name"], "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA");
    assert_eq!(answer["signature"], "RSA MD5-SHA1 with the RSA 2048 key");
}

#[test]
fn exchange2010_s_client_at_its_default_level_refuses_the_md5_sha1_signature() {
    // The text log this time.
    let em = emulator_with(["emulate", "--profile", "exchange2010"].map(str::to_owned).to_vec());
    let t = s_client(em.port, true, &["-tls1"]);
    let log = text_log_with(&em, "<- the client refused the negotiation", 1);
    assert!(
        t.text.contains("legacy sigalg disallowed or unsupported"),
        "{}\n{log}",
        t.text
    );
    assert_eq!(sent_alert(&t).as_deref(), Some("internal error(80)"), "{}", t.text);
    assert!(!sent_client_key_exchange(&t), "{}", t.text);
    assert!(
        log.contains("<- the client refused the negotiation: alert internal_error(80)"),
        "{log}"
    );
    // Then the same emulator, at level 0: accepted, in the text log too.
    let t = s_client(em.port, true, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert!(sent_client_key_exchange(&t), "{}", t.text);
    let log = text_log_with(
        &em,
        "<- the client accepted the negotiation: ClientKeyExchange received",
        1,
    );
    assert!(log.contains("signed RSA MD5-SHA1 with the RSA 2048 key"), "{log}");
}

const RENEGOTIATION: &str = "features = [\"secure_renegotiation\"]\n";

#[test]
fn tls12_ecdhe_ecdsa_is_accepted_on_x25519_and_p256_and_never_offered_off_the_leaf_curve() {
    let em = emulator_config(
        "ecdhe-ecdsa-tls12",
        &format!(
            "description = \"TLS 1.2 ECDHE-ECDSA\"\n[smtp]\n[tls]\nversions = [\"TLSv1.2\"]\n{RENEGOTIATION}ciphers = [\"ECDHE-ECDSA-AES128-GCM-SHA256\"]\ngroups = [\"x25519\", \"secp256r1\", \"secp384r1\"]\n"
        ),
    );
    // Debian's default level 2: a SHA-256 ECDSA signature on X25519 …
    let t = s_client(em.port, true, &["-tls1_2"]);
    let r = replies(&em, 1);
    assert_accepted(&t, &r[0], &em);
    for line in [
        "Peer signing digest: SHA256",
        "Peer signature type: ECDSA",
        "Server Temp Key: X25519, 253 bits",
    ] {
        assert!(t.text.contains(line), "no {line:?}\n{}", t.text);
    }
    assert_eq!(
        r[0]["hellos"][0]["answer"]["signature"],
        "ecdsa_secp256r1_sha256 with the ECDSA P-256 key"
    );
    // … and on a real P-256 point.
    let t = s_client(em.port, true, &["-tls1_2", "-groups", "P-256"]);
    let r = replies(&em, 2);
    assert_accepted(&t, &r[1], &em);
    assert!(
        t.text.contains("Server Temp Key: ECDH, prime256v1, 256 bits"),
        "{}",
        t.text
    );
    // A client that lists only P-384 cannot take the P-256 leaf ("wrong
    // curve", RFC 8422 §5.1): the suite is not chosen, and with no other
    // suite the answer is the profile's handshake_failure.
    let t = s_client(em.port, true, &["-tls1_2", "-groups", "P-384"]);
    assert_eq!(
        t.alert.as_deref(),
        Some("handshake failure(40)"),
        "{}\n{}",
        t.text,
        em.log()
    );
    assert!(!sent_client_key_exchange(&t), "{}", t.text);
}

fn dhe_profile(bits: u32) -> String {
    format!(
        "description = \"TLS 1.2 DHE-RSA\"\n[smtp]\n[tls]\nversions = [\"TLSv1.2\"]\n{RENEGOTIATION}ciphers = [\"DHE-RSA-AES128-GCM-SHA256\"]\ndh_bits = {bits}\n"
    )
}

#[test]
fn tls12_dhe_rsa_1024_bits_needs_seclevel_1_and_2048_bits_passes_the_default() {
    let em = emulator_config("dhe-1024", &dhe_profile(1024));
    // Level 2 wants 2048-bit DH: the client refuses the real 1024-bit group.
    let t = s_client(em.port, true, &["-tls1_2"]);
    let r = replies(&em, 1);
    assert_refused(&t, &r[0], "handshake_failure(40)", "dh key too small");
    // Level 1 takes it, and the RSA-PSS signature over it.
    let t = s_client(em.port, true, &["-tls1_2", "-cipher", "DEFAULT:@SECLEVEL=1"]);
    let r = replies(&em, 2);
    assert_accepted(&t, &r[1], &em);
    for line in ["Server Temp Key: DH, 1024 bits", "Peer signature type: RSA-PSS"] {
        assert!(t.text.contains(line), "no {line:?}\n{}", t.text);
    }
    let why = r[1]["hellos"][0]["answer"]["why"].as_str().unwrap_or("");
    assert!(why.contains("group rfc2409-group2"), "{why}");

    let em = emulator_config("dhe-2048", &dhe_profile(2048));
    let t = s_client(em.port, true, &["-tls1_2"]);
    let r = replies(&em, 1);
    assert_accepted(&t, &r[0], &em);
    assert!(t.text.contains("Server Temp Key: DH, 2048 bits"), "{}", t.text);
    let why = r[0]["hellos"][0]["answer"]["why"].as_str().unwrap_or("");
    assert!(why.contains("group ffdhe2048"), "{why}");
}

#[test]
fn a_profile_preferring_rsa_pkcs1_sha1_signs_so_only_when_the_client_offers_it() {
    let em = emulator_config(
        "sha1-first",
        &format!(
            "description = \"SHA-1 first\"\n[smtp]\n[tls]\nversions = [\"TLSv1.2\"]\n{RENEGOTIATION}ciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\"]\ngroups = [\"secp256r1\"]\nsignature_algorithms = [\"rsa_pkcs1_sha1\", \"rsa_pkcs1_sha256\"]\n"
        ),
    );
    // At level 0 the client offers rsa_pkcs1_sha1 and accepts it …
    let t = s_client(em.port, true, &["-tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    let r = replies(&em, 1);
    assert_accepted(&t, &r[0], &em);
    assert!(t.text.contains("Peer signing digest: SHA1"), "{}", t.text);
    // … at its default level it does not offer it: the profile's next.
    let t = s_client(em.port, true, &["-tls1_2"]);
    let r = replies(&em, 2);
    assert_accepted(&t, &r[1], &em);
    assert!(t.text.contains("Peer signing digest: SHA256"), "{}", t.text);
    assert_eq!(
        r[1]["hellos"][0]["answer"]["signature"],
        "rsa_pkcs1_sha256 with the RSA 2048 key"
    );
}

#[test]
fn key_files_sign_for_their_cert_files_and_a_cert_without_its_key_is_refused() {
    let dir = certs();
    let path = |f: &str| dir.join(f).display().to_string();
    // The test PKI's chains with their keys, in PKCS#1 and PKCS#8.
    let em = emulator_with(
        [
            "emulate",
            "--profile",
            "exchange2010",
            "--json",
            "--cert",
            &path("rsa-chain.pem"),
            "--key",
            &path("rsa-pkcs1.key"),
            "--cert",
            &path("ecdsa-chain.pem"),
            "--key",
            &path("ecdsa.key"),
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let verify = [
        "-CAfile",
        &path("ca.pem"),
        "-verify_return_error",
        "-verify_hostname",
        "mx.test.example",
    ];
    let mut args = vec!["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"];
    args.extend(verify);
    let t = s_client(em.port, true, &args);
    let r = replies(&em, 1);
    assert_accepted(&t, &r[0], &em);
    assert!(t.text.contains("Verify return code: 0 (ok)"), "{}", t.text);
    let mut args = vec!["-tls1", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"];
    args.extend(verify);
    let t = s_client(em.port, true, &args);
    let r = replies(&em, 2);
    assert_accepted(&t, &r[1], &em);
    assert!(t.text.contains("Peer signature type: ECDSA"), "{}", t.text);
    assert_eq!(
        r[1]["hellos"][0]["answer"]["signature"],
        "ECDSA SHA1 with the ECDSA P-256 key"
    );

    // Without the key the signature is filler, which the client detects.
    let em = emulator_with(
        [
            "emulate",
            "--profile",
            "exchange2010",
            "--json",
            "--cert",
            &path("rsa-chain.pem"),
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    assert!(
        em.log().contains("no --key for the RSA leaf of") && em.log().contains("signatures are filler"),
        "{}",
        em.log()
    );
    let t = s_client(em.port, true, &["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"]);
    let r = replies(&em, 1);
    assert_refused(&t, &r[0], "decrypt_error(51)", "bad signature");
}

/// One delivery attempt of a real Postfix relaying to the emulator.
struct Delivery {
    /// The emulator's connection record of the attempt.
    record: Value,
    /// Postfix's smtp client lines of the attempt, in order.
    smtp: Vec<String>,
    port: u16,
}

/// Relays one message through a throwaway Postfix to the emulated
/// `profile`, with `overrides` on top of `smtp_tls_loglevel = 2`; returns
/// the emulator, the relay and its log once the delivery has an outcome.
fn relay_to(profile: &str, overrides: &[(&str, &str)]) -> (Server, Postfix, String) {
    let em = emulator(profile, &[]);
    let relayhost = format!("[127.0.0.1]:{}", em.port);
    let mut settings = vec![
        ("relayhost", relayhost.as_str()),
        ("mynetworks", "127.0.0.0/8"),
        ("smtp_tls_loglevel", "2"),
    ];
    settings.extend_from_slice(overrides);
    let pf = Postfix::start_relay(&settings);
    submit(&pf);
    let log = pf.log_when(|l| l.contains("status=deferred") || l.contains("status=sent"));
    (em, pf, log)
}

/// Relays one message through a throwaway Postfix (3.7 on OpenSSL 3.0
/// here) to the exchange2010 emulator, with `overrides` on top of
/// `smtp_tls_loglevel = 2`, which logs each OpenSSL handshake state.
fn deliver_to_exchange2010(overrides: &[(&str, &str)]) -> Delivery {
    let (em, _pf, log) = relay_to("exchange2010", overrides);
    let record = replies(&em, 1).swap_remove(0);
    let smtp = log
        .lines()
        .filter(|l| l.contains("/smtp["))
        .map(|l| l.split_once("]: ").map_or(l, |(_, m)| m).to_owned())
        .collect();
    Delivery {
        record,
        smtp,
        port: em.port,
    }
}

impl Delivery {
    /// Asserts that Postfix logged `lines` (each a substring), in this order.
    #[track_caller]
    fn logged_in_order(&self, lines: &[&str]) {
        let mut at = 0;
        for want in lines {
            match self.smtp.iter().skip(at).position(|l| l.contains(want)) {
                Some(i) => at += i + 1,
                None => panic!("Postfix did not log {want:?} (in this order)\n{}", self.context()),
            }
        }
    }

    fn context(&self) -> String {
        format!(
            "--- Postfix smtp ---\n{}\n--- emulator client_reply ---\n{}",
            self.smtp.join("\n"),
            self.record["client_reply"]
        )
    }
}

#[test]
fn postfix_to_exchange2010_gets_past_the_server_flight_at_may_and_encrypt_but_not_at_verify() {
    // `may` and `encrypt`: Postfix runs its OpenSSL client at security
    // level 0, takes TLS 1.0 and the MD5-SHA1 signature, and sends its
    // ClientKeyExchange, ChangeCipherSpec and Finished; the emulator then
    // closes, so Postfix defers the mail for a lost connection.
    for level in ["may", "encrypt"] {
        let d = deliver_to_exchange2010(&[("smtp_tls_security_level", level)]);
        d.logged_in_order(&[
            "SSL_connect:SSLv3/TLS read server key exchange",
            "SSL_connect:SSLv3/TLS read server done",
            "SSL_connect:SSLv3/TLS write client key exchange",
            "SSL_connect:SSLv3/TLS write change cipher spec",
            "SSL_connect:SSLv3/TLS write finished",
            &format!("SSL_connect error to 127.0.0.1[127.0.0.1]:{}: lost connection", d.port),
            "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
        ]);
        let reply = &d.record["client_reply"];
        assert_eq!(reply["result"], "accepted", "{level}\n{}", d.context());
        assert_eq!(
            reply["messages"][0]
                .as_str()
                .map(|m| m.starts_with("ClientKeyExchange (")),
            Some(true),
            "{}",
            d.context()
        );
    }
    // `verify` raises the level to 1 for the session: the signature is
    // refused before any ClientKeyExchange.
    let d = deliver_to_exchange2010(&[("smtp_tls_security_level", "verify")]);
    d.logged_in_order(&[
        "SSL_connect:SSLv3/TLS read server certificate",
        "SSL3 alert write:fatal:internal error",
        "legacy sigalg disallowed or unsupported",
        "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
    ]);
    assert!(
        !d.smtp.iter().any(|l| l.contains("write client key exchange")),
        "{}",
        d.context()
    );
    assert_eq!(
        d.record["client_reply"]["alert"],
        "internal_error(80)",
        "{}",
        d.context()
    );
    // A TLS 1.2 minimum refuses the TLS 1.0 ServerHello itself.
    let d = deliver_to_exchange2010(&[("smtp_tls_security_level", "may"), ("smtp_tls_protocols", ">=TLSv1.2")]);
    d.logged_in_order(&[
        "SSL3 alert write:fatal:protocol version",
        "unsupported protocol",
        "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
    ]);
    assert_eq!(
        d.record["client_reply"]["alert"],
        "protocol_version(70)",
        "{}",
        d.context()
    );
}

/// The sender verdict against the Exchange 2007 and 2010 emulator
/// profiles (SPEC §8, issue acceptance): for this machine's Postfix at
/// `may`, at `verify` and with `smtp_tls_protocols = >=TLSv1.2`, hsscan's
/// headline for `--sender local` (reading a main.cf with those settings)
/// equals what the real Postfix relay does — the emulator's record of its
/// ClientKeyExchange (it accepted the negotiation) or of its alert, and
/// Postfix's own log — with the reason and exit code to match.
#[test]
fn the_headline_for_exchange_2007_and_2010_equals_what_the_real_postfix_does() {
    let hsscan = std::path::Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let settings: [(&str, &[(&str, &str)]); 3] = [
        ("may", &[("smtp_tls_security_level", "may")]),
        ("verify", &[("smtp_tls_security_level", "verify")]),
        (
            "may >=TLSv1.2",
            &[("smtp_tls_security_level", "may"), ("smtp_tls_protocols", ">=TLSv1.2")],
        ),
    ];
    let mut matrix = Vec::new();
    let mut problems = Vec::new();
    for profile in ["exchange2007", "exchange2010"] {
        for (label, overrides) in &settings {
            // The truth: a real relay delivering to the profile.
            let (em, _pf, log) = relay_to(profile, overrides);
            let accepted = log.contains("SSLv3/TLS write client key exchange");
            let real = if accepted { "tls" } else { "no-tls" };
            // hsscan, as that Postfix: its own main.cf.
            let conf = certs().join(format!("main-cf-{profile}-{}", label.replace([' ', '>', '='], "")));
            std::fs::create_dir_all(&conf).expect("config dir");
            let main_cf: String = overrides.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            crate::support::write_postfix_file(&conf.join("main.cf"), &main_cf);
            let out = std::process::Command::new(hsscan)
                .args([
                    &format!("127.0.0.1:{}", em.port),
                    "--starttls",
                    "smtp",
                    "--json",
                    "--sender",
                    "local",
                ])
                .env("MAIL_CONFIG", &conf)
                .output()
                .expect("hsscan runs");
            let record: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let got = record["verdict"]["outcome"].as_str().unwrap_or("?");
            let reason = record["senders"][0]["reason"]["kind"].as_str().unwrap_or("-");
            let want_code = if got == "tls" { 0 } else { 1 };
            matrix.push(format!(
                "{profile:<13} {label:<14} real {real:<7} hsscan {got:<7} {reason}"
            ));
            if got != real || out.status.code() != Some(want_code) {
                problems.push(format!(
                    "{profile} at {label}: hsscan {got} ({reason}, exit {:?}), the real Postfix {real}\n{}",
                    out.status.code(),
                    log.lines()
                        .filter(|l| l.contains("/smtp["))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
            let want_reason = match (profile, *label) {
                ("exchange2007", _) => "no-shared-cipher",
                ("exchange2010", "verify") => "legacy-signature",
                ("exchange2010", "may >=TLSv1.2") => "no-shared-protocol",
                _ => "-",
            };
            if reason != want_reason {
                problems.push(format!("{profile} at {label}: reason {reason}, want {want_reason}"));
            }
        }
    }
    eprintln!("{}", matrix.join("\n"));
    assert!(
        problems.is_empty(),
        "{}\n\n{}",
        problems.join("\n\n"),
        matrix.join("\n")
    );
}
