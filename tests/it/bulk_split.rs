//! Splitting and finishing `--mx` runs: `--shard I/N` (the union of all
//! shards is the unsharded run, with no domain in two shards) and
//! `--retry-inconclusive FILE` (only what FILE left inconclusive is
//! scanned again; the merged output has one record per domain and per
//! endpoint). Real DNS from dnsmasq, emulated receivers, all on loopback,
//! with the helpers of `bulk`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::bulk::{common_port, dnsmasq, emulator_connections, full_log, hsscan_mx, mx_args, records};
use crate::emulate::emulator_with;

/// An emulator playing `profile` on `ip:port` (and on 127.0.0.1, as
/// emulator_with adds).
fn receiver(profile: &str, ip: &str, port: u16) -> crate::support::Server {
    emulator_with(vec![
        "emulate".into(),
        "--profile".into(),
        profile.into(),
        "--json".into(),
        "--listen".into(),
        format!("{ip}:{port}"),
    ])
}

/// `(host, ip, port)` of an endpoint record.
fn endpoint_key(v: &Value) -> (String, String, u64) {
    let t = &v["target"];
    (
        t["host"].as_str().unwrap_or("").to_owned(),
        t["ip"].as_str().unwrap_or("").to_owned(),
        t["port"].as_u64().unwrap_or(0),
    )
}

/// Domain → (status, its MX hosts) of a run's domain records.
fn domains(lines: &[Value]) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for d in records(lines, "domain") {
        let name = d["domain"].as_str().unwrap_or("").to_owned();
        let mx = d["mx"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["host"].as_str().map(str::to_owned))
            .collect();
        let fresh = out.insert(name.clone(), (d["status"].as_str().unwrap_or("").to_owned(), mx));
        assert!(fresh.is_none(), "{name} has two domain records");
    }
    out
}

#[test]
fn shards_split_the_domains_without_overlap_and_add_up_to_the_whole_run() {
    let (a, b) = ("127.0.6.1", "127.0.6.2");
    let port = common_port(&[a, b]);
    let _ea = receiver("postfix-default", a, port);
    let _eb = receiver("exchange2016", b, port);
    let mut conf = vec![
        format!("host-record=mx-a.bulk.test,{a}"),
        format!("host-record=mx-b.bulk.test,{b}"),
    ];
    let mut input = String::from("# partners\n");
    for i in 1..=12 {
        let d = format!("s{i:02}.bulk.test");
        match i % 3 {
            0 => conf.push(format!("mx-host={d},mx-a.bulk.test,10")),
            1 => conf.push(format!("mx-host={d},mx-b.bulk.test,10")),
            _ => {
                conf.push(format!("mx-host={d},mx-a.bulk.test,10"));
                conf.push(format!("mx-host={d},mx-b.bulk.test,20"));
            }
        }
        input.push_str(&format!("{d}\n"));
    }
    // No record at all: NXDOMAIN, still one domain record.
    input.push_str("gone.bulk.test\n");
    let (dns, dir) = dnsmasq("dnsmasq-shard", &conf);
    let list = dir.join("shard-domains.txt");
    std::fs::write(&list, &input).expect("input");

    let (_, whole, stderr) = hsscan_mx(&mx_args(&list, dns.port, port, &["-q"]));
    let whole_domains = domains(&whole);
    assert_eq!(whole_domains.len(), 13, "{stderr}\n{whole:?}");
    let whole_endpoints: BTreeSet<_> = records(&whole, "endpoint").into_iter().map(endpoint_key).collect();
    assert_eq!(whole_endpoints.len(), 2, "{whole:?}");

    let n = 3;
    let mut seen: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut endpoints = BTreeSet::new();
    let mut non_empty = 0;
    for i in 1..=n {
        let shard = format!("{i}/{n}");
        let (_, lines, stderr) = hsscan_mx(&mx_args(&list, dns.port, port, &["-q", "--shard", &shard]));
        for (d, facts) in domains(&lines) {
            assert_eq!(
                whole_domains.get(&d),
                Some(&facts),
                "shard {shard}: {d} differs from the whole run\n{stderr}"
            );
            assert!(seen.insert(d.clone(), facts).is_none(), "{d} is in two shards");
        }
        endpoints.extend(records(&lines, "endpoint").into_iter().map(endpoint_key));
        non_empty += usize::from(!records(&lines, "domain").is_empty());
    }
    assert!(non_empty >= 2, "the hash spreads 13 domains over the shards");
    assert_eq!(seen, whole_domains, "the shards add up to the whole run");
    assert_eq!(endpoints, whole_endpoints);
}

#[test]
fn retry_inconclusive_rescans_only_the_rate_limited_and_merges() {
    let (ok, busy) = ("127.0.6.5", "127.0.6.6");
    let port = common_port(&[ok, busy]);
    let good = receiver("postfix-default", ok, port);
    let _limited = receiver("rate-limited", busy, port);
    // Two connections held: every scan connection gets 421.
    let hold = crate::emulate::hold_open(format!("{busy}:{port}").parse().expect("address"), 2);
    let (dns, dir) = dnsmasq(
        "dnsmasq-retry-inconclusive",
        &[
            format!("host-record=mx-ok.bulk.test,{ok}"),
            format!("host-record=mx-busy.bulk.test,{busy}"),
            "mx-host=r1.bulk.test,mx-ok.bulk.test,10".into(),
            "mx-host=r2.bulk.test,mx-busy.bulk.test,10".into(),
            "mx-host=r3.bulk.test,mx-ok.bulk.test,10".into(),
            "mx-host=r3.bulk.test,mx-busy.bulk.test,20".into(),
        ],
    );
    let list = dir.join("retry-inconclusive-domains.txt");
    std::fs::write(&list, "r1.bulk.test\nr2.bulk.test\nr3.bulk.test\n").expect("input");
    let (code, first, stderr) = hsscan_mx(&mx_args(&list, dns.port, port, &["-q", "--retries", "0"]));
    assert_eq!(code, 1, "{stderr}");
    let before = domains(&first);
    assert_eq!(before["r1.bulk.test"].0, "negotiated");
    assert_eq!(before["r2.bulk.test"].0, "inconclusive", "{first:?}");
    assert_eq!(before["r3.bulk.test"].0, "inconclusive");
    let earlier = dir.join("retry-inconclusive-first.jsonl");
    let text: String = first.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&earlier, text).expect("write first run");

    // The limit is gone; the retry scans only mx-busy again.
    drop(hold);
    let good_before = emulator_connections(&full_log(&good, "hsscan-emulate")).len();
    let mut args = mx_args(&list, dns.port, port, &["-q", "--retries", "0"]);
    // The domains come from the file: no -i.
    let at = args.iter().position(|a| a == "-i").expect("-i");
    args.drain(at..at + 2);
    args.extend(["--retry-inconclusive".into(), earlier.display().to_string()]);
    let (code, merged, stderr) = hsscan_mx(&args);
    assert_eq!(code, 0, "every domain negotiates now\n{stderr}\n{merged:?}");
    let after = domains(&merged);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["r1.bulk.test", "r2.bulk.test", "r3.bulk.test"]
    );
    assert!(after.values().all(|(s, _)| s == "negotiated"), "{after:?}");
    let keys: Vec<_> = records(&merged, "endpoint").into_iter().map(endpoint_key).collect();
    let unique: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), unique.len(), "one record per endpoint: {keys:?}");
    assert_eq!(unique.len(), 2, "{keys:?}");
    assert_eq!(
        emulator_connections(&full_log(&good, "hsscan-emulate")).len(),
        good_before,
        "the settled endpoint is not scanned again"
    );
    // r1's record is the file's, byte for byte.
    let r1_then = records(&first, "domain")
        .into_iter()
        .find(|d| d["domain"] == "r1.bulk.test");
    let r1_now = records(&merged, "domain")
        .into_iter()
        .find(|d| d["domain"] == "r1.bulk.test");
    assert_eq!(r1_then, r1_now);
}
