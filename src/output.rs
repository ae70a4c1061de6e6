//! The one writer of a scan run (SPEC §5, STYLE §6, §11): a task that owns
//! stdout, receives typed records over a channel in completion order, and
//! is the only place that knows JSON Lines, the terminal report and a
//! closed pipe. Single-target and `--mx` runs both write through it.
//!
//! A reader that goes away (`| head -1`) stops the run at once, not at the
//! next record: a watcher polls stdout for the error a pipe without a
//! reader reports, and a failed write stops it too.

use crate::report::{self, DomainRecord, EndpointRecord};
use crate::stop::{Stop, Why};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The readable report.
    Terminal { colour: bool },
    /// One JSON document (one target) or JSON Lines.
    Json,
    /// `--report partner`: Markdown for the receiving admin.
    Partner,
}

/// A record of the contract (SPEC §3).
#[derive(Debug)]
pub enum Record {
    Endpoint(Box<EndpointRecord>),
    Domain(Box<DomainRecord>),
}

/// Records in flight to the writer: enough to keep it busy, few enough
/// that a slow reader holds back the scans rather than memory.
const QUEUE: usize = 256;

/// How often the watcher looks whether stdout still has a reader.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// The run's writer.
pub struct Writer {
    tx: mpsc::Sender<Record>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Writer {
    /// Starts the writer task (and the stdout watcher); a closed stdout or
    /// a failed write sets `stop`. `fresh_line`: first end the cut last
    /// line of the file stdout appends to (`--resume`). Call from inside
    /// the run's runtime.
    pub fn start(output: Output, stop: Stop, fresh_line: bool) -> Self {
        let (tx, mut rx) = mpsc::channel::<Record>(QUEUE);
        let done = Arc::new(AtomicBool::new(false));
        watch_stdout(stop.clone(), done.clone());
        let task = tokio::task::spawn_blocking(move || {
            let mut out = std::io::stdout().lock();
            let mut first = true;
            let mut written = || -> std::io::Result<()> {
                if fresh_line {
                    out.write_all(b"\n")?;
                    out.flush()?;
                }
                while let Some(record) = rx.blocking_recv() {
                    let text = render(&record, output, first)?;
                    first = false;
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
                Ok(())
            };
            let result = written();
            done.store(true, Ordering::SeqCst);
            if result.is_err() {
                // Nothing written from now on would reach anyone.
                stop.set(Why::StdoutClosed);
            }
            result
        });
        Self { tx, task }
    }

    /// Queues one record; `false` when the writer is gone (stdout closed).
    pub async fn write(&self, record: Record) -> bool {
        self.tx.send(record).await.is_ok()
    }

    /// A handle other tasks queue records with; [`Writer::finish`] waits
    /// for the handles to be dropped, so drop them first.
    pub fn handle(&self) -> WriteHandle {
        WriteHandle(self.tx.clone())
    }

    /// Writes what is queued and ends: the first write error, if any.
    pub async fn finish(self) -> std::io::Result<()> {
        drop(self.tx);
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Queues records for the [`Writer`] from another task.
#[derive(Clone)]
pub struct WriteHandle(mpsc::Sender<Record>);

impl WriteHandle {
    /// Queues one record; `false` when the writer is gone (stdout closed).
    pub async fn write(&self, record: Record) -> bool {
        self.0.send(record).await.is_ok()
    }
}

fn render(record: &Record, output: Output, first: bool) -> std::io::Result<String> {
    Ok(match (record, output) {
        (Record::Endpoint(r), Output::Json) => serde_json::to_string(r).map_err(std::io::Error::other)? + "\n",
        (Record::Domain(d), Output::Json) => serde_json::to_string(d).map_err(std::io::Error::other)? + "\n",
        (Record::Endpoint(r), Output::Partner) => {
            let text = crate::partner::markdown(r, time::OffsetDateTime::now_utc());
            if first {
                text
            } else {
                format!("\n---\n\n{text}")
            }
        }
        (Record::Domain(d), Output::Partner) => report::domain_terminal(d, false),
        // A blank line between readable records.
        (r, Output::Terminal { colour }) => {
            let text = match r {
                Record::Endpoint(r) => report::terminal(r, colour),
                Record::Domain(d) => report::domain_terminal(d, colour),
            };
            if first {
                text
            } else {
                format!("\n{text}")
            }
        }
    })
}

/// Watches stdout on a thread of its own until `done`: a pipe whose reader
/// is gone reports an error (a terminal that hung up, a hang-up), and then
/// the run stops. Files and terminals in use never report either.
#[cfg(unix)]
fn watch_stdout(stop: Stop, done: Arc<AtomicBool>) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let spawned = std::thread::Builder::new()
        .name("hsscan-stdout-watch".to_owned())
        .spawn(move || {
            let stdout = std::io::stdout();
            let every = Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(WATCH_EVERY.subsec_nanos()),
            };
            while !done.load(Ordering::SeqCst) && !stop.is_set() {
                let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
                match poll(&mut fds, Some(&every)) {
                    Ok(0) => {}
                    Ok(_) => {
                        let got = fds.first().map_or(PollFlags::empty(), PollFd::revents);
                        if got.intersects(PollFlags::ERR | PollFlags::HUP) {
                            stop.set(Why::StdoutClosed);
                            return;
                        }
                        // Anything else (an fd that is not open) is left
                        // to the writes to report.
                        std::thread::sleep(WATCH_EVERY);
                    }
                    Err(_) => std::thread::sleep(WATCH_EVERY),
                }
            }
        });
    // Without the watcher a closed stdout is still seen at the next write.
    drop(spawned);
}

#[cfg(not(unix))]
fn watch_stdout(_stop: Stop, _done: Arc<AtomicBool>) {}

/// Whether stdout is the file at `path` (the same device and inode).
#[cfg(unix)]
pub fn stdout_is(path: &std::path::Path) -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata());
    match (out, std::fs::metadata(path)) {
        (Ok(out), Ok(file)) => out.dev() == file.dev() && out.ino() == file.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
pub fn stdout_is(_path: &std::path::Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, FailureKind, Stage};
    use crate::report::{MxEntry, Status, TargetInfo};
    use crate::target::Transport;

    /// The keys of a JSON object, sorted (serde_json's map is).
    fn keys(v: &serde_json::Value) -> Vec<&str> {
        v.as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn sorted(mut v: Vec<&str>) -> Vec<&str> {
        v.sort_unstable();
        v
    }

    #[test]
    fn an_endpoint_record_writes_every_key_absent_ones_as_null() {
        let info = TargetInfo {
            input: "127.0.0.1:465".into(),
            host: "127.0.0.1".into(),
            ip: Some("127.0.0.1".into()),
            port: 465,
            transport: Transport::ImplicitTls,
            sni: None,
            mx_of: None,
        };
        let f = Failure::new(Stage::Connect, FailureKind::Refused, "connecting: refused");
        let record = crate::scan::failure_record(info, f, 2, 1);
        let text = render(&Record::Endpoint(Box::new(record)), Output::Json, true).expect("JSON");
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let got = keys(&v);
        let want = sorted(vec![
            "record",
            "target",
            "verdict",
            "status",
            "failure",
            "smtp",
            "quick",
            "enumeration",
            "intolerance",
            "senders",
            "advice",
            "policy",
            "certificates",
            "findings",
            "connections",
            "duration_ms",
        ]);
        assert_eq!(got, want, "{v:#}");
        for key in ["smtp", "enumeration", "verdict", "policy"] {
            assert_eq!(v[key], serde_json::Value::Null, "{key}");
        }
        assert_eq!(
            keys(&v["target"]),
            sorted(vec!["input", "host", "ip", "port", "transport", "sni", "mx_of"])
        );
        assert_eq!(v["target"]["mx_of"], serde_json::Value::Null);
        assert_eq!(v["target"]["sni"], serde_json::Value::Null);
    }

    #[test]
    fn a_domain_record_writes_every_key_of_the_contract() {
        let d = DomainRecord {
            record: DomainRecord::RECORD,
            domain: "example.net".into(),
            mx: vec![MxEntry {
                host: "mx.example.net".into(),
                preference: 10,
                ips: vec!["192.0.2.7".into()],
            }],
            implicit_mx: false,
            null_mx: false,
            status: Status::Negotiated,
            verdict: None,
            failure: None,
            worst: Some(Status::Negotiated),
            tls12_or_better: true,
            endpoints: 1,
            policy: None,
            findings: vec![],
        };
        let text = render(&Record::Domain(Box::new(d)), Output::Json, true).expect("JSON");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let spec = [
            "record",
            "domain",
            "mx",
            "implicit_mx",
            "null_mx",
            "status",
            "verdict",
            "failure",
            "worst",
            "tls12_or_better",
            "endpoints",
            "policy",
            "findings",
        ];
        assert_eq!(keys(&v), sorted(spec.to_vec()));
        // Written in SPEC §3's order.
        let at: Vec<usize> = spec.iter().filter_map(|k| text.find(&format!("\"{k}\":"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(keys(&v["mx"][0]), ["host", "ips", "preference"]);
        for key in ["verdict", "failure", "policy"] {
            assert_eq!(v[key], serde_json::Value::Null, "{key}");
        }
        assert_eq!(v["record"], "domain");
    }

    #[test]
    fn a_domain_line_on_a_terminal_escapes_what_dns_and_the_input_said() {
        let d = DomainRecord {
            record: DomainRecord::RECORD,
            domain: "evil\x1b[2J.example".into(),
            mx: vec![],
            implicit_mx: false,
            null_mx: false,
            status: Status::Failed,
            verdict: None,
            failure: Some(Failure::new(
                Stage::Mx,
                FailureKind::Refused,
                "mx\x07[192.0.2.7]: refused",
            )),
            worst: Some(Status::Failed),
            tls12_or_better: false,
            endpoints: 1,
            policy: None,
            findings: vec![],
        };
        let text = render(&Record::Domain(Box::new(d)), Output::Terminal { colour: false }, false).expect("text");
        assert_eq!(
            text,
            "\ndomain evil\\x1b[2J.example: failed (worst failed, TLS 1.2 or better everywhere: false)\n  mx: refused: mx\\x07[192.0.2.7]: refused\n"
        );
    }
}
