//! DANE/TLSA against real DNSSEC (SPEC §3c, §6): knot signs the test
//! zones, unbound validates them, and hsscan asks unbound (`--dns`) for
//! the TLSA records of TLS servers on loopback. Each case gives its
//! RFC 8460 result and DNSSEC status; SERVFAIL is `error`, never
//! `no-tlsa`.

use serde_json::Value;

use crate::dns_lab::{spki_sha256, DnsLab, Kind, Zone};
use crate::scan_support::{at, hsscan, Run};
use crate::support::{certs, Server};

/// A TLS 1.2/1.3 `openssl s_server` with the RSA leaf, and with
/// `dual` the ECDSA leaf too.
fn tls_server(name: &'static str, dual: bool) -> Server {
    let dir = certs();
    let p = move |f: &str| dir.join(f).display().to_string();
    let mut server = Server::start(name, crate::support::OPENSSL, move |port| {
        let mut a: Vec<String> = vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            p("rsa.pem"),
            "-cert_chain".into(),
            p("int.pem"),
            "-key".into(),
            p("rsa.key"),
        ];
        if dual {
            a.extend([
                "-dcert".into(),
                p("ecdsa.pem"),
                "-dcert_chain".into(),
                p("int.pem"),
                "-dkey".into(),
                p("ecdsa.key"),
            ]);
        }
        a
    });
    drop(server.connect());
    server
}

struct Lab {
    dns: DnsLab,
    single: Server,
    dual: Server,
}

fn lab(tag: &str) -> Lab {
    let single = tls_server("openssl-dane", false);
    let dual = tls_server("openssl-dane-dual", true);
    let (p, q) = (single.port, dual.port);
    let rsa = spki_sha256("rsa.pem");
    let ecdsa = spki_sha256("ecdsa.pem");
    let wrong = "00".repeat(32);
    let signed = format!(
        "@ MX 10 mx\n_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@signed.test\"\n\
         mx A 127.0.0.1\n_{p}._tcp.mx TLSA 3 1 1 {rsa}\n\
         bad A 127.0.0.1\n_{p}._tcp.bad TLSA 3 1 1 {wrong}\n\
         none A 127.0.0.1\n\
         roll A 127.0.0.1\n_{q}._tcp.roll TLSA 3 1 1 {ecdsa}\n\
         both A 127.0.0.1\n_{q}._tcp.both TLSA 3 1 1 {ecdsa}\n_{q}._tcp.both TLSA 3 1 1 {rsa}\n"
    );
    let plain = format!("@ MX 10 mx.signed.test.\nmx A 127.0.0.1\n_{p}._tcp.mx TLSA 3 1 1 {rsa}\n");
    let bogus = format!("mx A 127.0.0.1\n_{p}._tcp.mx TLSA 3 1 1 {rsa}\n");
    let dns = DnsLab::start(
        tag,
        &[
            Zone {
                name: "signed.test",
                kind: Kind::Signed,
                records: signed,
            },
            Zone {
                name: "plain.test",
                kind: Kind::Plain,
                records: plain,
            },
            Zone {
                name: "bogus.test",
                kind: Kind::Bogus,
                records: bogus,
            },
        ],
        "servfail.test",
    );
    Lab { dns, single, dual }
}

impl Lab {
    /// `hsscan --dane --json HOST:PORT`, the name pinned to loopback for
    /// the scan itself; DNS (TLSA, and the host's DNSSEC status) from unbound.
    fn scan(&self, host: &str, dual: bool, extra: &[&str]) -> Run {
        let port = if dual { self.dual.port } else { self.single.port };
        let target = format!("{host}:{port}");
        let resolve = format!("{host}:127.0.0.1");
        let dns = self.dns.resolver();
        let ca = certs().join("ca.pem").display().to_string();
        let mut args = vec![
            "--json",
            "--dane",
            "--dns",
            &dns,
            "--resolve",
            &resolve,
            "--ca-file",
            &ca,
        ];
        args.extend_from_slice(extra);
        args.push(&target);
        hsscan(&args)
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.dns.knot.log(), self.dns.unbound.log())
    }
}

fn dane(run: &Run) -> Value {
    at(&run.record(), "/policy/dane").clone()
}

#[test]
fn dane_results_follow_the_real_dnssec_status() {
    let lab = lab("dane");
    let cases: [(&str, bool, &[&str], &str, &str); 7] = [
        ("mx.signed.test", false, &[], "secure", "valid"),
        ("bad.signed.test", false, &[], "secure", "tlsa-invalid"),
        ("none.signed.test", false, &[], "secure", "no-tlsa"),
        ("mx.plain.test", false, &[], "insecure", "no-tlsa"),
        ("mx.bogus.test", false, &[], "bogus", "dnssec-invalid"),
        ("mx.servfail.test", false, &[], "error", "error"),
        ("both.signed.test", true, &["--enumerate"], "secure", "valid"),
    ];
    for (host, dual, extra, dnssec, result) in cases {
        let run = lab.scan(host, dual, extra);
        let d = dane(&run);
        assert_eq!(d["dnssec"], dnssec, "{host}: {d:#}\n{}\n{}", run.describe(), lab.logs());
        assert_eq!(d["result"], result, "{host}: {d:#}\n{}", lab.logs());
        let port = if dual { lab.dual.port } else { lab.single.port };
        assert_eq!(d["tlsa_name"], format!("_{port}._tcp.{host}"), "{d:#}");
        assert_eq!(d["resolver"], lab.dns.resolver(), "{d:#}");
    }
}

#[test]
fn servfail_is_an_error_with_the_resolvers_answer_never_no_tlsa() {
    let lab = lab("servfail");
    let d = dane(&lab.scan("mx.servfail.test", false, &[]));
    assert_eq!(
        (d["dnssec"].as_str(), d["result"].as_str()),
        (Some("error"), Some("error")),
        "{d:#}"
    );
    assert!(d["detail"].as_str().unwrap_or("").contains("SERVFAIL"), "{d:#}");
    assert_eq!(d["records"], serde_json::json!([]), "{d:#}");
    // Beside it, a secure denial is "no-tlsa": the two are told apart.
    let d = dane(&lab.scan("none.signed.test", false, &[]));
    assert_eq!(
        (d["dnssec"].as_str(), d["result"].as_str()),
        (Some("secure"), Some("no-tlsa")),
        "{d:#}"
    );
}

#[test]
fn insecure_tlsa_records_are_listed_and_matched_but_ignored() {
    let lab = lab("insecure");
    let run = lab.scan("mx.plain.test", false, &[]);
    let d = dane(&run);
    assert_eq!(d["records"].as_array().map(Vec::len), Some(1), "{d:#}");
    assert_eq!(d["records"][0]["data"], spki_sha256("rsa.pem"), "{d:#}");
    assert_eq!(at(&d, "/per_endpoint/0/matched"), &serde_json::json!([0]), "{d:#}");
    assert_eq!(d["result"], "no-tlsa", "{d:#}");
    let r = run.record();
    assert!(
        r["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["id"] == "dane-tlsa-insecure")),
        "{r:#}"
    );
}

#[test]
fn a_record_for_only_one_of_two_key_types_is_not_rollover_ready() {
    let lab = lab("rollover");
    let run = lab.scan("roll.signed.test", true, &["--enumerate"]);
    let d = dane(&run);
    assert_eq!(d["result"], "valid", "{d:#}\n{}", run.describe());
    assert_eq!(at(&d, "/rollover/ready"), false, "{d:#}");
    assert_eq!(at(&d, "/rollover/missing"), &serde_json::json!(["RSA 2048"]), "{d:#}");
    let r = run.record();
    assert!(
        r["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["id"] == "dane-rollover-not-ready")),
        "{r:#}"
    );
    // With a record for each key type: ready.
    let d = dane(&lab.scan("both.signed.test", true, &["--enumerate"]));
    assert_eq!(at(&d, "/rollover/ready"), true, "{d:#}");
}

#[test]
fn mx_domain_records_carry_policy_and_an_insecure_mx_rrset_disables_dane() {
    // A real Postfix as the MX (SMTP STARTTLS, the test RSA chain), named
    // by a signed domain and by an unsigned one.
    let pf = crate::postfix::Postfix::start(&[]);
    let port = pf.port;
    let rsa = spki_sha256("rsa.pem");
    let dns = DnsLab::start(
        "bulk",
        &[
            Zone {
                name: "mxs.test",
                kind: Kind::Signed,
                records: format!(
                    "@ MX 10 mx\nmx A {}\n_{port}._tcp.mx TLSA 3 1 1 {rsa}\n_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@mxs.test\"\n",
                    pf.ip
                ),
            },
            Zone {
                name: "mxp.test",
                kind: Kind::Plain,
                records: "@ MX 10 mx.mxs.test.\n".to_owned(),
            },
        ],
        "servfail.test",
    );
    let resolver = dns.resolver();
    let port_arg = port.to_string();
    let ca = certs().join("ca.pem").display().to_string();
    let run = hsscan(&[
        "--mx",
        "--jsonl",
        "-q",
        "--dns",
        &resolver,
        "--mx-port",
        &port_arg,
        "--ca-file",
        &ca,
        "mxs.test",
        "mxp.test",
    ]);
    let records: Vec<Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let logs = format!("{}\n{}\n{}", dns.knot.log(), dns.unbound.log(), pf.log());
    let domain = |name: &str| {
        records
            .iter()
            .find(|r| r["record"] == "domain" && r["domain"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no domain record for {name}\n{}\n{logs}", run.describe()))
    };
    // mxs.test: a secure MX RRset, a secure host, a matching record.
    let d = domain("mxs.test");
    assert_eq!(at(&d, "/status"), "negotiated", "{d:#}\n{logs}");
    assert_eq!(at(&d, "/policy/dane/result"), "valid", "{d:#}\n{logs}");
    assert_eq!(
        at(&d, "/policy/dane/mx/0/tlsa_name"),
        format!("_{port}._tcp.mx.mxs.test").as_str(),
        "{d:#}"
    );
    assert_eq!(at(&d, "/policy/dane/mx/0/mx_dnssec"), "secure", "{d:#}");
    assert_eq!(
        at(&d, "/policy/dane/mx/0/per_endpoint/0/ip"),
        pf.ip.to_string().as_str(),
        "{d:#}"
    );
    assert_eq!(at(&d, "/policy/mta_sts/result"), "none", "{d:#}");
    assert_eq!(
        at(&d, "/policy/tls_rpt/rua"),
        &serde_json::json!(["mailto:tlsrpt@mxs.test"]),
        "{d:#}"
    );
    // mxp.test: the same MX host, named by an insecure MX RRset.
    let d = domain("mxp.test");
    assert_eq!(at(&d, "/policy/dane/mx/0/mx_dnssec"), "insecure", "{d:#}");
    assert_eq!(at(&d, "/policy/dane/result"), "no-tlsa", "{d:#}");
    assert!(
        at(&d, "/policy/dane/mx/0/detail")
            .as_str()
            .unwrap_or("")
            .contains("MX records are not DNSSEC-secure"),
        "{d:#}"
    );
    // One endpoint record for the shared host, with its own DANE result
    // and no domain policy of its own.
    let endpoints: Vec<&Value> = records.iter().filter(|r| r["record"] == "endpoint").collect();
    assert_eq!(endpoints.len(), 1, "{}", run.describe());
    assert_eq!(at(endpoints[0], "/policy/dane/result"), "valid", "{:#}", endpoints[0]);
    assert_eq!(at(endpoints[0], "/policy/mta_sts"), &Value::Null, "{:#}", endpoints[0]);
}

/// The sender verdict of a Postfix at `smtp_tls_security_level = dane`
/// (`--sender local` reading a main.cf that says so) follows the DANE
/// result: TLS where the usable TLSA records match, no TLS
/// (`certificate-rejected`, naming DANE) where they do not.
#[test]
fn a_dane_sender_fails_where_the_tlsa_records_do_not_match() {
    let lab = lab("dane-sender");
    let conf = certs().join("main-cf-dane");
    std::fs::create_dir_all(&conf).expect("config dir");
    crate::support::write_postfix_file(&conf.join("main.cf"), "smtp_tls_security_level = dane\n");
    let dns = lab.dns.resolver();
    let ca = certs().join("ca.pem").display().to_string();
    for (host, want, kind) in [
        ("mx.signed.test", "tls", None),
        ("bad.signed.test", "no-tls", Some("certificate-rejected")),
    ] {
        let target = format!("{host}:{}", lab.single.port);
        let resolve = format!("{host}:127.0.0.1");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hsscan"))
            .args([
                "--json",
                "--dane",
                "--dns",
                &dns,
                "--resolve",
                &resolve,
                "--ca-file",
                &ca,
            ])
            .args(["--sender", "local", &target])
            .env("MAIL_CONFIG", &conf)
            .output()
            .expect("hsscan runs");
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let s = &r["senders"][0];
        assert_eq!(s["outcome"], want, "{host}: {r:#}\n{}", lab.logs());
        if let Some(k) = kind {
            assert_eq!(s["reason"]["kind"], k, "{s:#}");
            assert!(
                s["reason"]["detail"].as_str().unwrap_or("").starts_with("DANE"),
                "{s:#}"
            );
        }
        assert_eq!(r["verdict"]["outcome"], want, "{r:#}");
    }
}

/// `3 0 1` data of a PEM certificate: the SHA-256 of its DER.
fn cert_sha256(pem: &str) -> String {
    let path = certs().join(pem);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -outform DER | sha256sum",
            path.display()
        ))
        .output()
        .expect("openssl | sha256sum");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `--resume` after a run that wrote a domain's endpoint records but not
/// its domain record (killed in between): the resumed run writes the
/// domain record from the earlier endpoint records, and its `policy.dane`
/// — each record matched against the chains those records describe —
/// equals the one the uninterrupted run wrote.
#[test]
fn a_resumed_domain_gets_the_dane_result_of_a_fresh_run() {
    let pf = crate::postfix::Postfix::start(&[]);
    let port = pf.port;
    let (spki, cert) = (spki_sha256("rsa.pem"), cert_sha256("rsa.pem"));
    let wrong = "11".repeat(32);
    let dns = DnsLab::start(
        "resume",
        &[Zone {
            name: "res.test",
            kind: Kind::Signed,
            records: format!(
                "@ MX 10 mx\nmx A {ip}\n_{port}._tcp.mx TLSA 3 1 1 {spki}\n_{port}._tcp.mx TLSA 3 0 1 {cert}\n\
                     bad MX 10 mxbad\nmxbad A {ip}\n_{port}._tcp.mxbad TLSA 3 1 1 {wrong}\n",
                ip = pf.ip
            ),
        }],
        "servfail.test",
    );
    let resolver = dns.resolver();
    let port_arg = port.to_string();
    let ca = certs().join("ca.pem").display().to_string();
    let dir = certs().join("resume-dane");
    std::fs::create_dir_all(&dir).expect("dir");
    let saved = dir.join("endpoints.jsonl");
    let saved_arg = saved.display().to_string();
    let mut args = vec![
        "--mx",
        "--jsonl",
        "-q",
        "--dns",
        &resolver,
        "--mx-port",
        &port_arg,
        "--ca-file",
        &ca,
        "res.test",
        "bad.res.test",
    ];
    let fresh = hsscan(&args);
    let records = |run: &Run| -> Vec<Value> {
        run.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let logs = || format!("{}\n{}\n{}", dns.knot.log(), dns.unbound.log(), pf.log());
    let first = records(&fresh);
    let endpoints: String = first
        .iter()
        .filter(|r| r["record"] == "endpoint")
        .map(|r| format!("{r}\n"))
        .collect();
    assert_eq!(endpoints.lines().count(), 2, "{}\n{}", fresh.describe(), logs());
    std::fs::write(&saved, endpoints).expect("write the endpoint records");
    args.extend(["--resume", &saved_arg]);
    let resumed = hsscan(&args);
    let second = records(&resumed);
    // Nothing is scanned again: only the two domain records are written.
    assert!(second.iter().all(|r| r["record"] == "domain"), "{}", resumed.describe());
    let domain = |rs: &[Value], name: &str| {
        rs.iter()
            .find(|r| r["record"] == "domain" && r["domain"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no domain record for {name}\n{}\n{}", resumed.describe(), logs()))
    };
    for (name, result) in [("res.test", "valid"), ("bad.res.test", "tlsa-invalid")] {
        let (a, b) = (domain(&first, name), domain(&second, name));
        assert_eq!(at(&a, "/policy/dane/result"), result, "{a:#}");
        assert_eq!(
            at(&a, "/policy/dane"),
            at(&b, "/policy/dane"),
            "fresh {a:#}\nresumed {b:#}"
        );
        assert_eq!(
            at(&a, "/policy/mta_sts"),
            at(&b, "/policy/mta_sts"),
            "fresh {a:#}\nresumed {b:#}"
        );
    }
    // Both records match, the SPKI one and the whole-certificate one.
    let a = domain(&first, "res.test");
    assert_eq!(
        at(&a, "/policy/dane/mx/0/per_endpoint/0/matched"),
        &serde_json::json!([0, 1]),
        "{a:#}"
    );
}
