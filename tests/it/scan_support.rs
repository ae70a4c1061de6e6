//! Running the hsscan binary and reading its `--json` records, for the
//! `scan_*` tests. Every run is bounded by [`RUN_DEADLINE`]; hsscan's own
//! timeouts end it long before in every test here.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Tool;

/// How long one hsscan run may take before the test kills it.
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The EHLO name every SMTP scan sends (the default would read the
/// machine's host name: fine, but not fixed).
pub const EHLO: &str = "scanner.test.example";

pub const PYTHON3: Tool = Tool {
    program: "python3",
    install: "install the Debian package `python3` (apt-get install python3)",
};

/// One finished hsscan run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The single JSON record of a one-endpoint scan; panics (with the run)
    /// unless stdout is exactly one JSON line.
    pub fn record(&self) -> Value {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "expected one JSON line\n{}", self.describe());
        serde_json::from_str(lines.first().copied().unwrap_or(""))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.describe()))
    }

    pub fn describe(&self) -> String {
        format!(
            "hsscan {}\nexit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `hsscan args…` with no stdin, waiting at most [`RUN_DEADLINE`].
pub fn hsscan(args: &[&str]) -> Run {
    hsscan_command(Command::new(env!("CARGO_BIN_EXE_hsscan")), args)
}

/// [`hsscan`] started by `cmd` (the binary itself, or a wrapper such as
/// `ip netns exec NAME hsscan`, with its own environment).
pub fn hsscan_command(mut cmd: Command, args: &[&str]) -> Run {
    let mut child = cmd
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO_BIN_EXE_hsscan")));
    // Drain both pipes on threads so a chatty run never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hsscan {} ran longer than {RUN_DEADLINE:?}", args.join(" "));
            }
            Err(e) => panic!("waiting for hsscan: {e}"),
        }
    };
    Run {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// The value at a JSON pointer (`/quick/modern/result/version/name`);
/// `Value::Null` when absent, so `assert_eq!` shows what was there.
pub fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    v.pointer(pointer).unwrap_or(&NULL)
}

/// Asserts a `failure` object exactly.
#[track_caller]
pub fn assert_failure(record: &Value, pointer: &str, stage: &str, kind: &str, detail: &str) {
    assert_eq!(
        at(record, pointer),
        &serde_json::json!({"stage": stage, "kind": kind, "detail": detail}),
        "{pointer} of {record:#}"
    );
}

/// A loopback listener that never accepts and whose accept queue is full,
/// so Linux drops every further SYN whatever the syncookies setting (and
/// would reset instead only with `net.ipv4.tcp_abort_on_overflow` = 1, not
/// the default). Keep the value alive for as long as connects must time out.
pub struct FullBacklog {
    pub port: u16,
    _listener: std::net::TcpListener,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("tokio runtime");
        let listener = rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind((Ipv4Addr::LOCALHOST, 0).into()).expect("bind 127.0.0.1:0");
            // A backlog of 1: the accept queue holds two connections.
            let l = socket.listen(1).expect("listen(1)");
            l.into_std().expect("into_std")
        });
        let addr = listener.local_addr().expect("local_addr");
        // Fill the queue until a connect goes unanswered (bounded: a kernel
        // that never drops would fail the premise below, not hang).
        let mut queued = Vec::new();
        let mut dropped = false;
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    dropped = true;
                    break;
                }
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
        }
        assert!(
            dropped,
            "the kernel completed {} handshakes to a listener that never accepts: \
             a connect timeout cannot be produced this way here (net.ipv4.tcp_abort_on_overflow?)",
            queued.len()
        );
        Self {
            port: addr.port(),
            _listener: listener,
            _queued: queued,
        }
    }
}
