//! `--per-host` as the servers see it during `--enumerate`, whose passes
//! and lanes run side by side: a real Postfix whose anvil refuses a client
//! past `smtpd_client_connection_count_limit`, and the emulator's own count
//! of the connections open on its address — for 1, 2 and 4.

use serde_json::{json, Value};
use std::time::Duration;

use crate::bulk::{emulator_connections, full_log};
use crate::emulate::emulator_with;
use crate::postfix::Postfix;
use crate::scan_support::hsscan;

const PER_HOST: [usize; 3] = [1, 2, 4];

/// The most connections anvil says it counted from one client at once.
fn anvil_max(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.split("max connection count ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
}

#[test]
fn postfix_anvil_never_counts_more_than_per_host_during_enumerate() {
    for n in PER_HOST {
        let limit = n.to_string();
        // Loopback is exempt from anvil limits unless the exceptions are
        // emptied; anvil reports its counts every second.
        let pf = Postfix::start(&[
            ("smtpd_client_connection_count_limit", &limit),
            ("smtpd_client_event_limit_exceptions", ""),
            ("anvil_status_update_time", "1s"),
        ]);
        let run = hsscan(&[
            "--json",
            "--enumerate",
            "--per-host",
            &limit,
            "--sender",
            "postfix-3.7-openssl-3.0-may",
            "--starttls",
            "smtp",
            &pf.target(),
        ]);
        let r: Value = run.record();
        // The last second's count comes a second after the last connection.
        std::thread::sleep(Duration::from_millis(2500));
        let log = pf.log();
        assert_eq!(r["status"], "negotiated", "per-host {n}: {r:#}\n{log}");
        assert_eq!(r["enumeration"]["unsure"], json!([]), "per-host {n}: {r:#}\n{log}");
        assert!(
            !log.contains("Connection concurrency limit exceeded") && !log.contains("too many connections"),
            "per-host {n}: anvil refused a connection\n{log}"
        );
        let max = anvil_max(&log);
        assert!(
            max.is_some_and(|m| m >= 1 && m <= n as u64),
            "per-host {n}: anvil's max connection count {max:?}\n{log}"
        );
        if n > 1 {
            // Side by side for real: more than one at once was used.
            assert!(
                max.is_some_and(|m| m > 1),
                "per-host {n}: never more than one connection\n{log}"
            );
        }
    }
}

/// Scans an emulated Postfix with `extra` at `--per-host n` and returns
/// the record and the most connections the emulator saw open at once,
/// after checking that the emulator saw as many connections as hsscan
/// counted.
fn most_open_at_the_emulator(extra: &[&str], n: usize) -> (Value, u64) {
    let limit = n.to_string();
    let em = emulator_with(vec![
        "emulate".into(),
        "--profile".into(),
        "postfix-default".into(),
        "--json".into(),
    ]);
    let target = format!("smtp://127.0.0.1:{}", em.port);
    let mut args = vec![
        "--json",
        "--per-host",
        &limit,
        "--sender",
        "postfix-3.7-openssl-3.0-may",
    ];
    args.extend_from_slice(extra);
    args.push(&target);
    let run = hsscan(&args);
    let r: Value = run.record();
    assert_eq!(r["status"], "negotiated", "per-host {n}: {r:#}");
    // Each connection's line is written as it ends: wait for the last.
    let want = r["connections"].as_u64().unwrap_or(0) as usize;
    let start = std::time::Instant::now();
    let mut conns = emulator_connections(&full_log(&em, "hsscan-emulate"));
    while conns.len() < want && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        conns = emulator_connections(&full_log(&em, "hsscan-emulate"));
    }
    assert_eq!(
        conns.len() as u64,
        r["connections"].as_u64().unwrap_or(0),
        "per-host {n}: the emulator's connections against hsscan's count"
    );
    let max = conns.iter().filter_map(|c| c["open_here"].as_u64()).max().unwrap_or(0);
    assert!(
        max >= 1 && max <= n as u64,
        "per-host {n}: {max} open at once\n{}",
        em.log()
    );
    (r, max)
}

#[test]
fn the_emulator_never_sees_more_than_per_host_during_enumerate() {
    for n in PER_HOST {
        let (r, max) = most_open_at_the_emulator(&["--enumerate"], n);
        assert_eq!(r["enumeration"]["unsure"], json!([]), "per-host {n}: {r:#}");
        if n > 1 {
            assert!(max > 1, "per-host {n}: never more than one connection at once");
        }
    }
}

/// The default check sends three hellos (the quick check's two and the
/// headline sender's own, which goes out beside them when a third slot is
/// allowed): never more than `--per-host` at once. (That the third slot
/// is used is a matter of timing; the latency bench shows it.)
#[test]
fn the_default_check_never_has_more_than_per_host_open() {
    for n in [1, 2, 3] {
        let (r, _) = most_open_at_the_emulator(&[], n);
        assert_eq!(r["connections"], 3, "per-host {n}: {r:#}");
        assert_eq!(r["senders"][0]["confirmed"], true, "per-host {n}: {r:#}");
    }
}

/// An enumeration hello closes our side as it goes out. A server that
/// takes that early close for the end (the emulator with
/// `close_with_hello = "reset"`: every such hello is reset) costs the
/// enumeration a few connections and nothing else: the first dropped
/// hello ends the half-close for that address, the enumeration asks it
/// again on a whole connection, and the result equals that of the same
/// profile without the misbehaviour, complete and sure.
#[test]
fn a_server_that_resets_half_closed_hellos_gets_whole_connections_and_the_same_result() {
    const PROFILE: &str = include_str!("../../src/emulate/profiles/postfix-default.toml");
    let scan = |name: &str, toml: &str| {
        let em = crate::emulate::emulator_with(vec![
            "emulate".into(),
            "--json".into(),
            "--config".into(),
            crate::emulate::profile_file(name, toml).display().to_string(),
        ]);
        let target = format!("127.0.0.1:{}", em.port);
        let r = hsscan(&[
            "--json",
            "--enumerate",
            "--starttls",
            "smtp",
            "--sender",
            "postfix-3.7-openssl-3.0-may",
            &target,
        ])
        .record();
        (r, emulator_connections(&full_log(&em, "hsscan-emulate")))
    };
    let (plain, _) = scan("half-close-plain", PROFILE);
    let (strict, log) = scan(
        "half-close-reset",
        &format!("{PROFILE}\n[misbehave]\nclose_with_hello = \"reset\"\n"),
    );
    let reset = log
        .iter()
        .filter(|c| {
            c["outcome"]
                .as_str()
                .unwrap_or("")
                .contains("closed its side with the hello")
        })
        .count();
    assert!(reset >= 1, "no half-closed hello reached the emulator: {log:#?}");
    for key in ["protocols", "ciphers", "groups", "complete", "unsure"] {
        assert_eq!(
            strict["enumeration"][key], plain["enumeration"][key],
            "{key}: {strict:#}"
        );
    }
    assert_eq!(strict["enumeration"]["unsure"], json!([]), "{strict:#}");
    let (a, b) = (plain["connections"].as_u64(), strict["connections"].as_u64());
    assert!(b > a, "the resets cost connections: {a:?} vs {b:?}");
    println!("half-closed hellos reset: {reset}; connections {a:?} without, {b:?} with the resets");
}
