//! `hsscan --mx` against real DNS and real receivers on loopback: dnsmasq
//! serves MX, A, AAAA, CNAME and a null MX for 21 test domains; the MX
//! hosts are `hsscan emulate` instances on 127.0.2.x and [::1] and a
//! Postfix smtpd on its 127.0.0.x address, all on one port (`--mx-port`).
//!
//! The truth is the DNS configuration written here: which (host, IP)
//! endpoints exist, which domains use each, and what each receiver is.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulate::emulator_with;
use crate::postfix::Postfix;
use crate::scan_support::EHLO;
use crate::support::{free_port, Server};

/// dnsmasq serving `lines` (dnsmasq.conf syntax) for `bulk.test` only:
/// any other name under it is NXDOMAIN.
pub(crate) fn dnsmasq(name: &'static str, lines: &[String]) -> (Server, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hsscan-it-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let conf = dir.join("dnsmasq.conf");
    let mut text = String::from("listen-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nlocal=/bulk.test/\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&conf, text).expect("write dnsmasq.conf");
    let program = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("dnsmasq missing: install the Debian package `dnsmasq-base` (as .ci/run does)"));
    let conf_arg = format!("--conf-file={}", conf.display());
    let mut server = Server::start_program(name, program, move |port| {
        vec![
            conf_arg.clone(),
            format!("--port={port}"),
            "--keep-in-foreground".into(),
            "--user=root".into(),
            "--pid-file".into(),
        ]
    });
    // dnsmasq answers TCP too: this waits until it listens.
    drop(server.connect());
    (server, dir)
}

/// A port free on every address the test uses (checked on each).
pub(crate) fn common_port(ips: &[&str]) -> u16 {
    'next: for _ in 0..20 {
        let port = free_port();
        for ip in ips {
            let text = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            let addr: SocketAddr = text.parse().expect("address");
            if std::net::TcpListener::bind(addr).is_err() {
                continue 'next;
            }
        }
        return port;
    }
    panic!("no port free on all of {ips:?}");
}

/// `hsscan --mx -i INPUT --dns 127.0.0.1:DNS --mx-port PORT --jsonl --ehlo …` and `extra`.
pub(crate) fn mx_args(input: &Path, dns: u16, port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--mx".into(),
        "-i".into(),
        input.display().to_string(),
        "--dns".into(),
        format!("127.0.0.1:{dns}"),
        "--mx-port".into(),
        port.to_string(),
        "--jsonl".into(),
        "--ehlo".into(),
        EHLO.into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Runs `hsscan --mx …` to completion; stdout lines parsed.
pub(crate) fn hsscan_mx(args: &[String]) -> (i32, Vec<Value>, String) {
    hsscan_mx_with(args, &[])
}

/// [`hsscan_mx`] with these environment variables set.
fn hsscan_mx_with(args: &[String], env: &[(&str, &str)]) -> (i32, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run hsscan");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{stderr}")))
        .collect();
    (out.status.code().unwrap_or(-1), lines, stderr)
}

pub(crate) fn records<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["record"] == kind).collect()
}

/// Connection records of an emulator's JSON log.
pub(crate) fn emulator_connections(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["record"] == "connection")
        .collect()
}

/// The emulator's whole log (Server::log gives a tail).
pub(crate) fn full_log(server: &Server, name: &str) -> String {
    let dir = crate::support::certs();
    std::fs::read_to_string(dir.join(format!("{name}-{}.log", server.port))).unwrap_or_else(|_| server.log())
}

#[test]
fn mx_run_over_dnsmasq_one_record_per_endpoint_and_domain() {
    let (e1, e2, e3, dead) = ("127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.9");
    let port = common_port(&[e1, e2, e3, dead, "::1"]);
    let pf = Postfix::start_on_port(port, &[]);
    let pf_ip = pf.ip.to_string();
    let listen = |ip: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let em = |profile: &str, ips: &[&str]| {
        let mut args: Vec<String> = vec!["emulate".into(), "--profile".into(), profile.into(), "--json".into()];
        for ip in ips {
            args.extend(["--listen".into(), listen(ip)]);
        }
        // Server::start_program appends a --listen of its own on 127.0.0.1.
        emulator_with(args)
    };
    let em1 = em("postfix-default", &[e1]);
    let em2 = em("exchange2016", &[e2]);
    // One emulator per scanned IP: each counts the connections it has open.
    let em4 = em("exchange2016", &["::1"]);
    let em3 = em("rate-limited", &[e3]);
    // Two connections held open: the rate-limited host refuses every scan connection.
    let hold = crate::emulate::hold_open(listen(e3).parse().expect("address"), 2);

    // The DNS truth: MX hosts and the domains that use them.
    let hosts: [(&str, Vec<&str>); 8] = [
        ("mx1.bulk.test", vec![e1]),
        ("mx2.bulk.test", vec![e2]),
        ("mx-v6.bulk.test", vec![e2, "::1"]),
        ("mx-postfix.bulk.test", vec![pf_ip.as_str()]),
        ("mx-limited.bulk.test", vec![e3]),
        ("mx-dead.bulk.test", vec![dead]),
        ("d10.bulk.test", vec![e1]),
        ("mx-alias.bulk.test", vec![e1]),
    ];
    let mx: [(&str, Vec<(&str, u16)>); 17] = [
        ("d01.bulk.test", vec![("mx1.bulk.test", 10)]),
        ("d02.bulk.test", vec![("mx1.bulk.test", 10), ("mx2.bulk.test", 20)]),
        ("d03.bulk.test", vec![("mx2.bulk.test", 5)]),
        ("d04.bulk.test", vec![("mx-postfix.bulk.test", 10)]),
        (
            "d05.bulk.test",
            vec![("mx1.bulk.test", 20), ("mx-postfix.bulk.test", 10)],
        ),
        ("d06.bulk.test", vec![("mx-alias.bulk.test", 10)]),
        ("d07.bulk.test", vec![("mx-v6.bulk.test", 10)]),
        ("d08.bulk.test", vec![("mx-limited.bulk.test", 10)]),
        ("d09.bulk.test", vec![("mx-dead.bulk.test", 10)]),
        ("d13.bulk.test", vec![("mx-nohost.bulk.test", 10)]),
        ("d14.bulk.test", vec![("mx1.bulk.test", 10)]),
        ("d15.bulk.test", vec![("mx2.bulk.test", 10)]),
        ("d16.bulk.test", vec![("mx-postfix.bulk.test", 10)]),
        ("d17.bulk.test", vec![("mx1.bulk.test", 10), ("mx-v6.bulk.test", 10)]),
        (
            "d18.bulk.test",
            vec![("mx2.bulk.test", 30), ("mx-postfix.bulk.test", 40)],
        ),
        ("d19.bulk.test", vec![("mx1.bulk.test", 10)]),
        ("d20.bulk.test", vec![("mx-postfix.bulk.test", 1), ("mx1.bulk.test", 2)]),
    ];
    let mut conf: Vec<String> = Vec::new();
    for (d, list) in &mx {
        for (h, pref) in list {
            conf.push(format!("mx-host={d},{h},{pref}"));
        }
    }
    for (h, ips) in &hosts {
        if *h == "mx-alias.bulk.test" {
            conf.push(format!("cname={h},mx1.bulk.test"));
            continue;
        }
        let v4: Vec<&str> = ips.iter().copied().filter(|i| !i.contains(':')).collect();
        let v6: Vec<&str> = ips.iter().copied().filter(|i| i.contains(':')).collect();
        let mut rec = format!("host-record={h}");
        for ip in v4.iter().chain(v6.iter()) {
            rec.push(',');
            rec.push_str(ip);
        }
        conf.push(rec);
    }
    // d12: null MX (RFC 7505: MX 0 "."); d11: NXDOMAIN; d10: no MX, an A record.
    conf.push("dns-rr=d12.bulk.test,15,000000".into());
    let (dns, dir) = dnsmasq("dnsmasq-bulk", &conf);

    let domains: Vec<String> = (1..=21).map(|i| format!("d{i:02}.bulk.test")).collect();
    let input = dir.join("domains.txt");
    std::fs::write(&input, domains.join("\n") + "\n# a comment\n\n").expect("write input");
    let args = mx_args(
        &input,
        dns.port,
        port,
        &["--retries", "0", "--connect-timeout", "2", "-j", "8"],
    );
    let (code, lines, stderr) = hsscan_mx(&args);
    let log = || format!("{stderr}\n{}\n{}", dns.log(), pf.log());
    assert_eq!(code, 1, "some domains fail\n{}", log());

    // Expected endpoints: every (host, IP) of every MX host a domain names, with its domains.
    let d21_missing = !mx.iter().any(|(d, _)| *d == "d21.bulk.test");
    assert!(d21_missing);
    let mut want: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let host_ips = |h: &str| -> Vec<String> {
        match h {
            "mx-alias.bulk.test" => vec![e1.to_owned()],
            "mx-nohost.bulk.test" => vec![String::new()],
            _ => hosts
                .iter()
                .find(|(n, _)| *n == h)
                .map(|(_, ips)| ips.iter().map(|s| (*s).to_owned()).collect())
                .unwrap_or_default(),
        }
    };
    for (d, list) in &mx {
        for (h, _) in list {
            for ip in host_ips(h) {
                want.entry(((*h).to_owned(), ip)).or_default().insert((*d).to_owned());
            }
        }
    }
    want.entry(("d10.bulk.test".into(), e1.into()))
        .or_default()
        .insert("d10.bulk.test".into());
    let endpoints = records(&lines, "endpoint");
    let mut got: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for e in &endpoints {
        let key = (
            e["target"]["host"].as_str().unwrap_or("").to_owned(),
            e["target"]["ip"].as_str().unwrap_or("").to_owned(),
        );
        let mx_of: BTreeSet<String> = e["target"]["mx_of"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        assert!(
            got.insert(key.clone(), mx_of).is_none(),
            "two records for {key:?}\n{}",
            log()
        );
        assert_eq!(e["target"]["port"], port, "{e:#}");
    }
    assert_eq!(got, want, "endpoints and mx_of\n{}", log());

    // Exactly one domain record per input domain.
    let doms = records(&lines, "domain");
    let names: Vec<&str> = doms.iter().filter_map(|d| d["domain"].as_str()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len(), "{names:?}");
    assert_eq!(unique, domains.iter().map(String::as_str).collect(), "{}", log());
    let domain = |n: &str| *doms.iter().find(|d| d["domain"] == n).expect("domain record");
    let endpoint = |h: &str, ip: &str| {
        *endpoints
            .iter()
            .find(|e| e["target"]["host"] == h && e["target"]["ip"].as_str().unwrap_or("") == ip)
            .expect("endpoint record")
    };

    // The domain verdict follows the headline sender over its endpoints:
    // TLS only when it gets TLS at every one.
    for d in &doms {
        let mine: Vec<&&Value> = endpoints
            .iter()
            .filter(|e| {
                e["target"]["mx_of"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == &d["domain"]))
            })
            .collect();
        if mine.is_empty() || mine.iter().any(|e| e["verdict"].is_null()) {
            continue;
        }
        let all_tls = mine.iter().all(|e| e["verdict"]["outcome"] == "tls");
        assert_eq!(d["verdict"]["outcome"] == "tls", all_tls, "{d:#}\n{mine:#?}");
        assert_eq!(d["verdict"]["sender"], mine[0]["verdict"]["sender"], "{d:#}");
    }

    // Receivers as configured.
    for (h, ip) in [
        ("mx1.bulk.test", e1),
        ("mx2.bulk.test", e2),
        ("mx-v6.bulk.test", "::1"),
        ("mx-postfix.bulk.test", pf_ip.as_str()),
    ] {
        assert_eq!(
            endpoint(h, ip)["status"],
            "negotiated",
            "{h} {ip}: {:#}",
            endpoint(h, ip)
        );
    }
    let limited = endpoint("mx-limited.bulk.test", e3);
    assert_eq!(limited["status"], "inconclusive", "{limited:#}");
    assert_eq!(limited["failure"]["kind"], "rate-limited", "{limited:#}");
    assert_eq!(endpoint("mx-dead.bulk.test", dead)["failure"]["kind"], "refused");
    assert_eq!(endpoint("mx-nohost.bulk.test", "")["failure"]["kind"], "nxdomain");

    // Domain records.
    let d02 = domain("d02.bulk.test");
    assert_eq!(d02["status"], "negotiated", "{d02:#}");
    let mx02: Vec<&str> = d02["mx"]
        .as_array()
        .expect("mx")
        .iter()
        .filter_map(|m| m["host"].as_str())
        .collect();
    assert_eq!(mx02, ["mx1.bulk.test", "mx2.bulk.test"], "preference order");
    let d05: Vec<&str> = domain("d05.bulk.test")["mx"]
        .as_array()
        .expect("mx")
        .iter()
        .filter_map(|m| m["host"].as_str())
        .collect();
    assert_eq!(d05, ["mx-postfix.bulk.test", "mx1.bulk.test"], "preference order");
    assert_eq!(domain("d01.bulk.test")["tls12_or_better"], true);
    assert_eq!(domain("d03.bulk.test")["tls12_or_better"], true);
    let v6: Vec<&str> = domain("d07.bulk.test")["mx"][0]["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(v6, [e2, "::1"]);
    assert_eq!(domain("d08.bulk.test")["status"], "inconclusive");
    assert_eq!(domain("d08.bulk.test")["worst"], "inconclusive");
    assert_eq!(domain("d09.bulk.test")["status"], "failed");
    let d10 = domain("d10.bulk.test");
    assert_eq!(
        (d10["implicit_mx"].clone(), d10["status"].clone()),
        (Value::Bool(true), "negotiated".into()),
        "{d10:#}"
    );
    for (d, kind) in [
        ("d11.bulk.test", "nxdomain"),
        ("d21.bulk.test", "nxdomain"),
        ("d12.bulk.test", "null-mx"),
    ] {
        assert_eq!(domain(d)["failure"]["kind"], kind, "{:#}", domain(d));
        assert_eq!(domain(d)["mx"], serde_json::json!([]), "{d}");
    }
    assert_eq!(domain("d12.bulk.test")["null_mx"], true);
    assert_eq!(domain("d13.bulk.test")["status"], "failed");

    // No IP ever had more than --per-host (2) scan connections open at once.
    drop(hold);
    for (server, name) in [(&em1, "em1"), (&em2, "em2"), (&em4, "em4")] {
        let conns = emulator_connections(&full_log(server, "hsscan-emulate"));
        assert!(!conns.is_empty(), "{name} saw no connection");
        let max = conns.iter().filter_map(|c| c["open_here"].as_u64()).max().unwrap_or(0);
        assert!(max <= 2, "{name}: {max} connections open at once\n{}", server.log());
    }
    let _ = em3;
    // The summary on stderr.
    assert!(stderr.contains("21 domains"), "{stderr}");
    assert!(
        stderr.contains("rate-limited: mx-limited.bulk.test[127.0.2.3]"),
        "{stderr}"
    );
}

/// Runs hsscan until it has printed `lines` lines, then sends SIGINT.
fn interrupted_run(args: &[String], lines: usize) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hsscan");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = String::new();
    let start = Instant::now();
    while text.lines().count() < lines {
        assert!(start.elapsed() < Duration::from_secs(60), "too slow: {text}");
        let mut line = String::new();
        if out.read_line(&mut line).expect("read") == 0 {
            break;
        }
        text.push_str(&line);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    out.read_to_string(&mut text).expect("read the rest");
    let status = child.wait().expect("wait");
    (status.code().unwrap_or(-1), text)
}

#[test]
fn interrupted_mx_run_leaves_complete_lines_and_resume_finishes_it() {
    // One slow receiver on six addresses (a greeting delay per connection).
    let ips: Vec<String> = (1..=6).map(|i| format!("127.0.3.{i}")).collect();
    let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let port = common_port(&ip_refs);
    let dir = std::env::temp_dir().join(format!("hsscan-it-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let profile = dir.join("slow.toml");
    std::fs::write(
        &profile,
        "description = \"slow\"\n[smtp]\ngreeting_delay_ms = 300\n[tls]\nversions = [\"TLSv1.2\"]\nciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\"]\ngroups = [\"x25519\"]\n",
    )
    .expect("profile");
    let mut args: Vec<String> = vec![
        "emulate".into(),
        "--config".into(),
        profile.display().to_string(),
        "--json".into(),
    ];
    for ip in &ips {
        args.extend(["--listen".into(), format!("{ip}:{port}")]);
    }
    let em = emulator_with(args);
    let mut conf = Vec::new();
    let mut domains = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        conf.push(format!("host-record=mx{i}.bulk.test,{ip}"));
        for j in 0..2 {
            let d = format!("r{i}{j}.bulk.test");
            conf.push(format!("mx-host={d},mx{i}.bulk.test,10"));
            domains.push(d);
        }
    }
    let (dns, dns_dir) = dnsmasq("dnsmasq-resume", &conf);
    let input = dns_dir.join("resume-domains.txt");
    std::fs::write(&input, domains.join("\n")).expect("input");
    let base = mx_args(&input, dns.port, port, &["-j", "1", "-q"]);
    let (code, first) = interrupted_run(&base, 3);
    assert_eq!(code, 130, "{first}\n{}", em.log());
    let first_lines: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("incomplete line after SIGINT ({e}): {l:?}")))
        .collect();
    let done_domains = records(&first_lines, "domain").len();
    assert!(done_domains >= 1 && done_domains < domains.len(), "{first}");
    let saved = dns_dir.join("first.jsonl");
    std::fs::write(&saved, &first).expect("save");

    let mut resume = base.clone();
    resume.extend(["--resume".into(), saved.display().to_string()]);
    let (code, second, stderr) = hsscan_mx(&resume);
    assert_eq!(code, 0, "{stderr}");
    let key = |e: &&Value| (e["target"]["host"].to_string(), e["target"]["ip"].to_string());
    let before: BTreeSet<_> = records(&first_lines, "endpoint").iter().map(key).collect();
    let after: BTreeSet<_> = records(&second, "endpoint").iter().map(key).collect();
    assert!(
        before.is_disjoint(&after),
        "rescanned: {:?}",
        before.intersection(&after).collect::<Vec<_>>()
    );
    assert_eq!(before.len() + after.len(), ips.len(), "every endpoint exactly once");
    let mut all: Vec<String> = records(&first_lines, "domain")
        .iter()
        .chain(records(&second, "domain").iter())
        .filter_map(|d| d["domain"].as_str().map(str::to_owned))
        .collect();
    all.sort();
    let mut want = domains.clone();
    want.sort();
    assert_eq!(all, want, "every domain exactly once across both runs");
}

#[test]
fn rate_limited_endpoint_is_retried_with_backoff_then_inconclusive() {
    let ip = "127.0.4.1";
    let port = common_port(&[ip]);
    let em = emulator_with(vec![
        "emulate".into(),
        "--profile".into(),
        "rate-limited".into(),
        "--json".into(),
        "--listen".into(),
        format!("{ip}:{port}"),
    ]);
    // Two connections held: every scan connection is the third, and gets 421.
    let _hold = crate::emulate::hold_open(format!("{ip}:{port}").parse().expect("address"), 2);
    let (dns, dir) = dnsmasq(
        "dnsmasq-retry",
        &[
            format!("host-record=mx-busy.bulk.test,{ip}"),
            "mx-host=busy.bulk.test,mx-busy.bulk.test,10".into(),
        ],
    );
    let input = dir.join("retry-domains.txt");
    std::fs::write(&input, "busy.bulk.test\n").expect("input");
    let args = mx_args(
        &input,
        dns.port,
        port,
        &["--retries", "2", "--retry-delay", "0.1", "-q"],
    );
    let (code, lines, stderr) = hsscan_mx(&args);
    assert_eq!(code, 1, "{stderr}");
    let e = records(&lines, "endpoint");
    assert_eq!(e.len(), 1, "{lines:?}");
    assert_eq!(e[0]["status"], "inconclusive", "{:#}", e[0]);
    assert_eq!(e[0]["failure"]["kind"], "rate-limited", "{:#}", e[0]);
    // Three attempts (the first and two retries), two hellos each, every one refused with 421.
    assert_eq!(e[0]["connections"], 6, "{:#}", e[0]);
    let refused = emulator_connections(&full_log(&em, "hsscan-emulate"))
        .iter()
        .filter(|c| c["outcome"].as_str().is_some_and(|o| o.starts_with("refused with 421")))
        .count();
    assert_eq!(refused, 6, "{}", em.log());
    assert_eq!(records(&lines, "domain")[0]["status"], "inconclusive");
}

#[test]
fn a_panicking_endpoint_scan_still_yields_its_record_and_its_domains() {
    let (wild, calm) = ("127.0.4.5", "127.0.4.6");
    // Nothing listens there: the calm MX is refused, the wild one panics first.
    let port = common_port(&[wild, calm]);
    let (dns, dir) = dnsmasq(
        "dnsmasq-panic",
        &[
            format!("host-record=mx-wild.bulk.test,{wild}"),
            format!("host-record=mx-calm.bulk.test,{calm}"),
            "mx-host=wild.bulk.test,mx-wild.bulk.test,10".into(),
            "mx-host=calm.bulk.test,mx-calm.bulk.test,10".into(),
            "mx-host=both.bulk.test,mx-wild.bulk.test,10".into(),
            "mx-host=both.bulk.test,mx-calm.bulk.test,20".into(),
        ],
    );
    let input = dir.join("panic-domains.txt");
    std::fs::write(&input, "wild.bulk.test\ncalm.bulk.test\nboth.bulk.test\n").expect("input");
    let args = mx_args(
        &input,
        dns.port,
        port,
        &["--retries", "1", "--retry-delay", "0.1", "-q"],
    );
    let (code, lines, stderr) = hsscan_mx_with(&args, &[("HSSCAN_TEST_PANIC_HOST", "mx-wild.bulk.test")]);
    assert_eq!(code, 1, "{stderr}");
    let endpoints = records(&lines, "endpoint");
    let domains = records(&lines, "domain");
    assert_eq!((endpoints.len(), domains.len()), (2, 3), "{lines:#?}\n{stderr}");
    let endpoint = |h: &str| {
        *endpoints
            .iter()
            .find(|e| e["target"]["host"] == h)
            .expect("endpoint record")
    };
    let domain = |n: &str| *domains.iter().find(|d| d["domain"] == n).expect("domain record");

    let e = endpoint("mx-wild.bulk.test");
    assert_eq!(e["status"], "inconclusive", "{e:#}");
    let failure = serde_json::json!({
        "stage": "local",
        "kind": "internal-error",
        "detail": "the scan panicked (a bug in hsscan): HSSCAN_TEST_PANIC_HOST names mx-wild.bulk.test",
    });
    assert_eq!(e["failure"], failure, "{e:#}");
    assert_eq!(e["quick"]["modern"]["failure"], failure, "{e:#}");
    assert_eq!(e["quick"]["legacy"]["failure"], failure, "{e:#}");
    // Not retried: a bug of ours does not go away by asking again.
    assert_eq!(e["connections"], 0, "{e:#}");
    assert_eq!(
        e["target"]["mx_of"],
        serde_json::json!(["wild.bulk.test", "both.bulk.test"]),
        "{e:#}"
    );
    assert_eq!(endpoint("mx-calm.bulk.test")["failure"]["kind"], "refused");

    let d = domain("wild.bulk.test");
    assert_eq!(d["status"], "inconclusive", "{d:#}");
    assert_eq!(
        d["failure"],
        serde_json::json!({
            "stage": "mx",
            "kind": "internal-error",
            "detail": format!("mx-wild.bulk.test[{wild}]: internal-error"),
        }),
        "{d:#}"
    );
    assert_eq!(domain("calm.bulk.test")["status"], "failed");
    let both = domain("both.bulk.test");
    // The refused MX makes it failed; the failure names the first MX that did not negotiate.
    assert_eq!(both["status"], "failed", "{both:#}");
    assert_eq!(both["failure"]["kind"], "internal-error", "{both:#}");
}

/// A single target (no `--mx`) named by a host name, resolved through
/// `--dns` and scanned on `port`: dnsmasq answers `mx1.test.example` with
/// `dns_ip`, an emulated Postfix listens on `dns_ip` and `other_ip`.
/// Returns the record, the run and the logs for failure messages.
fn single_target_scan(name: &'static str, dns_ip: &str, other_ip: &str, extra: &[&str]) -> (Value, String) {
    let port = common_port(&[dns_ip, other_ip]);
    let em = emulator_with(vec![
        "emulate".into(),
        "--profile".into(),
        "postfix-default".into(),
        "--json".into(),
        "--listen".into(),
        format!("{dns_ip}:{port}"),
        "--listen".into(),
        format!("{other_ip}:{port}"),
    ]);
    let (dns, _dir) = dnsmasq(
        name,
        &[
            "local=/test.example/".into(),
            format!("host-record=mx1.test.example,{dns_ip}"),
        ],
    );
    let target = format!("mx1.test.example:{port}");
    let server = format!("127.0.0.1:{}", dns.port);
    let mut args: Vec<&str> = vec![
        &target,
        "--dns",
        &server,
        "--json",
        "--starttls",
        "smtp",
        "--ehlo",
        EHLO,
        "--timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    let run = crate::scan_support::hsscan(&args);
    let log = format!("{}\n{}\n{}", run.describe(), dns.log(), em.log());
    let record = run.record();
    (record, log)
}

/// `hsscan HOST:PORT --dns 127.0.0.1:DNSPORT`: the host name is looked up
/// through that server (SPEC §2: `--dns IP[:PORT]`), not only with `--mx`.
#[test]
fn single_target_host_is_resolved_through_dns_option() {
    let (a, b) = ("127.0.5.1", "127.0.5.2");
    let (record, log) = single_target_scan("dnsmasq-single", a, b, &[]);
    assert_eq!(
        (&record["target"]["host"], &record["target"]["ip"], &record["status"]),
        (
            &Value::from("mx1.test.example"),
            &Value::from(a),
            &Value::from("negotiated")
        ),
        "target.host, target.ip (dnsmasq says {a}) and status of\n{record:#}\n{log}"
    );
}

/// `--resolve HOST:IP` beside `--dns`: the explicit address wins, and no
/// lookup decides it.
#[test]
fn single_target_resolve_wins_over_dns_option() {
    let (a, b) = ("127.0.5.3", "127.0.5.4");
    let resolve = format!("mx1.test.example:{b}");
    let (record, log) = single_target_scan("dnsmasq-single-resolve", a, b, &["--resolve", &resolve]);
    assert_eq!(
        (&record["target"]["host"], &record["target"]["ip"], &record["status"]),
        (
            &Value::from("mx1.test.example"),
            &Value::from(b),
            &Value::from("negotiated")
        ),
        "target.host, target.ip (--resolve says {b}, dnsmasq {a}) and status of\n{record:#}\n{log}"
    );
}

#[test]
fn resume_over_a_torn_output_appends_on_a_fresh_line_and_loses_and_repeats_nothing() {
    let ips = ["127.0.5.1", "127.0.5.2", "127.0.5.3"];
    let port = common_port(&ips);
    let mut args: Vec<String> = vec![
        "emulate".into(),
        "--profile".into(),
        "postfix-default".into(),
        "--json".into(),
    ];
    for ip in ips {
        args.extend(["--listen".into(), format!("{ip}:{port}")]);
    }
    let _em = emulator_with(args);
    let mut conf = Vec::new();
    let mut domains = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        conf.push(format!("host-record=mx{i}.bulk.test,{ip}"));
        for j in 0..2 {
            let d = format!("t{i}{j}.bulk.test");
            conf.push(format!("mx-host={d},mx{i}.bulk.test,10"));
            domains.push(d);
        }
    }
    let (dns, dir) = dnsmasq("dnsmasq-torn", &conf);
    let input = dir.join("torn-domains.txt");
    std::fs::write(&input, domains.join("\n")).expect("input");
    let base = mx_args(&input, dns.port, port, &["-q"]);
    let (code, full, stderr) = hsscan_mx(&base);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(full.len(), ips.len() + domains.len(), "{full:?}");

    // What a killed run leaves: some whole lines, one of them holding a
    // byte that is not UTF-8, then a line cut inside a multibyte character.
    let text: Vec<String> = full.iter().map(Value::to_string).collect();
    let mut saved = Vec::new();
    let keep = 4;
    for (i, line) in text.iter().take(keep).enumerate() {
        let mut bytes = line.clone().into_bytes();
        if i == 1 {
            // Inside a value that names nothing the resume keys on.
            let pattern: &[u8] = if full[i]["record"] == "domain" {
                b"[{\"host\":\""
            } else {
                b"\"input\":\""
            };
            let at = bytes
                .windows(pattern.len())
                .position(|w| w == pattern)
                .unwrap_or_else(|| panic!("no {:?} in {line}", String::from_utf8_lossy(pattern)));
            bytes.insert(at + pattern.len(), 0xff);
        }
        saved.extend(bytes);
        saved.push(b'\n');
    }
    let cut = text.get(keep).expect("a line to cut").as_bytes();
    saved.extend(cut.get(..cut.len() / 2).expect("half"));
    saved.extend(b"\xe2\x80");
    let out = dir.join("torn.jsonl");
    std::fs::write(&out, &saved).expect("save");

    // hsscan --resume out >> out
    let mut resume = base.clone();
    resume.extend(["--resume".into(), out.display().to_string()]);
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .expect("open for append");
    let run = Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(&resume)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(appended))
        .stderr(Stdio::piped())
        .output()
        .expect("run hsscan");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("its last line ({}) is cut short", keep + 1)),
        "a warning names the torn line: {stderr}"
    );

    // The cut line now ends where it was cut; every other line is a record.
    let bytes = std::fs::read(&out).expect("read back");
    let lines: Vec<String> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let parsed: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(
        lines.len(),
        parsed.len() + 1,
        "only the torn line is not JSON:\n{}",
        lines.join("\n")
    );
    let key = |v: &Value| match v["record"].as_str() {
        Some("domain") => format!("domain {}", v["domain"]),
        _ => format!("endpoint {} {}", v["target"]["host"], v["target"]["ip"]),
    };
    let mut got: Vec<String> = parsed.iter().map(key).collect();
    got.sort();
    let mut want: Vec<String> = full.iter().map(key).collect();
    want.sort();
    assert_eq!(got, want, "every record exactly once");
}

#[test]
fn after_ctrl_c_an_mx_run_sends_no_retry_and_exits_130_with_its_finished_records() {
    // A receiver that answers every connection with 421: each endpoint is
    // retried after 1 s, 2 s, 4 s, 8 s.
    let busy = crate::rogue::Rogue::start(crate::rogue::Behaviour {
        banner: Some(b"421 4.7.0 mx.rogue.test too many connections".to_vec()),
        ..crate::rogue::Behaviour::tls(Vec::new())
    });
    let (dns, dir) = dnsmasq(
        "dnsmasq-sigint",
        &[
            "host-record=mx-busy.bulk.test,127.0.0.1".into(),
            "mx-host=busy.bulk.test,mx-busy.bulk.test,10".into(),
            "mx-host=gone.bulk.test,nowhere.bulk.test,10".into(),
        ],
    );
    let input = dir.join("sigint-domains.txt");
    // The second domain's MX does not resolve: its records are done at once.
    std::fs::write(&input, "busy.bulk.test\ngone.bulk.test\n").expect("input");
    let args = mx_args(
        &input,
        dns.port,
        busy.port,
        &["--retries", "4", "--retry-delay", "1", "-q"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(&args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hsscan");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    // gone.bulk.test: its endpoint, then its domain.
    for _ in 0..2 {
        out.read_line(&mut first).expect("read");
    }
    let start = Instant::now();
    // The first attempt's two hellos, refused with 421, then the first retry's.
    while busy.connections() < 3 {
        assert!(start.elapsed() < Duration::from_secs(20), "no retry came");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(150));
    let at_interrupt = busy.connections();
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "hsscan did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = stopped.elapsed();
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read the rest");
    let mut stderr = String::new();
    let _ = child.stderr.take().expect("stderr").read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    let lines: Vec<Value> = first
        .lines()
        .chain(rest.lines())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {l:?}")))
        .collect();
    // The unresolved MX's records; nothing of the endpoint still retrying.
    assert_eq!(records(&lines, "domain").len(), 1, "{lines:?}");
    assert_eq!(records(&lines, "domain")[0]["domain"], "gone.bulk.test");
    assert_eq!(records(&lines, "endpoint").len(), 1, "{lines:?}");
    // The retries that were due (2 s, 4 s and 8 s later) never came.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(busy.connections(), at_interrupt, "a connection started after Ctrl-C");
}
