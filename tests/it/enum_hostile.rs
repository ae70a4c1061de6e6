//! `hsscan --enumerate` through a hostile proxy (hostile.rs) in front of an
//! `openssl s_server` at its defaults, whose truth enum_openssl.rs computes
//! from OpenSSL's own tools against the server directly.
//!
//! The proxy forwards the first N connections, then resets, answers
//! garbage, falls silent or answers 421 — for ever, or for a window of K
//! connections. SPEC §4: a result hsscan is unsure of is reported as
//! unsure, never guessed. So for every protocol either `complete` is true
//! and the protocol and its suites equal the truth (a shorter list is
//! never complete), or `complete` is false and `unsure` names the
//! protocol; the exit code is 0 only when all six are complete. A short
//! window is retried with backoff and must end in the exact, complete
//! truth.
//!
//! Every run uses `--timeout 1 --retry-delay 0.1` to keep silence and
//! backoff short; hsscan's `connections` must be what the proxy accepted.

use std::net::{Ipv4Addr, SocketAddr};

use crate::enum_openssl::{self, Config};
use crate::enum_support::{self, Check, Scan, Truth};
use crate::hostile::{Hostile, Mode};
use crate::support::Server;

/// The options of every run through the proxy.
const ARGS: [&str; 6] = ["--starttls", "none", "--timeout", "1", "--retry-delay", "0.1"];

/// The server, its truth, the proxy and the scan through it.
struct Run {
    server: Server,
    truth: Truth,
    proxy: Hostile,
    scan: Scan,
}

impl Run {
    fn new(first: usize, window: usize, mode: Mode) -> Self {
        let cfg = Config::default();
        let mut server = cfg.start();
        // Waits until it listens; this connection does not pass the proxy.
        drop(server.connect());
        let truth = enum_openssl::truth(&server, &cfg);
        let proxy = Hostile::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, server.port)),
            first,
            window,
            mode,
        );
        let target = format!("127.0.0.1:{}", proxy.port);
        let scan = enum_support::enumerate_target(&target, &ARGS, &|| server.log());
        Self {
            server,
            truth,
            proxy,
            scan,
        }
    }

    /// The record, the proxy's connection log and the server's log.
    fn log(&self) -> String {
        format!(
            "--- record ---\n{:#}\n{}\n{}",
            self.scan.record,
            self.proxy.log(),
            self.server.log()
        )
    }

    /// hsscan's `connections` must be the connections the proxy accepted.
    fn connections_problem(&self) -> Option<String> {
        let got = self.scan.connections();
        let seen = self.proxy.connections();
        (usize::try_from(got).ok() != Some(seen)).then(|| {
            format!(
                "connections: hsscan says {got}, the proxy accepted {seen} ({} spoiled)",
                self.proxy.spoiled()
            )
        })
    }
}

/// Hostile for ever from connection `first` on: the partial contract.
fn forever(name: &'static str, mode: Mode, first: usize) {
    let run = Run::new(first, usize::MAX, mode);
    let mut check = Check::partial(name, &run.scan, &run.truth);
    check.exit_code();
    if let Some(p) = run.connections_problem() {
        check.problem(p);
    }
    if run.proxy.spoiled() == 0 {
        // Then nothing was spoiled and the partial contract is the exact one.
        eprintln!(
            "[{name}] the proxy spoiled no connection: hsscan made {} connections, the window starts at #{first}",
            run.proxy.connections()
        );
    }
    check.finish_with_log(&run.log());
}

/// Hostile for `window` connections from `first` on: the exact truth,
/// every protocol complete, within the bound plus the spoiled connections.
fn recovers(name: &'static str, mode: Mode, first: usize, window: usize) {
    let run = Run::new(first, window, mode);
    // Each spoiled connection may belong to a different pass (they run side
    // by side), which then asks a control hello and its own again.
    let mut check = Check::allowing(name, &run.scan, &run.truth, 2 * window);
    check.negotiated().exit_code();
    if let Some(p) = run.connections_problem() {
        check.problem(p);
    }
    if run.proxy.spoiled() != window {
        check.problem(format!(
            "the proxy spoiled {} connections, not {window}: hsscan made {}",
            run.proxy.spoiled(),
            run.proxy.connections()
        ));
    }
    check.finish_with_log(&run.log());
}

#[test]
fn hostile_reset_forever_from_3() {
    forever("reset for ever from #3", Mode::Reset, 3);
}

#[test]
fn hostile_reset_forever_from_5() {
    forever("reset for ever from #5", Mode::Reset, 5);
}

#[test]
fn hostile_reset_forever_from_15() {
    forever("reset for ever from #15", Mode::Reset, 15);
}

#[test]
fn hostile_reset_forever_from_40() {
    forever("reset for ever from #40", Mode::Reset, 40);
}

#[test]
fn hostile_garbage_forever_from_3() {
    forever("garbage for ever from #3", Mode::Garbage, 3);
}

#[test]
fn hostile_garbage_forever_from_5() {
    forever("garbage for ever from #5", Mode::Garbage, 5);
}

#[test]
fn hostile_garbage_forever_from_15() {
    forever("garbage for ever from #15", Mode::Garbage, 15);
}

#[test]
fn hostile_garbage_forever_from_40() {
    forever("garbage for ever from #40", Mode::Garbage, 40);
}

#[test]
fn hostile_reply421_forever_from_3() {
    forever("421 for ever from #3", Mode::Reply421, 3);
}

#[test]
fn hostile_reply421_forever_from_5() {
    forever("421 for ever from #5", Mode::Reply421, 5);
}

#[test]
fn hostile_reply421_forever_from_15() {
    forever("421 for ever from #15", Mode::Reply421, 15);
}

#[test]
fn hostile_reply421_forever_from_40() {
    forever("421 for ever from #40", Mode::Reply421, 40);
}

/// Silence costs a `--timeout` per connection: two starts only.
#[test]
fn hostile_silence_forever_from_5() {
    forever("silence for ever from #5", Mode::Silence, 5);
}

#[test]
fn hostile_silence_forever_from_15() {
    forever("silence for ever from #15", Mode::Silence, 15);
}

#[test]
fn hostile_reset_two_from_5_recovers() {
    recovers("reset #5 and #6, then forwarded", Mode::Reset, 5, 2);
}

#[test]
fn hostile_reply421_two_from_5_recovers() {
    recovers("421 on #5 and #6, then forwarded", Mode::Reply421, 5, 2);
}
