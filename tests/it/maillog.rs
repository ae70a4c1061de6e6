//! `hsscan log`: Postfix logs in, one scanned destination per failing next
//! hop out (SPEC §1 item 5).
//!
//! The logs are written here in the exact shapes Postfix 3.7.11 (Debian
//! 12) writes them, taken from a real instance relaying to the emulator:
//! - through syslog (rsyslog's traditional file format): `Dec  2
//!   03:06:03 mx postfix/smtp[4369]: …`, the day padded with a space;
//! - to its own `maillog_file` (postlogd): `Dec 02 03:06:03 mx
//!   postfix/smtp[4369]: …`, the day padded with a zero;
//! - rsyslog's default high-precision format, `2024-03-09T10:00:01.123456+01:00 mx …`.
//!
//! The delivery lines are Postfix's own, as that instance logged them
//! (`SSL_connect error to HOST[IP]:PORT: lost connection`, the `warning:
//! TLS library problem` line, `status=deferred (Cannot start TLS:
//! handshake failure)` with dsn 4.7.5). The next hops are emulated
//! receivers on loopback, named by IP literal in `relay=`, so no name is
//! ever resolved; the last test has a real Postfix write the log.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulate::emulator;
use crate::postfix::Postfix;
use crate::scan_support::{at, hsscan, Run, EHLO, RUN_DEADLINE};

/// A file for this test run.
fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hsscan-it-maillog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write log");
    path
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).expect("gzip");
    enc.finish().expect("gzip")
}

/// The JSON records of a `--json` run, one per line.
fn records(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", run.describe())))
        .collect()
}

/// The record whose `log.nexthop` is `nexthop`.
fn by_nexthop<'a>(records: &'a [Value], nexthop: &str, run: &Run) -> &'a Value {
    records
        .iter()
        .find(|r| at(r, "/log/nexthop") == nexthop)
        .unwrap_or_else(|| panic!("no record for {nexthop}\n{}", run.describe()))
}

/// Lines as Postfix 3.7's smtp client logs one delivery attempt that
/// failed its handshake, `stamp` being the timestamp column.
struct Lines<'a> {
    stamp: &'a str,
    out: String,
}

impl<'a> Lines<'a> {
    fn new(stamp: &'a str) -> Self {
        Self {
            stamp,
            out: String::new(),
        }
    }

    fn raw(&mut self, text: &str) -> &mut Self {
        self.out.push_str(text);
        self.out.push('\n');
        self
    }

    fn line(&mut self, program: &str, pid: u32, text: &str) -> &mut Self {
        let l = format!("{} mx postfix/{program}[{pid}]: {text}", self.stamp);
        self.raw(&l)
    }

    /// A message accepted and queued (smtpd, cleanup, qmgr), as logged.
    fn queued(&mut self, qid: &str) -> &mut Self {
        self.line("smtpd", 4366, "connect from unknown[127.0.0.1]")
            .line("smtpd", 4366, &format!("{qid}: client=unknown[127.0.0.1]"))
            .line(
                "qmgr",
                4315,
                &format!("{qid}: from=<a@test.example>, size=315, nrcpt=1 (queue active)"),
            )
    }

    /// A hello closed by the receiver: `SSL_connect error … lost connection`, deferred.
    fn dropped(&mut self, pid: u32, qid: &str, rcpt: &str, relay: &str) -> &mut Self {
        self.line("smtp", pid, &format!("SSL_connect error to {relay}: lost connection"))
            .line(
                "smtp",
                pid,
                &format!(
                    "{qid}: to=<{rcpt}>, relay={relay}, delay=0.02, delays=0.01/0.02/0/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)"
                ),
            )
    }

    /// A hello answered with a handshake_failure alert, then `status`.
    fn alerted(&mut self, pid: u32, qid: &str, rcpt: &str, relay: &str, dsn: &str, status: &str) -> &mut Self {
        self.line("smtp", pid, &format!("SSL_connect error to {relay}: -1"))
            .line("smtp", pid, "warning: TLS library problem: error:0A000410:SSL routines::sslv3 alert handshake failure:../ssl/record/rec_layer_s3.c:1601:SSL alert number 40:")
            .line(
                "smtp",
                pid,
                &format!(
                    "{qid}: to=<{rcpt}>, relay={relay}, delay=0.02, delays=0.01/0.01/0/0, dsn={dsn}, status={status} (Cannot start TLS: handshake failure)"
                ),
            )
    }

    fn sent(&mut self, pid: u32, qid: &str, rcpt: &str, relay: &str) -> &mut Self {
        self.line("smtp", pid, &format!("Trusted TLS connection established to {relay}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"))
            .line(
                "smtp",
                pid,
                &format!("{qid}: to=<{rcpt}>, relay={relay}, delay=0.1, delays=0.01/0/0.05/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4B1C2D3E4F)"),
            )
    }
}

#[test]
fn syslog_lines_give_each_failing_destination_its_messages_and_verdict() {
    let lb = emulator("lb-drop-after-hello", &[]);
    let old = emulator("exchange2007", &[]);
    let lb_hop = format!("mx1.lb.test[127.0.0.1]:{}", lb.port);
    let old_hop = format!("mail.old.test[127.0.0.1]:{}", old.port);
    // Delivered: never scanned, so nothing needs to listen there.
    let good_hop = "mx.good.test[127.0.0.1]:9";
    let mut log = Lines::new("Mar  9 10:00:01");
    log.queued("3D75E9981CA")
        .dropped(4369, "3D75E9981CA", "b@lb.test", &lb_hop)
        .queued("3E2C09980C8")
        .alerted(4371, "3E2C09980C8", "c@old.test", &old_hop, "4.7.5", "deferred")
        .queued("41F3A9981D0")
        .sent(4372, "41F3A9981D0", "d@good.test", good_hop)
        .raw("this line is not from syslog")
        .raw("Mar  9 10:00")
        .raw("\u{1}\u{2}binary junk");
    let mut later = Lines::new("Mar  9 10:30:07");
    // The first message again, and two more to the same MX.
    later
        .dropped(5101, "3D75E9981CA", "b@lb.test", &lb_hop)
        .queued("52A0B9981E1")
        .dropped(5102, "52A0B9981E1", "e@lb.test", &lb_hop)
        .queued("53B1C9981F2")
        .dropped(5103, "53B1C9981F2", "f@lb.test", &lb_hop)
        .alerted(5104, "3E2C09980C8", "c@old.test", &old_hop, "5.7.5", "bounced");
    let text = log.out.clone() + &later.out;
    let path = write_file("mail.log", text.as_bytes());
    let path = path.display().to_string();

    let run = hsscan(&["log", "--json", "--ehlo", EHLO, &path]);
    assert_eq!(run.code, 1, "the headline sender gets no TLS there\n{}", run.describe());
    let recs = records(&run);
    assert_eq!(recs.len(), 2, "lb and old, not good\n{}", run.describe());
    // Most messages first.
    assert_eq!(at(&recs[0], "/log/nexthop"), lb_hop.as_str());
    let r = by_nexthop(&recs, &lb_hop, &run);
    assert_eq!(at(r, "/log/messages"), 3, "three queue ids");
    assert_eq!(at(r, "/log/deferred"), 3);
    assert_eq!(at(r, "/log/bounced"), 0);
    let first = at(r, "/log/first_seen").as_str().unwrap_or("");
    let last = at(r, "/log/last_seen").as_str().unwrap_or("");
    assert!(first.ends_with("-03-09T10:00:01Z"), "{first}");
    assert!(last.ends_with("-03-09T10:30:07Z"), "{last}");
    assert_eq!(
        at(r, "/log/errors"),
        &serde_json::json!([
            "Cannot start TLS: handshake failure",
            format!("SSL_connect error to {lb_hop}: lost connection")
        ])
    );
    assert_eq!(at(r, "/target/host"), "mx1.lb.test");
    assert_eq!(at(r, "/target/ip"), "127.0.0.1");
    assert_eq!(at(r, "/target/port"), lb.port);
    assert_eq!(at(r, "/target/sni"), "mx1.lb.test", "the log's host name is the SNI");
    assert_eq!(at(r, "/target/transport"), "smtp-starttls");
    assert_eq!(at(r, "/verdict/outcome"), "no-tls");
    assert_eq!(at(r, "/failure/kind"), "closed-after-hello");

    let r = by_nexthop(&recs, &old_hop, &run);
    assert_eq!(at(r, "/log/messages"), 1, "deferred, then bounced: one message");
    assert_eq!(at(r, "/log/deferred"), 1);
    assert_eq!(at(r, "/log/bounced"), 1);
    assert_eq!(at(r, "/log/errors").as_array().map(Vec::len), Some(3));
    assert_eq!(at(r, "/verdict/outcome"), "no-tls");
    assert_eq!(at(r, "/senders/0/reason/kind"), "no-shared-cipher");
    assert_eq!(at(r, "/status"), "negotiated", "hsscan's own legacy hello gets TLS 1.0");

    assert!(
        run.stderr.contains("3 lines not understood, skipped"),
        "junk is counted on stderr\n{}",
        run.describe()
    );
    assert!(run.stderr.contains("at 2 destinations"), "{}", run.describe());

    // The terminal report: the log's facts, then the normal report.
    let run = hsscan(&["log", "--ehlo", EHLO, &path]);
    assert_eq!(run.code, 1, "{}", run.describe());
    let facts = format!("log: 3 messages affected (3 deferred, 0 bounced) to {lb_hop}");
    let mut lines = run.stdout.lines();
    let head = lines.next().unwrap_or("");
    assert!(head.starts_with(&facts), "{}", run.describe());
    assert!(
        head.ends_with("Cannot start TLS: handshake failure (and 1 other error)"),
        "{head}"
    );
    let report = lines.next().unwrap_or("");
    assert!(
        report.starts_with(&format!("mx1.lb.test [127.0.0.1]:{} smtp-starttls  NO TLS", lb.port)),
        "{}",
        run.describe()
    );
}

/// Runs `hsscan args…` with `stdin` as its standard input.
fn hsscan_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsscan"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hsscan");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
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
        match child.try_wait().expect("wait") {
            Some(s) => break s,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = child.kill();
                panic!("hsscan {} ran longer than {RUN_DEADLINE:?}", args.join(" "));
            }
        }
    };
    let _ = writer.join();
    Run {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

#[test]
fn maillog_file_lines_gzip_and_stdin_are_read_alike() {
    let lb = emulator("lb-drop-after-hello", &[]);
    let lb_hop = format!("mx1.lb.test[127.0.0.1]:{}", lb.port);
    let good_hop = "mx.good.test[127.0.0.1]:9";
    // Postfix's own maillog_file, rotated and compressed: zero-padded day.
    let mut rotated = Lines::new("Mar 09 10:00:01");
    rotated
        .line("postfix-script", 4311, "starting the Postfix mail system")
        .line(
            "master",
            4313,
            "daemon started -- version 3.7.11, configuration /etc/postfix",
        )
        .queued("3D75E9981CA")
        .dropped(4369, "3D75E9981CA", "b@lb.test", &lb_hop)
        .raw("garbage in the rotated file");
    let gz = write_file("maillog.1.gz", &gzip(&rotated.out));
    // The current file, through stdin, with rsyslog's RFC 3339 timestamps.
    let mut current = Lines::new("2024-03-09T11:00:01.123456+01:00");
    current
        .queued("4F0011C0AA1")
        .dropped(6001, "4F0011C0AA1", "g@lb.test", &lb_hop)
        .sent(6002, "4F0011C0AA2", "h@good.test", good_hop);
    let gz = gz.display().to_string();
    let run = hsscan_stdin(&["log", "--json", "--ehlo", EHLO, &gz, "-"], current.out.as_bytes());
    assert_eq!(run.code, 1, "{}", run.describe());
    let recs = records(&run);
    assert_eq!(recs.len(), 1, "{}", run.describe());
    let r = &recs[0];
    assert_eq!(at(r, "/log/nexthop"), lb_hop.as_str());
    assert_eq!(at(r, "/log/messages"), 2, "one from each file");
    // The RFC 3339 stamp (2024) is the earlier; the syslog one has this
    // year or the last.
    assert_eq!(
        at(r, "/log/first_seen"),
        "2024-03-09T10:00:01.123456Z",
        "RFC 3339 stamps are converted to UTC"
    );
    assert!(
        at(r, "/log/last_seen")
            .as_str()
            .unwrap_or("")
            .ends_with("-03-09T10:00:01Z"),
        "{}",
        run.describe()
    );
    assert_eq!(at(r, "/verdict/outcome"), "no-tls");
    assert!(
        run.stderr.contains("1 line not understood, skipped"),
        "{}",
        run.describe()
    );
}

#[test]
fn a_log_without_tls_failures_scans_nothing_and_exits_0() {
    let mut log = Lines::new("Mar  9 10:00:01");
    log.queued("41F3A9981D0")
        .sent(4372, "41F3A9981D0", "d@good.test", "mx.good.test[127.0.0.1]:9");
    let path = write_file("clean.log", log.out.as_bytes());
    let run = hsscan(&["log", &path.display().to_string()]);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(run
        .stdout
        .contains("No delivery in the log was deferred or bounced for a TLS reason."));
    let missing = hsscan(&["log", "/nonexistent/mail.log"]);
    assert_eq!(missing.code, 2, "{}", missing.describe());
    assert!(
        missing.stderr.starts_with("hsscan: reading /nonexistent/mail.log: "),
        "{}",
        missing.describe()
    );
}

/// The whole way: a real Postfix 3.7 relays to the load-balancer emulator
/// with TLS required, defers the mail, and `hsscan log` reads its maillog.
#[test]
fn a_real_postfix_maillog_names_the_destination_it_deferred() {
    let lb = emulator("lb-drop-after-hello", &[]);
    let relayhost = format!("[127.0.0.1]:{}", lb.port);
    let pf = Postfix::start_relay(&[
        ("relayhost", &relayhost),
        ("mynetworks", "127.0.0.0/8"),
        ("smtp_tls_security_level", "encrypt"),
    ]);
    crate::emulate_postfix::submit(&pf);
    let log = pf.log_when(|l| l.contains("status=deferred"));
    assert!(log.contains("status=deferred"), "Postfix did not defer\n{log}");
    // pf.log() opens with a header line of its own.
    let maillog: String = log.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let path = write_file("real-maillog", maillog.as_bytes());
    let run = hsscan(&["log", "--json", "--ehlo", EHLO, &path.display().to_string()]);
    assert_eq!(run.code, 1, "{}\n{log}", run.describe());
    let recs = records(&run);
    assert_eq!(recs.len(), 1, "{}\n{log}", run.describe());
    let r = &recs[0];
    assert_eq!(
        at(r, "/log/nexthop"),
        format!("127.0.0.1[127.0.0.1]:{}", lb.port).as_str()
    );
    assert_eq!(at(r, "/log/messages"), 1);
    assert_eq!(at(r, "/log/deferred"), 1);
    assert_eq!(at(r, "/log/errors/0"), "Cannot start TLS: handshake failure", "{log}");
    assert_eq!(at(r, "/target/host"), "127.0.0.1");
    assert_eq!(at(r, "/target/sni"), &Value::Null, "never an IP as SNI");
    assert_eq!(at(r, "/verdict/outcome"), "no-tls");
    assert!(
        !run.stderr.contains("not understood"),
        "Postfix's own lines are all read\n{}",
        run.describe()
    );
}
