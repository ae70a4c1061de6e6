//! MTA-STS and TLS-RPT against real peers (SPEC §3c, §6): the TXT records
//! come from knot through unbound (the DNS lab), the policies from nginx
//! over HTTPS with certificates of the test CA (trusted through
//! --ca-file), the MX from `openssl s_server`. Each case gives its RFC 8460
//! result: valid, wrong certificate name, 404, malformed policy, mode
//! testing/enforce/none, an MX no pattern covers, and an MX certificate
//! not valid for the MX's name.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dns_lab::{sbin, DnsLab, Kind, Zone};
use crate::scan_support::{at, hsscan, Run};
use crate::support::{certs, Server, Tool};

pub const NGINX: Tool = Tool {
    program: "nginx",
    install: "install the Debian package `nginx` (apt-get install nginx); `bash .ci/run` does",
};

/// Where nginx listens: MTA-STS policies are always fetched from port
/// 443, so the lab takes a loopback address of its own for it.
const POLICY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 61);

/// (domain label, policy body or None for no file, whether nginx has a
/// certificate for its mta-sts host, whether the MX certificate names its MX).
const CASES: [(&str, Option<&str>, bool, bool); 9] = [
    (
        "enforce",
        Some("version: STSv1\nmode: enforce\nmx: mx.enforce.sts.test\nmax_age: 86400\n"),
        true,
        true,
    ),
    (
        "wild",
        Some("version: STSv1\nmode: enforce\nmx: *.wild.sts.test\nmax_age: 86400\n"),
        true,
        true,
    ),
    (
        "mismatch",
        Some("version: STSv1\nmode: enforce\nmx: other.mismatch.sts.test\nmx: *.sts.test\nmax_age: 86400\n"),
        true,
        true,
    ),
    (
        "testing",
        Some("version: STSv1\nmode: testing\nmx: other.testing.sts.test\nmax_age: 86400\n"),
        true,
        true,
    ),
    ("none", Some("version: STSv1\nmode: none\nmax_age: 86400\n"), true, true),
    ("missing", None, true, true),
    (
        "malformed",
        Some("version: STSv1\nmode: strict\nmx mx.malformed.sts.test\n"),
        true,
        true,
    ),
    (
        "wrongname",
        Some("version: STSv1\nmode: enforce\nmx: mx.wrongname.sts.test\nmax_age: 86400\n"),
        false,
        true,
    ),
    (
        "certname",
        Some("version: STSv1\nmode: enforce\nmx: mx.certname.sts.test\nmax_age: 86400\n"),
        true,
        false,
    ),
];

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a helper command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A leaf of the test CA's intermediate for `names`: (chain PEM, key).
fn leaf(dir: &Path, tag: &str, names: &[String]) -> (PathBuf, PathBuf) {
    let c = certs();
    let key = dir.join(format!("{tag}.key"));
    let csr = dir.join(format!("{tag}.csr"));
    let pem = dir.join(format!("{tag}.pem"));
    let ext = dir.join(format!("{tag}.ext"));
    let chain = dir.join(format!("{tag}-chain.pem"));
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        &ext,
        format!("subjectAltName={}\nextendedKeyUsage=serverAuth\n", san.join(",")),
    )
    .unwrap();
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .args(["-subj", &format!("/O=hsscan test/CN={tag}")])
        .arg("-out")
        .arg(&csr));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-sha256", "-set_serial", "7"])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(c.join("int.pem"))
        .arg("-CAkey")
        .arg(c.join("int.key"))
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&pem));
    let text = std::fs::read_to_string(&pem).unwrap() + &std::fs::read_to_string(c.join("int.pem")).unwrap();
    std::fs::write(&chain, text).unwrap();
    (chain, key)
}

struct Lab {
    dns: DnsLab,
    _nginx: Server,
    mx: Server,
}

fn lab() -> Lab {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = certs().join(format!("mta-sts-{nanos}"));
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    // The MX certificate names every MX but the certname case's.
    let mx_names: Vec<String> = CASES
        .iter()
        .filter(|c| c.3)
        .map(|c| format!("mx.{}.sts.test", c.0))
        .collect();
    let (mx_chain, mx_key) = leaf(&dir, "mx", &mx_names);
    let sts_names: Vec<String> = CASES
        .iter()
        .filter(|c| c.2)
        .map(|c| format!("mta-sts.{}.sts.test", c.0))
        .collect();
    let (sts_chain, sts_key) = leaf(&dir, "mta-sts", &sts_names);
    let (other_chain, other_key) = leaf(&dir, "other", &["other.sts.test".to_owned()]);
    let mut servers = String::new();
    for (label, body, _, _) in CASES {
        let root = dir.join("www").join(label);
        std::fs::create_dir_all(root.join(".well-known")).unwrap();
        if let Some(b) = body {
            std::fs::write(root.join(".well-known/mta-sts.txt"), b).unwrap();
        }
        servers.push_str(&format!(
            "  server {{ listen {POLICY_IP}:443 ssl; server_name mta-sts.{label}.sts.test; ssl_certificate {}; ssl_certificate_key {}; root {}; }}\n",
            sts_chain.display(),
            sts_key.display(),
            root.display()
        ));
    }
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n  types {{ text/plain txt; }}\n  default_type text/plain;\n  server {{ listen {POLICY_IP}:443 ssl default_server; server_name _; ssl_certificate {}; ssl_certificate_key {}; root {d}/www/none; }}\n{servers}}}\n",
            other_chain.display(),
            other_key.display()
        ),
    )
    .unwrap();
    let conf2 = conf.clone();
    let d2 = dir.clone();
    let nginx = Server::start_program("nginx", sbin(NGINX), move |_| {
        vec![
            "-p".into(),
            d2.display().to_string(),
            "-c".into(),
            conf2.display().to_string(),
            "-e".into(),
            format!("{}/error.log", d2.display()),
        ]
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&SocketAddr::from((POLICY_IP, 443)), Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start\n{}\n{}",
            nginx.log(),
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (c, k) = (mx_chain.display().to_string(), mx_key.display().to_string());
    let int = certs().join("int.pem").display().to_string();
    let mut mx = Server::start("openssl-mta-sts-mx", crate::support::OPENSSL, move |port| {
        vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            c.clone(),
            "-cert_chain".into(),
            int.clone(),
            "-key".into(),
            k.clone(),
        ]
    });
    drop(mx.connect());
    let mut records = String::new();
    for (label, _, _, _) in CASES {
        records.push_str(&format!(
            "mx.{label} A 127.0.0.1\n_mta-sts.{label} TXT \"v=STSv1; id=20261201T000000;\"\nmta-sts.{label} A {POLICY_IP}\n"
        ));
    }
    records.push_str("mx.nopolicy A 127.0.0.1\n");
    records.push_str(
        "_smtp._tls.enforce TXT \"v=TLSRPTv1; rua=mailto:tls-reports@sts.test,https://reports.sts.test/v1\"\n",
    );
    let dns = DnsLab::start(
        "mta-sts",
        &[Zone {
            name: "sts.test",
            kind: Kind::Plain,
            records,
        }],
        "servfail.test",
    );
    Lab { dns, _nginx: nginx, mx }
}

impl Lab {
    fn scan(&self, label: &str) -> Run {
        let host = format!("mx.{label}.sts.test");
        let target = format!("{host}:{}", self.mx.port);
        let resolve = format!("{host}:127.0.0.1");
        let dns = self.dns.resolver();
        let ca = certs().join("ca.pem").display().to_string();
        hsscan(&[
            "--json",
            "--mta-sts",
            "--dns",
            &dns,
            "--resolve",
            &resolve,
            "--ca-file",
            &ca,
            "--sender",
            "local",
            "--sender",
            "gmail",
            &target,
        ])
    }
}

#[test]
fn mta_sts_results_follow_each_policy_and_certificate() {
    let lab = lab();
    let expected = [
        ("enforce", "enforce-ok"),
        ("wild", "enforce-ok"),
        ("mismatch", "certificate-host-mismatch"),
        ("testing", "testing"),
        ("none", "none"),
        ("missing", "sts-policy-fetch-error"),
        ("malformed", "sts-policy-invalid"),
        ("wrongname", "sts-webpki-invalid"),
        ("certname", "certificate-host-mismatch"),
        ("nopolicy", "none"),
    ];
    for (label, result) in expected {
        let run = lab.scan(label);
        let r = run.record();
        let m: &Value = at(&r, "/policy/mta_sts");
        assert_eq!(m["result"], result, "{label}: {m:#}\n{}", run.describe());
        let host = format!("mx.{label}.sts.test");
        // A sender that enforces MTA-STS (Gmail) fails exactly where the
        // policy fails delivery; the opportunistic headline does not.
        let gmail = &r["senders"][1];
        assert_eq!(gmail["sender"], "gmail", "{r:#}");
        if result == "certificate-host-mismatch" {
            assert_eq!(gmail["outcome"], "no-tls", "{label}: {gmail:#}");
            assert_eq!(gmail["reason"]["kind"], "certificate-rejected", "{label}: {gmail:#}");
            assert!(
                gmail["reason"]["detail"].as_str().unwrap_or("").contains("MTA-STS"),
                "{gmail:#}"
            );
            assert_eq!(r["senders"][0]["outcome"], "tls", "{label}: {r:#}");
        } else {
            assert_eq!(gmail["outcome"], "tls", "{label}: {gmail:#}");
        }
        match label {
            "enforce" | "wild" => assert_eq!(m["mx_matches"][&host], true, "{m:#}"),
            "mismatch" => {
                // *.sts.test covers one label only: not mx.mismatch.sts.test.
                assert_eq!(m["mx_matches"][&host], false, "{m:#}");
                assert!(
                    r["findings"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|f| f["id"] == "mta-sts-mx-mismatch")),
                    "{r:#}"
                );
            }
            "missing" => assert_eq!(at(m, "/fetch/status"), 404, "{m:#}"),
            "certname" => {
                assert_eq!(m["mx_matches"][&host], true, "{m:#}");
                assert!(
                    m["certificate_problems"][&host]
                        .as_str()
                        .unwrap_or("")
                        .contains("cert-hostname-mismatch"),
                    "{m:#}"
                );
            }
            "nopolicy" => assert_eq!(m["txt"], Value::Null, "{m:#}"),
            _ => {}
        }
        if label == "enforce" {
            assert_eq!(at(m, "/txt/id"), "20261201T000000", "{m:#}");
            assert_eq!(at(m, "/policy/max_age"), 86400, "{m:#}");
            assert_eq!(
                at(m, "/fetch/url"),
                "https://mta-sts.enforce.sts.test/.well-known/mta-sts.txt",
                "{m:#}"
            );
            let rpt = at(&r, "/policy/tls_rpt");
            assert_eq!(
                rpt["rua"],
                serde_json::json!(["mailto:tls-reports@sts.test", "https://reports.sts.test/v1"]),
                "{rpt:#}"
            );
        }
    }
}
