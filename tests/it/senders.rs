//! The sender verdict against the real sender (SPEC §8): for every
//! (sender profile, receiver) pair that can run here, hsscan's
//! `senders[].outcome` must equal what this machine's Postfix TLS engine
//! really does — `posttls-finger` at the profile's level, in wrapper mode
//! against real TLS servers on loopback — with the right `reason.kind`.
//!
//! The truth is posttls-finger's own log line ("… TLS connection
//! established …" or "SSL_connect error … TLS library problem …"), never
//! hsscan's.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::enum_support::{run, TOOL_LIMIT};
use crate::support::{certs, openssl_s_server, Server, Tool, GNUTLS_SERV};

pub const POSTTLS_FINGER: Tool = Tool {
    program: "posttls-finger",
    install: "install the Debian package `postfix` (apt-get install postfix)",
};

/// posttls-finger lives in /usr/sbin, which a user's PATH may lack.
fn posttls_finger_path() -> PathBuf {
    let sbin = Path::new("/usr/sbin/posttls-finger");
    if sbin.is_file() {
        sbin.to_path_buf()
    } else {
        POSTTLS_FINGER.require()
    }
}

/// An empty Postfix configuration directory: posttls-finger needs a main.cf.
fn empty_config(name: &str) -> PathBuf {
    let dir = certs().join(format!("postfix-config-{name}"));
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("main.cf"), "").expect("main.cf");
    dir
}

/// What the real sender did.
#[derive(Debug, Clone)]
struct Truth {
    tls: bool,
    line: String,
}

/// posttls-finger at `level` (and `-p protocols`) against `[host]:port`.
fn posttls_finger(level: &str, protocols: Option<&str>, host: &str, port: u16) -> Truth {
    let bin = posttls_finger_path();
    let config = empty_config("finger");
    // -h native: /etc/hosts, not DNS; no dnssec_probe: nothing but
    // loopback is ever asked.
    let mut args: Vec<String> = vec![
        "-w".into(),
        "-c".into(),
        "-a".into(),
        "ipv4".into(),
        "-h".into(),
        "native".into(),
        "-o".into(),
        "dnssec_probe=".into(),
        // The TLS line comes before the greeting, which a TLS server that
        // speaks no SMTP never sends: one second (-t) is spent waiting.
        "-t".into(),
        "1".into(),
        "-l".into(),
        level.into(),
    ];
    args.extend(["-F".into(), certs().join("ca.pem").display().to_string()]);
    if let Some(p) = protocols {
        args.extend(["-p".into(), p.into()]);
    }
    args.push(format!("[{host}]:{port}"));
    let out = run(
        &bin,
        &args,
        &[("MAIL_CONFIG", config.to_str().unwrap_or("/tmp"))],
        TOOL_LIMIT,
    );
    let text = out.both();
    let established = text
        .lines()
        .find(|l| l.contains("TLS connection established"))
        .map(str::to_owned);
    let verified_needed = matches!(level, "verify" | "secure");
    match established {
        Some(l) if !verified_needed || l.contains("Verified TLS connection") => Truth { tls: true, line: l },
        Some(l) => Truth { tls: false, line: l },
        None => Truth {
            tls: false,
            line: text
                .lines()
                .filter(|l| l.contains("error") || l.contains("problem") || l.contains("not "))
                .collect::<Vec<_>>()
                .join(" | "),
        },
    }
}

/// hsscan's verdict for `sender` against `host:port` (implicit TLS).
fn hsscan_sender(sender: &str, host: &str, port: u16, env: &[(&str, &str)]) -> Value {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let args: Vec<String> = vec![
        format!("{host}:{port}"),
        "--starttls".into(),
        "none".into(),
        "-4".into(),
        "--resolve".into(),
        format!("{host}:127.0.0.1"),
        "--json".into(),
        "--sender".into(),
        sender.into(),
        "--ca-file".into(),
        certs().join("ca.pem").display().to_string(),
    ];
    let out = run(hsscan, &args, env, TOOL_LIMIT);
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("hsscan {args:?} printed no JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// A receiver: a name, how to start it, and the reason hsscan must give a
/// sender that fails there (per sender level).
struct Receiver {
    name: &'static str,
    server: Server,
}

fn openssl(name: &'static str, args: &[&str]) -> Receiver {
    // -quiet: s_server then ends a session when its client falls silent
    // waiting for an SMTP greeting it never sends.
    let mut all: Vec<&str> = args.to_vec();
    all.push("-quiet");
    let mut server = openssl_s_server(name, &all);
    drop(server.connect());
    Receiver { name, server }
}

/// A 1024-bit RSA leaf signed by the test CA, for the weak-key receiver.
fn rsa1024() -> (PathBuf, PathBuf) {
    let dir = certs();
    let key = dir.join("rsa1024.key");
    let pem = dir.join("rsa1024.pem");
    if !pem.exists() {
        let ok = Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-newkey", "rsa:1024", "-nodes", "-keyout"])
            .arg(&key)
            .args(["-subj", "/CN=localhost", "-out", "rsa1024.csr"])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("openssl")
                .current_dir(dir)
                .args([
                    "x509",
                    "-req",
                    "-in",
                    "rsa1024.csr",
                    "-CA",
                    "int.pem",
                    "-CAkey",
                    "int.key",
                ])
                .args(["-set_serial", "1024", "-days", "30", "-out"])
                .arg(&pem)
                .stdin(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "making the 1024-bit RSA certificate");
    }
    (pem, key)
}

fn receivers() -> Vec<Receiver> {
    let dh1024 = certs().join("dh1024.pem");
    if !dh1024.exists() {
        let ok = Command::new("openssl")
            .args(["dhparam", "-out"])
            .arg(&dh1024)
            .arg("1024")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl dhparam 1024");
    }
    let dh = dh1024.display().to_string();
    let (pem, key) = rsa1024();
    let (pem, key) = (pem.display().to_string(), key.display().to_string());
    let chain = certs().join("int.pem").display().to_string();
    let mut weak = openssl_weak_key(&pem, &key, &chain);
    drop(weak.connect());
    let mut gnutls3des = Server::start("gnutls-serv-3des", GNUTLS_SERV, |port| {
        let d = certs();
        vec![
            "--port".into(),
            port.to_string(),
            "--x509certfile".into(),
            d.join("rsa-chain.pem").display().to_string(),
            "--x509keyfile".into(),
            d.join("rsa.key").display().to_string(),
            "--priority".into(),
            "NONE:+VERS-TLS1.2:+3DES-CBC:+RSA:+SHA1:+COMP-NULL:+SIGN-ALL:+CTYPE-X509".into(),
        ]
    });
    drop(gnutls3des.connect());
    vec![
        openssl("defaults", &[]),
        openssl(
            "tls1.0-ecdhe",
            &["-tls1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"],
        ),
        openssl(
            "tls1.0-ecdhe-or-rsa",
            &[
                "-tls1",
                "-serverpref",
                "-cipher",
                "ECDHE-RSA-AES256-SHA:AES256-SHA:@SECLEVEL=0",
            ],
        ),
        openssl("tls1.0-rsa", &["-tls1", "-cipher", "AES256-SHA:@SECLEVEL=0"]),
        openssl("tls1.3-only", &["-tls1_3"]),
        openssl(
            "dh1024",
            &[
                "-tls1_2",
                "-cipher",
                "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
                "-dhparam",
                &dh,
            ],
        ),
        openssl("ffdhe2048-only", &["-groups", "ffdhe2048"]),
        Receiver {
            name: "rsa1024",
            server: weak,
        },
        Receiver {
            name: "gnutls-3des-only",
            server: gnutls3des,
        },
    ]
}

fn openssl_weak_key(pem: &str, key: &str, chain: &str) -> Server {
    let (pem, key, chain) = (pem.to_owned(), key.to_owned(), chain.to_owned());
    Server::start("openssl-rsa1024", crate::support::OPENSSL, move |port| {
        vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            pem.clone(),
            "-cert_chain".into(),
            chain.clone(),
            "-key".into(),
            key.clone(),
            "-cipher".into(),
            "DEFAULT:@SECLEVEL=0".into(),
            "-quiet".into(),
        ]
    })
}

/// The senders that can run here, with the posttls-finger settings that
/// are each one's real client.
const SENDERS: &[(&str, &str, Option<&str>)] = &[
    ("postfix-3.7-openssl-3.0-may", "may", None),
    ("postfix-3.7-openssl-3.0-encrypt", "encrypt", None),
    ("postfix-3.7-openssl-3.0-verify", "verify", None),
];

#[test]
fn each_sender_outcome_equals_the_real_postfix_tls_engine() {
    let receivers = receivers();
    let mut problems = Vec::new();
    let mut matrix = Vec::new();
    for r in &receivers {
        for (sender, level, protocols) in SENDERS {
            let truth = posttls_finger(level, *protocols, "localhost", r.server.port);
            let record = hsscan_sender(sender, "localhost", r.server.port, &[]);
            let got = &record["senders"][0];
            let outcome = got["outcome"].as_str().unwrap_or("?");
            let reason = got["reason"]["kind"].as_str().unwrap_or("-");
            matrix.push(format!(
                "{:<20} {:<34} real {:<6} hsscan {outcome:<12} {reason}",
                r.name,
                sender,
                if truth.tls { "tls" } else { "no-tls" }
            ));
            let want = if truth.tls { "tls" } else { "no-tls" };
            if outcome != want || got["confirmed"] != true {
                problems.push(format!(
                    "{} / {sender}: hsscan {outcome} ({reason}: {}), real sender {want}: {}",
                    r.name, got["reason"]["detail"], truth.line
                ));
            }
        }
    }
    eprintln!("{}", matrix.join("\n"));
    assert!(
        problems.is_empty(),
        "{}\n\nmatrix:\n{}",
        problems.join("\n"),
        matrix.join("\n")
    );
}

#[test]
fn failure_reasons_name_the_cause() {
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "tls1.0-ecdhe",
            &["-tls1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"],
            "postfix-3.7-openssl-3.0-verify",
            "legacy-signature",
        ),
        (
            "tls1.3-only",
            &["-tls1_3"],
            "postfix-openssl-1.0.2-may",
            "no-shared-protocol",
        ),
        (
            "ffdhe2048-only",
            &["-groups", "ffdhe2048"],
            "postfix-3.7-openssl-3.0-may",
            "no-shared-cipher",
        ),
    ];
    for (name, args, sender, kind) in cases {
        let r = openssl(name, args);
        let record = hsscan_sender(sender, "localhost", r.server.port, &[]);
        assert_eq!(
            record["senders"][0]["reason"]["kind"], *kind,
            "{name} / {sender}: {record:#}"
        );
        assert_eq!(record["verdict"]["outcome"], "no-tls", "{record:#}");
    }
}

/// `local` with `smtp_tls_protocols = >=TLSv1.2` against a TLS 1.0
/// receiver: the real Postfix fails (protocol_version), hsscan says so,
/// and advises the policy line that relaxes it for that next hop only —
/// and a probe with the advised hello shows it works.
#[test]
fn a_tls12_minimum_fails_on_tls10_and_the_advice_relaxes_only_that_destination() {
    let r = openssl(
        "tls1.0-ecdhe-min12",
        &["-tls1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"],
    );
    let truth = posttls_finger("may", Some(">=TLSv1.2"), "localhost", r.server.port);
    assert!(!truth.tls, "posttls-finger -p >=TLSv1.2 got TLS: {}", truth.line);
    let config = certs().join("postfix-config-min12");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("main.cf"),
        "smtp_tls_security_level = may\nsmtp_tls_protocols = >=TLSv1.2\n",
    )
    .expect("main.cf");
    let record = hsscan_sender(
        "local",
        "localhost",
        r.server.port,
        &[("MAIL_CONFIG", config.to_str().unwrap_or("/tmp"))],
    );
    let s = &record["senders"][0];
    assert_eq!(s["sender"], "local", "{record:#}");
    assert_eq!(s["outcome"], "no-tls", "{record:#}");
    assert_eq!(s["reason"]["kind"], "no-shared-protocol", "{record:#}");
    assert_eq!(record["verdict"]["outcome"], "no-tls", "{record:#}");
    let fix = record["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-policy"))
        .unwrap_or_else(|| panic!("no policy advice: {record:#}"));
    assert_eq!(
        fix["policy_line"],
        format!("[localhost]:{} may protocols=>=TLSv1", r.server.port),
        "{record:#}"
    );
    assert_eq!(fix["expect"], "tls", "{record:#}");
    assert!(fix["verified_by"].is_string(), "{record:#}");
    // The relaxed sender really gets TLS.
    assert!(posttls_finger("may", Some(">=TLSv1"), "localhost", r.server.port).tls);
}

#[test]
fn an_unknown_sender_lists_the_valid_ones() {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let out = Command::new(hsscan)
        .args(["127.0.0.1:1", "--sender", "postfix-9"])
        .output()
        .expect("hsscan runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sender 'postfix-9'"), "{err}");
    assert!(
        err.contains("postfix-3.7-openssl-3.0-verify") && err.contains("local"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn local_without_postfix_config_says_which_default_was_assumed() {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let empty = certs().join("no-postfix-config-here");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = Command::new(hsscan)
        .arg("senders")
        .env("MAIL_CONFIG", &empty)
        .output()
        .expect("hsscan runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().take(2).collect::<Vec<_>>().join("\n");
    assert!(
        first.contains("local") && first.contains("postfix-3.7-openssl-3.0-may assumed"),
        "{first}"
    );
}

/// SPEC §8 advice, verified on a real Postfix: a relay whose
/// `smtp_tls_protocols = >=TLSv1.2` meets a Postfix receiver speaking only
/// TLS 1.0. hsscan (`--sender local`, reading that relay's own main.cf)
/// says no TLS and advises one policy line for that next hop; the relay's
/// delivery fails TLS before the line, and goes over TLS after it is put
/// in a postmap'd smtp_tls_policy_maps table — Postfix's own log says so.
#[test]
fn the_advised_policy_line_makes_a_real_postfix_relay_deliver_over_tls() {
    use crate::postfix::Postfix;
    let receiver = Postfix::start(&[
        ("smtpd_tls_protocols", "!SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3"),
        (
            "smtpd_tls_mandatory_protocols",
            "!SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3",
        ),
    ]);
    let nexthop = format!("[{}]:{}", receiver.ip, receiver.port);
    let relay = Postfix::start_relay(&[
        ("relayhost", &nexthop),
        ("mynetworks", "127.0.0.0/8"),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_protocols", ">=TLSv1.2"),
        ("smtp_tls_loglevel", "1"),
    ]);
    let conf = relay.conf_dir();
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let args: Vec<String> = vec![
        receiver.target(),
        "--starttls".into(),
        "smtp".into(),
        "--json".into(),
        "--sender".into(),
        "local".into(),
    ];
    let out = run(
        hsscan,
        &args,
        &[("MAIL_CONFIG", conf.to_str().unwrap_or("/tmp"))],
        TOOL_LIMIT,
    );
    let record: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", out.stdout, out.stderr));
    assert_eq!(record["verdict"]["outcome"], "no-tls", "{record:#}");
    assert_eq!(
        record["senders"][0]["reason"]["kind"], "no-shared-protocol",
        "{record:#}"
    );
    let line = record["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-policy"))
        .and_then(|x| x["policy_line"].as_str())
        .unwrap_or_else(|| panic!("no policy line: {record:#}"))
        .to_owned();
    assert_eq!(line, format!("{nexthop} may protocols=>=TLSv1"), "{record:#}");

    let established = |log: &str| log.matches("TLS connection established to").count();
    crate::emulate_postfix::submit(&relay);
    let before = relay.log_when(|l| l.contains("status=") && l.contains("relay="));
    assert_eq!(established(&before), 0, "TLS before the advice?\n{before}");
    assert!(
        before.contains("protocol version") || before.contains("unsupported protocol"),
        "the relay's TLS attempt should fail on the protocol version:\n{before}"
    );

    let table = conf.join("tls_policy");
    std::fs::write(&table, format!("{line}\n")).expect("write tls_policy");
    relay.postmap(&table);
    relay.reconfigure(&[("smtp_tls_policy_maps", &format!("hash:{}", table.display()))]);
    crate::emulate_postfix::submit(&relay);
    let after = relay.log_when(|l| established(l) >= 1);
    assert_eq!(established(&after), 1, "no TLS after the advised line:\n{after}");
}
