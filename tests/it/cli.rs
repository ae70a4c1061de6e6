//! The command line itself: clap's own usage errors (the usage line, the
//! missing arguments by name, "a similar argument exists"), exit 2; our
//! own errors as one line; completions, the man page and the examples in
//! `--help` (SPEC §2).

use crate::scan_support::hsscan;

#[test]
fn a_missing_required_argument_is_named_with_the_usage_line() {
    let run = hsscan(&["emulate", "--profile", "exchange2007"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert_eq!(run.stdout, "", "{}", run.describe());
    assert!(
        run.stderr
            .contains("the following required arguments were not provided"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("--listen <ADDR>"),
        "names --listen\n{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("Usage: hsscan emulate"),
        "keeps the usage line\n{}",
        run.describe()
    );
}

#[test]
fn a_misspelt_flag_gets_clap_s_suggestion() {
    let run = hsscan(&["--enumerat", "127.0.0.1"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert_eq!(run.stdout, "", "{}", run.describe());
    assert!(
        run.stderr.contains("unexpected argument '--enumerat'"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("a similar argument exists: '--enumerate'"),
        "suggests --enumerate\n{}",
        run.describe()
    );
    // A misspelt value keeps its tip, folded into one line.
    let run = hsscan(&["--starttls", "smpt", "127.0.0.1"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.describe());
    assert!(
        run.stderr.starts_with("hsscan: reading the command line: "),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("a similar value exists: 'smtp'"),
        "{}",
        run.describe()
    );
}

#[test]
fn help_shows_examples_and_exits_0() {
    let run = hsscan(&["--help"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(run.stdout.contains("Examples:"), "{}", run.describe());
    assert!(run.stdout.contains("hsscan demo"), "{}", run.describe());
    assert!(
        run.stdout.contains("hsscan log /var/log/mail.log"),
        "{}",
        run.describe()
    );
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = hsscan(&["completions", shell]);
        assert_eq!(run.code, 0, "{}", run.describe());
        for word in ["enumerate", "emulate", "demo"] {
            assert!(
                run.stdout.contains(word),
                "{shell} completions lack {word}\n{}",
                run.describe()
            );
        }
    }
    let run = hsscan(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    let run = hsscan(&["man"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.contains(".TH hsscan"),
        "{}",
        run.describe()
    );
    for word in ["enumerate", "emulate", "demo", "completions"] {
        assert!(run.stdout.contains(word), "the man page lacks {word}");
    }
}

/// A mail domain given as a scan target (no `--mx`): it has MX records but
/// no address, and the record says so with the hint (dnsmasq on loopback
/// answers for it; nothing else is asked).
#[test]
fn a_mail_domain_without_mx_flag_gets_the_mx_hint() {
    let (dns, _dir) = crate::bulk::dnsmasq(
        "dnsmasq-mx-hint",
        &[
            "host-record=mx.hint.bulk.test,127.0.6.9".into(),
            "mx-host=hint.bulk.test,mx.hint.bulk.test,10".into(),
        ],
    );
    let server = format!("127.0.0.1:{}", dns.port);
    let run = hsscan(&["--json", "--dns", &server, "hint.bulk.test"]);
    assert_eq!(run.code, 1, "{}", run.describe());
    let record = run.record();
    assert_eq!(record["failure"]["stage"], "dns", "{}", run.describe());
    let detail = record["failure"]["detail"].as_str().unwrap_or("");
    assert!(detail.contains("did you mean --mx?"), "{detail}\n{}", run.describe());
}
