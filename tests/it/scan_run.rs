//! The run as a whole, against hostile servers written for the tests
//! ([`crate::rogue`]): one per-IP gate for every target of the run, a stop
//! on Ctrl-C or a closed stdout that lets no connection start, bounded
//! input, and `--resume` over a torn output.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rogue::{self, Behaviour, Rogue};
use crate::scan_support::hsscan;

/// A file of this test run's own, holding `text`.
fn input_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hsscan-it-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the input");
    path
}

/// A server that answers every hello with a TLS 1.2 flight after `hold`.
fn tls12_server(hold: Duration, ports: usize) -> Rogue {
    let cert = rogue::certificate_named("mx.rogue.test", "mx.rogue.test");
    Rogue::start_on(
        Behaviour {
            hold,
            ..Behaviour::tls(rogue::tls12_flight(0xc02f, &cert))
        },
        ports,
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {l:?}")))
        .collect()
}

#[test]
fn twenty_targets_on_one_ip_never_hold_more_than_per_host_connections() {
    let server = tls12_server(Duration::from_millis(150), 20);
    let list: String = server.ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    let input = input_file("twenty-ports.txt", &list);
    let run = hsscan(&[
        "--json",
        "-j",
        "20",
        "--per-host",
        "2",
        "-i",
        &input.display().to_string(),
    ]);
    let records = json_lines(&run.stdout);
    assert_eq!(records.len(), 20, "{}", run.describe());
    for r in &records {
        assert_eq!(r["status"], "negotiated", "{r:#}");
    }
    let spent: u64 = records.iter().filter_map(|r| r["connections"].as_u64()).sum();
    assert_eq!(spent, server.connections() as u64, "{}", run.describe());
    // Measured at the server: never more than --per-host at once, and the
    // limit was reached (the targets did run side by side).
    assert_eq!(server.most_at_once(), 2, "{}", run.describe());
}

/// hsscan with stdout piped, its lines read as they come.
struct Live {
    child: std::process::Child,
    /// `None` once the test closed its end of the pipe.
    out: Option<BufReader<std::process::ChildStdout>>,
}

impl Live {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hsscan"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hsscan");
        let out = Some(BufReader::new(child.stdout.take().expect("stdout")));
        Self { child, out }
    }

    /// The next line of stdout (within 60 s).
    fn line(&mut self) -> String {
        let mut line = String::new();
        let out = self.out.as_mut().expect("stdout still open");
        let n = out.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "hsscan ended before writing a line");
        line
    }

    /// Waits (at most 20 s) for the exit: the code and how long it took.
    fn wait(&mut self) -> (Option<i32>, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status.code(), start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("hsscan did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What is left on stdout, to its end.
    fn rest(&mut self) -> String {
        let mut s = String::new();
        if let Some(out) = self.out.as_mut() {
            out.read_to_string(&mut s).expect("read stdout");
        }
        s
    }

    /// Closes the reading end of stdout, as `| head -1` does once done.
    fn close_stdout(&mut self) {
        self.out = None;
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    fn interrupt(&self) {
        let kill = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 20 s) until `f` holds.
fn until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn after_ctrl_c_no_connection_starts_not_even_a_retry_and_finished_records_are_written() {
    // Three good answers, then a 421 to every hello: the enumeration
    // retries those with backoff.
    let cert = rogue::certificate_named("mx.rogue.test", "mx.rogue.test");
    let flight = rogue::tls12_flight(0xc02f, &cert);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let limited = Rogue::start(Behaviour {
        answer: std::sync::Arc::new(move |_| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                flight.clone()
            } else {
                b"421 4.7.0 too many connections\r\n".to_vec()
            }
        }),
        ..Behaviour::tls(Vec::new())
    });
    // Nothing listens there: refused at once, a finished record.
    let refused = format!("127.0.0.1:{}", crate::support::free_port());
    let target = limited.target();
    let mut live = Live::start(&["--json", "--enumerate", "--retry-delay", "1", &refused, &target]);
    let first: Value = serde_json::from_str(&live.line()).expect("a whole JSON line");
    assert_eq!(first["target"]["input"], refused.as_str(), "{first:#}");
    // The enumeration is getting 421s and backing off.
    until("a 421 drew a retry", || limited.connections() >= 6);
    live.interrupt();
    std::thread::sleep(Duration::from_millis(150));
    let at_interrupt = limited.connections();
    let (code, took) = live.wait();
    assert_eq!(code, Some(130), "{}", live.stderr());
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    let rest = live.rest();
    // The unfinished enumeration's record is not written, half done.
    assert_eq!(rest, "", "only finished records");
    // Its retries (1 s, 2 s, 4 s apart) would have come by now.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(limited.connections(), at_interrupt, "a connection started after Ctrl-C");
    assert!(live.stderr().contains("hsscan: interrupted"), "on stderr");
}

#[test]
fn a_closed_stdout_stops_the_run_at_once_and_opens_no_connection() {
    let server = tls12_server(Duration::from_millis(400), 1);
    let target = server.target();
    let mut args = vec!["--json", "-j", "1", "--per-host", "1"];
    args.extend(std::iter::repeat_n(target.as_str(), 10));
    let mut live = Live::start(&args);
    let first: Value = serde_json::from_str(&live.line()).expect("a whole JSON line");
    assert_eq!(first["status"], "negotiated", "{first:#}");
    // The reader goes away, as `| head -1` does.
    live.close_stdout();
    let closed_at = Instant::now();
    let (code, took) = live.wait();
    std::thread::sleep(Duration::from_millis(100));
    let total = server.connections();
    assert!(took < Duration::from_secs(1), "the run went on for {took:?}");
    assert_eq!(code, Some(0), "a broken pipe exits quietly: {}", live.stderr());
    // Two hellos per target; at most the target in progress when the
    // reader left had started its connections.
    assert!(
        total <= 4,
        "{total} connections, {:?} after the close",
        closed_at.elapsed()
    );
}

/// GNU time, for the peak memory of a run.
const GNU_TIME: crate::support::Tool = crate::support::Tool {
    program: "time",
    install: "install the Debian package `time` (apt-get install time; .ci/run does)",
};

/// `hsscan args…` under `/usr/bin/time -v`: exit code, stderr, and the
/// peak resident memory in KiB.
fn measured(args: &[&str]) -> (Option<i32>, String, u64) {
    let time = GNU_TIME.require();
    let report = input_file(&format!("time-{}.txt", args.join("_").replace('/', "_")), "");
    let out = Command::new(time)
        .arg("-v")
        .arg("-o")
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_hsscan"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run hsscan under time");
    let text = std::fs::read_to_string(&report).expect("time's report");
    let kib = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in time's report:\n{text}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        kib,
    )
}

#[test]
fn an_input_that_never_ends_stops_at_the_cap_with_exit_2_and_bounded_memory() {
    for (args, what) in [
        (vec!["-i", "/dev/zero"], "targets"),
        (vec!["--mx", "-i", "/dev/zero"], "domains"),
    ] {
        let (code, stderr, kib) = measured(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(&format!(
                "reading {what} from /dev/zero: line 1 is longer than 1024 bytes"
            )),
            "{stderr}"
        );
        assert!(stderr.starts_with("hsscan: "), "{stderr}");
        // The runtime and the catalogs, not the input: well under 64 MiB.
        assert!(kib < 64 * 1024, "{args:?}: peak {kib} KiB");
    }
}

#[test]
fn a_line_over_the_limit_is_an_error_naming_its_line() {
    // No domain before the long line: a --mx run would look it up.
    let long = "a".repeat(1025);
    let input = input_file("long-line.txt", &format!("# a comment\n\n{long}\n127.0.0.1:1\n"));
    let path = input.display().to_string();
    for mx in [false, true] {
        let mut args = vec!["--json"];
        if mx {
            args.push("--mx");
        }
        args.extend(["-i", &path]);
        let run = hsscan(&args);
        assert_eq!(run.code, 2, "{}", run.describe());
        assert!(
            run.stderr
                .contains(&format!("from {path}: line 3 is longer than 1024 bytes")),
            "{}",
            run.describe()
        );
    }
    // A target that does not parse names its line too.
    let input = input_file("bad-target.txt", "127.0.0.1:1\n\nmx..example.net\n");
    let run = hsscan(&["--json", "-i", &input.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(
        run.stderr.contains(": line 3: parsing target 'mx..example.net'"),
        "{}",
        run.describe()
    );
    assert_eq!(run.stdout, "", "nothing scanned before the input is read whole");
}

/// `hsscan args…` under `ulimit` settings (e.g. `-Sn 40`): code, stdout, stderr.
fn under_ulimit(ulimit: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_hsscan"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Thirty-two scans of one server at once, two hellos each: more
/// connections in flight than 40 descriptors hold.
fn crowd(server: &Rogue) -> Vec<String> {
    let mut args: Vec<String> = ["--json", "-j", "64", "--per-host", "64"].map(str::to_owned).to_vec();
    args.extend(std::iter::repeat_n(server.target(), 32));
    args
}

#[cfg(target_os = "linux")]
#[test]
fn a_soft_open_file_limit_short_of_what_j_needs_is_raised_to_the_hard_one() {
    let server = tls12_server(Duration::from_millis(300), 1);
    let args = crowd(&server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = under_ulimit("-Sn 40", &args);
    assert_eq!(code, Some(0), "{stderr}");
    let records = json_lines(&stdout);
    assert_eq!(records.len(), 32, "{stderr}");
    assert!(records.iter().all(|r| r["status"] == "negotiated"), "{stdout}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(server.most_at_once() > 40, "at most {} at once", server.most_at_once());
}

#[cfg(target_os = "linux")]
#[test]
fn under_a_hard_open_file_limit_connections_back_off_and_every_record_is_the_servers() {
    let server = tls12_server(Duration::from_millis(300), 1);
    let args = crowd(&server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = under_ulimit("-n 40", &args);
    assert!(stderr.contains("the hard limit is 40"), "{stderr}");
    assert!(stderr.contains("connections back off and retry"), "{stderr}");
    let records = json_lines(&stdout);
    assert_eq!(records.len(), 32, "{stderr}");
    for r in &records {
        assert_eq!(r["status"], "negotiated", "{r:#}\n{stderr}");
    }
    assert_eq!(code, Some(0), "{stderr}");
}
