//! `hsscan demo`, the README's first command (`cargo run --release --
//! demo`, read from the README here and run as the built binary): on a
//! machine with nothing set up, it starts its emulated receivers on loopback inside the process and
//! prints the normal diagnosis of each, exiting as the verdicts say (1:
//! most of them fail). What each receiver gets is the scan's own judgement
//! of the emulator's shipped profile, whichever Postfix sender this machine
//! has: every profile of OpenSSL 3 fails on RC4-only Exchange 2007, on a
//! dropped hello, and on a banner answered to a ClientHello.

use serde_json::Value;

use crate::scan_support::{at, hsscan};

/// The head line of a receiver's report: `host [ip]:port transport  VERDICT`.
fn head_line<'a>(stdout: &'a str, host: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{host} [127.0.0.1]:")))
        .unwrap_or_else(|| panic!("no report head for {host}\n{stdout}"))
}

/// The README's first set-up command, as `cargo run` would pass it on:
/// the words after `--`.
fn readme_first_command() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let setup = readme.split("## Set-up").nth(1).expect("a Set-up section");
    let command = setup
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .expect("a command in the Set-up block");
    assert!(
        command.starts_with("cargo run --release -- "),
        "the first set-up command runs hsscan: {command}"
    );
    command
        .split(" -- ")
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn demo_diagnoses_each_emulated_receiver_and_exits_1() {
    let args = readme_first_command();
    assert_eq!(args, ["demo"], "the README starts with the demo");
    let run = hsscan(&["demo"]);
    assert_eq!(run.code, 1, "some receivers fail: exit 1\n{}", run.describe());
    let out = &run.stdout;
    for (host, transport, verdict, reason) in [
        ("legacy.demo.test", "smtp-starttls", "NO TLS", "no-shared-cipher"),
        ("lb.demo.test", "smtp-starttls", "NO TLS", "closed-after-hello"),
        ("busy.demo.test", "smtp-starttls", "INCONCLUSIVE", "rate-limited"),
        ("modern.demo.test", "smtp-starttls", "TLS", "negotiates TLSv1.3"),
        ("smtps.demo.test", "implicit-tls", "NO TLS", "plaintext-reply"),
    ] {
        let head = head_line(out, host);
        assert!(
            head.ends_with(&format!("{transport}  {verdict}")),
            "{host}: {head}\n{}",
            run.describe()
        );
        // The receiver's block runs from its head to the next blank line.
        let block: String = out
            .lines()
            .skip_while(|l| *l != head)
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(block.contains(reason), "{host}: no {reason}\n{block}");
        assert!(
            out.contains(&format!("] {host} plays ")),
            "{host} is introduced by what it plays\n{out}"
        );
    }
    assert!(out.contains("5 receivers: 1 TLS, 3 NO TLS, 1 INCONCLUSIVE"), "{out}");
    // The Exchange 2007 verdict comes with the sender's advice; the port
    // mix-up with the sender-side fix (a transport without wrapper mode).
    assert!(out.contains("advice [no TLS possible]"), "{out}");
    assert!(out.contains("-o smtp_tls_wrappermode=no"), "{out}");
}

#[test]
fn demo_json_is_one_endpoint_record_per_receiver() {
    let run = hsscan(&["demo", "--json"]);
    assert_eq!(run.code, 1, "{}", run.describe());
    let records: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let facts: Vec<(String, String, String)> = records
        .iter()
        .map(|r| {
            (
                at(r, "/target/host").as_str().unwrap_or("").to_owned(),
                at(r, "/verdict/outcome").as_str().unwrap_or("").to_owned(),
                at(r, "/status").as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want = [
        ("legacy.demo.test", "no-tls", "negotiated"),
        ("lb.demo.test", "no-tls", "failed"),
        ("busy.demo.test", "inconclusive", "inconclusive"),
        ("modern.demo.test", "tls", "negotiated"),
        ("smtps.demo.test", "no-tls", "failed"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(facts, want, "{}", run.describe());
    assert_eq!(at(&records[1], "/failure/kind"), "closed-after-hello");
    assert_eq!(at(&records[2], "/failure/kind"), "rate-limited");
    assert_eq!(at(&records[4], "/failure/kind"), "plaintext-reply");
    for r in &records {
        assert_eq!(at(r, "/target/ip"), "127.0.0.1", "loopback only");
    }
}
