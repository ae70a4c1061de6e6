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

/// Where the held policy server listens (port 443 too).
const HELD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 62);

/// Port 443 of these loopback addresses is one per machine, not per test
/// process: two runs of the suite at once would collide on it. Whoever
/// binds it first holds a lock for as long as its server runs, and the
/// others wait their turn. The lock is an abstract Unix socket bound under
/// a fixed name: one holder per machine (network namespace), released when
/// the listener drops, and by the kernel when the process dies.
fn port_443_lock() -> std::os::unix::net::UnixListener {
    use std::os::linux::net::SocketAddrExt as _;
    const NAME: &[u8] = b"hsscan-it-loopback-port-443";
    /// How long a test waits for another run to be done with the port.
    const WAIT: Duration = Duration::from_secs(600);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(NAME).expect("an abstract socket name");
    let start = Instant::now();
    loop {
        match std::os::unix::net::UnixListener::bind_addr(&addr) {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && start.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot take the port-443 lock (another test run holding it for {WAIT:?}?): {e}"),
        }
    }
}

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
    // Released after nginx is gone.
    _port: std::os::unix::net::UnixListener,
}

fn lab() -> Lab {
    let port = port_443_lock();
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
    Lab {
        dns,
        _nginx: nginx,
        mx,
        _port: port,
    }
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

/// Domain records wait for their own policy lookups only: of two domains
/// sharing one MX host, the first's MTA-STS policy server (a real HTTPS
/// server that holds its answer until the test releases it) does not hold
/// back the second's record, and once released the first's record comes,
/// with the policy it served. Each record is written exactly once.
#[test]
fn a_slow_policy_fetch_holds_back_no_other_domains_record() {
    use std::io::BufRead as _;
    let port = port_443_lock();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = certs().join(format!("held-{nanos}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (chain, key) = leaf(&dir, "held", &["mta-sts.slow.wr.test".to_owned()]);
    let body = dir.join("policy.txt");
    std::fs::write(&body, "version: STSv1\nmode: enforce\nmx: mx.wr.test\nmax_age: 86400\n").unwrap();
    let release = dir.join("release");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/held_https.py");
    let args: Vec<String> = [
        script.display().to_string(),
        HELD_IP.to_string(),
        "443".to_owned(),
        chain.display().to_string(),
        key.display().to_string(),
        body.display().to_string(),
        release.display().to_string(),
    ]
    .into();
    let held = Server::start("held-https", crate::scan_support::PYTHON3, move |_| args.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !held.log().contains("listening") {
        assert!(
            Instant::now() < deadline,
            "the held HTTPS server did not start\n{}",
            held.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pf = crate::postfix::Postfix::start(&[]);
    let dns = DnsLab::start(
        "held",
        &[Zone {
            name: "wr.test",
            kind: Kind::Plain,
            records: format!(
                "slow MX 10 mx\nfast MX 10 mx\nmx A {}\n_mta-sts.slow TXT \"v=STSv1; id=1;\"\nmta-sts.slow A {HELD_IP}\n",
                pf.ip
            ),
        }],
        "servfail.test",
    );
    let ca = certs().join("ca.pem").display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(["--mx", "--jsonl", "-q", "--timeout", "30", "--dns"])
        .arg(dns.resolver())
        .args([
            "--mx-port",
            &pf.port.to_string(),
            "--ca-file",
            &ca,
            "slow.wr.test",
            "fast.wr.test",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hsscan runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let logs = || {
        format!(
            "{}\n{}\n{}\n{}",
            held.log(),
            dns.knot.log(),
            dns.unbound.log(),
            pf.log()
        )
    };
    // A bound on a run that hangs, not a measurement: the fetch's own
    // timeout (twice --timeout capped at 10 s) is far below it.
    const HANG: Duration = Duration::from_secs(90);
    let mut seen: Vec<Value> = Vec::new();
    let domain_in = |seen: &[Value], name: &str| {
        seen.iter()
            .filter(|r| r["record"] == "domain" && r["domain"] == name)
            .count()
    };
    // Until fast.wr.test's record is out, the policy server has not answered.
    while domain_in(&seen, "fast.wr.test") == 0 {
        let r = rx
            .recv_timeout(HANG)
            .unwrap_or_else(|_| panic!("no record for fast.wr.test\n{seen:#?}\n{}", logs()));
        seen.push(r);
    }
    assert_eq!(domain_in(&seen, "slow.wr.test"), 0, "{seen:#?}\n{}", logs());
    // slow.wr.test's fetch is under way (it may not have reached the
    // server yet): once the server holds it, still no record for it.
    let deadline = Instant::now() + HANG;
    while !held.log().contains("request /.well-known/mta-sts.txt") {
        assert!(Instant::now() < deadline, "no policy request\n{}", logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    seen.extend(rx.try_iter());
    assert_eq!(domain_in(&seen, "slow.wr.test"), 0, "{seen:#?}\n{}", logs());
    assert!(!held.log().contains("released"), "{}", logs());
    std::fs::write(&release, "").unwrap();
    while let Ok(r) = rx.recv_timeout(HANG) {
        seen.push(r);
    }
    let status = child.wait().expect("hsscan exits");
    let _ = reader.join();
    assert!(status.code().is_some(), "{status}");
    assert_eq!(domain_in(&seen, "slow.wr.test"), 1, "{seen:#?}");
    assert_eq!(domain_in(&seen, "fast.wr.test"), 1, "{seen:#?}");
    assert_eq!(
        seen.iter().filter(|r| r["record"] == "endpoint").count(),
        1,
        "{seen:#?}"
    );
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let slow = seen
        .iter()
        .find(|r| r["domain"] == "slow.wr.test")
        .cloned()
        .unwrap_or_default();
    // The policy the held server served (the MX, Postfix with the test
    // leaf, is not named by it: certificate-host-mismatch).
    assert_eq!(at(&slow, "/policy/mta_sts/fetch/status"), 200, "{slow:#}\n{}", logs());
    assert_eq!(at(&slow, "/policy/mta_sts/policy/mode"), "enforce", "{slow:#}");
    assert_eq!(at(&slow, "/policy/mta_sts/mx_matches/mx.wr.test"), true, "{slow:#}");
    assert!(held.log().contains("released"), "{}", logs());
    let fast = seen
        .iter()
        .find(|r| r["domain"] == "fast.wr.test")
        .cloned()
        .unwrap_or_default();
    assert_eq!(at(&fast, "/policy/mta_sts/result"), "none", "{fast:#}");
    drop(held);
    drop(port);
}
