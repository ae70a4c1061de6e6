//! Waiting visibly: a single-target scan on a terminal shows a spinner on
//! stderr, naming what it awaits, for any wait longer than 2 s; without a
//! terminal, or with `-q`, nothing. The terminal is a pseudo-terminal from
//! util-linux `script` (Debian's essential `bsdutils`), which copies what
//! the program writes to it onto its own stdout.

use std::process::{Command, Stdio};

use crate::emulate::emulator_config;
use crate::scan_support::{hsscan, EHLO};
use crate::support::Tool;

const SCRIPT: Tool = Tool {
    program: "script",
    install: "install the Debian package `bsdutils` (apt-get install bsdutils)",
};

/// A receiver that offers STARTTLS and then never answers the hello.
const SILENT: &str = "description = \"answers STARTTLS, then never answers the hello\"\n\
[smtp]\nhostname = \"mx.silent.test\"\nbanner = \"220 {hostname} ESMTP\"\nextensions = [\"PIPELINING\"]\nstarttls = \"offer\"\n\
[tls]\nversions = [\"TLSv1.2\"]\nciphers = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n\
[misbehave]\nafter_hello = \"silence\"\n";

/// What a terminal running `hsscan args…` shows.
fn on_terminal(args: &[String]) -> (i32, String) {
    let program = SCRIPT.require();
    let cmd = std::iter::once(env!("CARGO_BIN_EXE_hsscan").to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(program)
        .args(["-qfec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        // A terminal has a type; without one (CI's bare environment) the
        // progress library draws nothing, as on a dumb terminal.
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_long_wait_shows_a_spinner_on_a_terminal_only() {
    let server = emulator_config("silent", SILENT);
    let target = format!("127.0.0.1:{}", server.port);
    let args = |extra: &[&str]| -> Vec<String> {
        ["--timeout", "2.5", "--ehlo", EHLO, "--starttls", "smtp", &target]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let (code, screen) = on_terminal(&args(&[]));
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains(&format!("waiting for the answer to the ClientHello from {target}")),
        "the spinner names the wait\n{screen}"
    );
    assert!(screen.contains("timeout-after-hello"), "then the report\n{screen}");

    let (_, quiet) = on_terminal(&args(&["-q"]));
    assert!(!quiet.contains("waiting for"), "-q: no spinner\n{quiet}");
    assert!(quiet.contains("timeout-after-hello"), "{quiet}");

    // Not a terminal: stderr stays empty, stdout is only the report.
    let a = args(&[]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let run = hsscan(&refs);
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(!run.stderr.contains("waiting for"), "{}", run.describe());
    assert!(!run.stdout.contains("waiting for"), "{}", run.describe());
}
