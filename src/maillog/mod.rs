//! Reading Postfix mail logs for `hsscan log` (SPEC §1 item 5): which next
//! hops did deliveries fail to for TLS reasons, how many messages, when.
//!
//! Sans-I/O: [`Log::push_line`] takes one line at a time, whatever file or
//! stream it came from, and [`Log::finish`] returns the destinations. Two
//! line shapes are read, both `TIMESTAMP HOST PROGRAM[PID]: TEXT`:
//! - classic syslog (RFC 3164), `Jan  5 10:00:01 mail postfix/smtp[123]: …`:
//!   no year and no zone, taken as UTC in the year that puts the line at
//!   most a day in the future;
//! - RFC 3339 timestamps, `2024-01-05T10:00:01.123456+01:00 mail
//!   postfix/smtp[123]: …`, as Postfix's own `maillog_file` and rsyslog's
//!   default high-precision format write them.
//!
//! A delivery is a TLS failure when its `status=deferred` or
//! `status=bounced` text names TLS (`Cannot start TLS`, `SSL_connect
//! error`, `TLS is required, but was not offered`, `lost connection …
//! TLS`, certificate verification), or its `dsn=` is 4.7.x — except a
//! greylisting reply, the one common 4.7.x that is not about TLS. The
//! lines a delivery agent logs before its status line (`SSL_connect error
//! to host[ip]:port: …`, `warning: TLS library problem: …`) are kept per
//! process id and belong to that process's next status line; a message
//! that was then sent anyway went in plaintext (opportunistic TLS retries
//! without it) and counts as affected, neither deferred nor bounced.
//!
//! Lines that are not of that shape are skipped and counted, never fatal.
//! Memory is bounded by the number of destinations and messages, each
//! list capped below.

pub mod run;

use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// Distinct error lines kept per destination: enough to see every kind of
/// failure, bounded for a log of a million deferrals to one host.
const MAX_ERRORS: usize = 20;
/// Recipient domains kept per destination (the policy-table keys).
const MAX_DOMAINS: usize = 50;
/// Error lines kept per process id while waiting for its status line.
const MAX_PENDING_PER_PID: usize = 8;
/// Process ids with pending error lines: past this, the oldest are dropped
/// (a process that logged an error and never a status line).
const MAX_PENDING_PIDS: usize = 10_000;

/// One next hop the log shows failing, and the facts the log gives for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    /// The next hop as Postfix logs it, `host[ip]:port`.
    pub nexthop: String,
    /// The host name of the next hop (the MX or relay host).
    #[serde(skip)]
    pub host: String,
    #[serde(skip)]
    pub ip: IpAddr,
    #[serde(skip)]
    pub port: u16,
    /// Distinct messages (queue ids) affected: deferred, bounced, or sent
    /// after a TLS failure (in plaintext).
    pub messages: usize,
    /// Distinct messages deferred for a TLS reason.
    pub deferred: usize,
    /// Distinct messages bounced for a TLS reason.
    pub bounced: usize,
    /// RFC 3339 UTC instant of the first and the last failure seen.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// The distinct TLS error texts, in the order first seen.
    pub errors: Vec<String>,
    /// The recipient domains of the affected messages, sorted.
    pub domains: Vec<String>,
}

/// What the reading counted, for the summary on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub lines: usize,
    /// Lines not of the syslog shape: skipped.
    pub not_understood: usize,
    /// The first of them, to show what was skipped.
    pub first_not_understood: Option<String>,
    /// Delivery status lines read (any status).
    pub deliveries: usize,
    /// Of those, failures for TLS reasons.
    pub tls_failures: usize,
    /// TLS failures whose next hop the log does not name (`relay=none` and
    /// no `host[ip]` in the text): nothing to scan.
    pub without_nexthop: usize,
}

#[derive(Debug, Default)]
struct Acc {
    host: String,
    affected: BTreeSet<String>,
    deferred: BTreeSet<String>,
    bounced: BTreeSet<String>,
    first: Option<time::OffsetDateTime>,
    last: Option<time::OffsetDateTime>,
    errors: Vec<String>,
    domains: BTreeSet<String>,
}

impl Acc {
    fn error(&mut self, text: &str) {
        if self.errors.len() < MAX_ERRORS && !self.errors.iter().any(|e| e == text) {
            self.errors.push(text.to_owned());
        }
    }

    fn seen(&mut self, at: Option<time::OffsetDateTime>) {
        if let Some(at) = at {
            self.first = Some(self.first.map_or(at, |f| f.min(at)));
            self.last = Some(self.last.map_or(at, |l| l.max(at)));
        }
    }
}

/// An error line waiting for its process's status line.
#[derive(Debug, Clone)]
struct Pending {
    text: String,
    hop: Option<Hop>,
    at: Option<time::OffsetDateTime>,
}

/// `host[ip]:port` as Postfix prints a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hop {
    host: String,
    ip: IpAddr,
    port: Option<u16>,
}

/// The reader's state: push lines, then [`Log::finish`].
#[derive(Debug)]
pub struct Log {
    now: time::OffsetDateTime,
    counts: Counts,
    by_hop: HashMap<(IpAddr, u16), Acc>,
    pending: HashMap<u32, Vec<Pending>>,
    /// Insertion order of `pending`'s keys, to drop the oldest.
    pending_order: std::collections::VecDeque<u32>,
}

/// One syslog-shaped line, split.
#[derive(Debug, PartialEq, Eq)]
struct Line<'a> {
    at: Option<time::OffsetDateTime>,
    program: &'a str,
    pid: Option<u32>,
    text: &'a str,
}

impl Log {
    /// A reader that dates classic syslog lines (which have no year) by
    /// `now`: a line that would lie over a day after it is from last year.
    pub fn new(now: time::OffsetDateTime) -> Self {
        Self {
            now,
            counts: Counts::default(),
            by_hop: HashMap::new(),
            pending: HashMap::new(),
            pending_order: std::collections::VecDeque::new(),
        }
    }

    /// Reads one line (without its newline).
    pub fn push_line(&mut self, raw: &str) {
        self.counts.lines += 1;
        let raw = raw.trim_end_matches(['\r', '\n']);
        if raw.trim().is_empty() {
            return;
        }
        let Some(line) = split_line(raw, self.now) else {
            self.counts.not_understood += 1;
            if self.counts.first_not_understood.is_none() {
                self.counts.first_not_understood = Some(raw.chars().take(120).collect());
            }
            return;
        };
        if !is_delivery_agent(line.program) {
            return;
        }
        self.delivery_line(&line);
    }

    fn delivery_line(&mut self, line: &Line<'_>) {
        let (queue_id, rest) = split_queue_id(line.text);
        if let Some(status) = queue_id.and_then(|_| Status::parse(rest)) {
            self.status_line(queue_id.unwrap_or_default(), &status, line);
            return;
        }
        // A line before the status line: keep it when it is about TLS.
        let text = rest.trim();
        if !is_tls_error(text) {
            return;
        }
        let Some(pid) = line.pid else { return };
        let entry = self.pending.entry(pid).or_insert_with(|| {
            self.pending_order.push_back(pid);
            Vec::new()
        });
        if entry.len() < MAX_PENDING_PER_PID {
            entry.push(Pending {
                text: text.to_owned(),
                hop: find_hop(text),
                at: line.at,
            });
        }
        while self.pending_order.len() > MAX_PENDING_PIDS {
            if let Some(old) = self.pending_order.pop_front() {
                self.orphan(old);
            }
        }
    }

    /// Error lines of a process that logged no status line after them: the
    /// destination they name still failed TLS.
    fn orphan(&mut self, pid: u32) {
        for p in self.pending.remove(&pid).unwrap_or_default() {
            if let Some(hop) = &p.hop {
                let acc = self.acc(hop, None);
                acc.error(&p.text);
                acc.seen(p.at);
            }
        }
    }

    fn acc(&mut self, hop: &Hop, port: Option<u16>) -> &mut Acc {
        let port = hop.port.or(port).unwrap_or(crate::bulk::SMTP_PORT);
        let acc = self.by_hop.entry((hop.ip, port)).or_default();
        if acc.host.is_empty() {
            acc.host.clone_from(&hop.host);
        }
        acc
    }

    fn status_line(&mut self, queue_id: &str, status: &Status<'_>, line: &Line<'_>) {
        self.counts.deliveries += 1;
        let pending = match line.pid {
            Some(pid) => {
                self.pending_order.retain(|p| *p != pid);
                self.pending.remove(&pid).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let failed = matches!(status.status, "deferred" | "bounced");
        let tls = status.is_tls_failure();
        // A message sent after a TLS failure went without TLS.
        if !(failed && tls) && pending.is_empty() {
            return;
        }
        self.counts.tls_failures += 1;
        let hop = status
            .relay
            .clone()
            .or_else(|| find_hop(status.text))
            .or_else(|| pending.iter().find_map(|p| p.hop.clone()));
        let Some(hop) = hop else {
            self.counts.without_nexthop += 1;
            return;
        };
        let acc = self.acc(&hop, None);
        acc.affected.insert(queue_id.to_owned());
        match status.status {
            "deferred" if tls => {
                acc.deferred.insert(queue_id.to_owned());
            }
            "bounced" if tls => {
                acc.bounced.insert(queue_id.to_owned());
            }
            _ => {}
        }
        // The status text first: it is what the admin greps for.
        if tls {
            acc.error(status.text);
        }
        for p in &pending {
            acc.error(&p.text);
            acc.seen(p.at);
        }
        acc.seen(line.at);
        if let Some(domain) = status.domain {
            if acc.domains.len() < MAX_DOMAINS {
                acc.domains.insert(domain.to_ascii_lowercase());
            }
        }
    }

    /// The destinations, most messages affected first, and the counts.
    pub fn finish(mut self) -> (Vec<Destination>, Counts) {
        let pids: Vec<u32> = self.pending_order.drain(..).collect();
        for pid in pids {
            self.orphan(pid);
        }
        let rfc3339 = |t: time::OffsetDateTime| {
            t.to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        };
        let mut out: Vec<Destination> = self
            .by_hop
            .into_iter()
            .map(|((ip, port), a)| Destination {
                nexthop: format!("{}[{ip}]:{port}", a.host),
                host: a.host,
                ip,
                port,
                messages: a.affected.len(),
                deferred: a.deferred.len(),
                bounced: a.bounced.len(),
                first_seen: a.first.and_then(rfc3339),
                last_seen: a.last.and_then(rfc3339),
                errors: a.errors,
                domains: a.domains.into_iter().collect(),
            })
            .collect();
        out.sort_by(|a, b| b.messages.cmp(&a.messages).then_with(|| a.nexthop.cmp(&b.nexthop)));
        (out, self.counts)
    }
}

/// A Postfix delivery agent: Postfix tags every line `SYSLOG_NAME/SERVICE`
/// (`postfix/smtp`, a second instance's `postfix-out/smtp`, a test's own
/// `syslog_name`, a master.cf service running smtp as `postfix/relay`), so
/// any tag with a slash is one unless its service is a daemon that
/// delivers nothing — smtpd's `SSL_accept error`s are about inbound mail.
fn is_delivery_agent(program: &str) -> bool {
    const NOT_DELIVERY: &[&str] = &[
        "smtpd",
        "postscreen",
        "tlsproxy",
        "qmgr",
        "cleanup",
        "pickup",
        "master",
        "anvil",
        "scache",
        "tlsmgr",
        "bounce",
        "postfix-script",
        "postlogd",
        "trivial-rewrite",
        "proxymap",
        "verify",
        "dnsblog",
        "postdrop",
        "sendmail",
        "postsuper",
        "postqueue",
        "showq",
        "flush",
    ];
    match program.rsplit_once('/') {
        Some((head, service)) => !head.is_empty() && !NOT_DELIVERY.contains(&service),
        None => false,
    }
}

/// `4F2A31C0123: rest` → (Some(queue id), rest); a line without one → (None, text).
fn split_queue_id(text: &str) -> (Option<&str>, &str) {
    match text.split_once(": ") {
        // Short ids are upper-case hex, long ones (enable_long_queue_ids)
        // mix digits and both cases: either way never a lower-case word
        // such as `warning`.
        Some((id, rest))
            if id.len() >= 6
                && id.bytes().all(|b| b.is_ascii_alphanumeric())
                && id.bytes().any(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) =>
        {
            (Some(id), rest)
        }
        _ => (None, text),
    }
}

/// The fields of a delivery status line:
/// `to=<rcpt>, relay=host[ip]:port, delay=…, dsn=4.7.5, status=deferred (text)`.
#[derive(Debug, PartialEq, Eq)]
struct Status<'a> {
    domain: Option<&'a str>,
    relay: Option<Hop>,
    dsn: Option<&'a str>,
    status: &'a str,
    text: &'a str,
}

impl<'a> Status<'a> {
    fn parse(rest: &'a str) -> Option<Self> {
        let to = rest.strip_prefix("to=<")?;
        let (rcpt, _) = to.split_once('>')?;
        let field = |name: &str| -> Option<&'a str> {
            let at = rest.find(&format!(", {name}="))?;
            let v = rest.get(at + name.len() + 3..)?;
            Some(v.split(", ").next().unwrap_or(v))
        };
        let status_at = rest.find(", status=")?;
        let after = rest.get(status_at + ", status=".len()..)?;
        let (status, text) = match after.split_once(' ') {
            Some((s, t)) => (s, t.trim()),
            None => (after, ""),
        };
        let text = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).unwrap_or(text);
        Some(Self {
            domain: rcpt.rsplit_once('@').map(|(_, d)| d).filter(|d| !d.is_empty()),
            relay: field("relay").and_then(find_hop),
            dsn: field("dsn"),
            status,
            text,
        })
    }

    fn is_tls_failure(&self) -> bool {
        if !matches!(self.status, "deferred" | "bounced") {
            return false;
        }
        if is_tls_error(self.text) {
            return true;
        }
        let lower = self.text.to_ascii_lowercase();
        let greylisted = ["greylist", "graylist", "grey-list", "gray-list"]
            .iter()
            .any(|g| lower.contains(g));
        self.dsn.is_some_and(|d| d.starts_with("4.7.")) && !greylisted
    }
}

/// Whether a text names a TLS failure the way Postfix's smtp client logs one.
fn is_tls_error(text: &str) -> bool {
    const PHRASES: &[&str] = &[
        "cannot start tls",
        "ssl_connect error",
        "tls is required, but",
        "tls library problem",
        "server certificate not verified",
        "server certificate not trusted",
        "certificate verification failed",
        "tls handshake",
        "starttls",
    ];
    let lower = text.to_ascii_lowercase();
    PHRASES.iter().any(|p| lower.contains(p)) || (lower.contains("lost connection") && lower.contains("tls"))
}

/// The first `host[ip]` (with `:port` when present) in a text.
fn find_hop(text: &str) -> Option<Hop> {
    let mut from = 0;
    while let Some(open) = text.get(from..)?.find('[').map(|i| i + from) {
        from = open + 1;
        let host_start = text
            .get(..open)?
            .rfind(|c: char| c.is_whitespace() || c == '=' || c == '(' || c == ',')
            .map_or(0, |i| i + 1);
        let host = text.get(host_start..open)?;
        let close = text.get(open..)?.find(']').map(|i| i + open)?;
        let Ok(ip) = text.get(open + 1..close)?.parse::<IpAddr>() else {
            continue;
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            continue;
        }
        let port = text
            .get(close + 1..)
            .and_then(|r| r.strip_prefix(':'))
            .map(|r| r.bytes().take_while(u8::is_ascii_digit).count())
            .filter(|n| *n > 0)
            .and_then(|n| text.get(close + 2..close + 2 + n)?.parse().ok());
        return Some(Hop {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            ip,
            port,
        });
    }
    None
}

/// `TIMESTAMP HOST PROGRAM[PID]: TEXT`, either timestamp shape.
fn split_line(raw: &str, now: time::OffsetDateTime) -> Option<Line<'_>> {
    let (at, rest) = if raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (ts, rest) = raw.split_once(' ')?;
        let at = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
        (Some(at), rest)
    } else {
        classic_timestamp(raw, now)?
    };
    let rest = rest.trim_start();
    let (_host, rest) = rest.split_once(' ')?;
    let (tag, text) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))?;
    if tag.contains(' ') {
        return None;
    }
    let (program, pid) = match tag.split_once('[') {
        Some((p, pid)) => (p, Some(pid.strip_suffix(']')?.parse().ok()?)),
        None => (tag, None),
    };
    if program.is_empty() {
        return None;
    }
    Some(Line { at, program, pid, text })
}

/// `Jan  5 10:00:01 rest` (RFC 3164): the instant in UTC, in the year that
/// puts it at most a day after `now`.
fn classic_timestamp(raw: &str, now: time::OffsetDateTime) -> Option<(Option<time::OffsetDateTime>, &str)> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = raw.get(..3)?;
    let m = MONTHS.iter().position(|x| *x == month)?;
    let rest = raw.get(3..)?.trim_start();
    let (day, rest) = rest.split_once(' ')?;
    let (clock, rest) = rest.split_once(' ')?;
    let day: u8 = day.parse().ok()?;
    let mut hms = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(m + 1).ok()?).ok()?;
    let time = time::Time::from_hms(h, mi, s).ok()?;
    let at = |year: i32| {
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(|d| time::PrimitiveDateTime::new(d, time).assume_utc())
    };
    let year = now.year();
    let dated = match at(year) {
        Some(t) if t <= now + time::Duration::days(1) => Some(t),
        _ => at(year - 1),
    };
    // A well-formed line with an impossible date (Feb 30) is still a line.
    Some((dated, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> time::OffsetDateTime {
        time::macros::datetime!(2024-03-10 12:00 UTC)
    }

    fn read(lines: &[&str]) -> (Vec<Destination>, Counts) {
        let mut log = Log::new(now());
        for l in lines {
            log.push_line(l);
        }
        log.finish()
    }

    #[test]
    fn a_handshake_failure_deferral_names_its_relay_and_counts_messages() {
        let (d, c) = read(&[
            "Mar  9 10:00:01 mail postfix/smtp[4242]: 4F2A31C0123: to=<bob@partner.example>, relay=mx.partner.example[192.0.2.7]:25, delay=1.2, delays=0.01/0/1.1/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
            "Mar  9 10:30:01 mail postfix/smtp[4243]: 4F2A31C0123: to=<bob@partner.example>, relay=mx.partner.example[192.0.2.7]:25, delay=1802, delays=1800/0/1.1/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
            "Mar  9 11:00:01 mail postfix/smtp[4244]: 5B1C2D3E4F5: to=<carol@partner.example>, relay=mx.partner.example[192.0.2.7]:25, delay=1.2, delays=0.01/0/1.1/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
            "Mar  9 11:00:02 mail postfix/smtp[4245]: 6C2D3E4F5A6: to=<dave@ok.example>, relay=mx.ok.example[192.0.2.9]:25, delay=0.5, delays=0.01/0/0.2/0.3, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)",
        ]);
        assert_eq!(c.deliveries, 4);
        assert_eq!(c.not_understood, 0);
        assert_eq!(d.len(), 1, "{d:?}");
        let d = &d[0];
        assert_eq!(d.nexthop, "mx.partner.example[192.0.2.7]:25");
        assert_eq!((d.messages, d.deferred, d.bounced), (2, 2, 0));
        assert_eq!(d.first_seen.as_deref(), Some("2024-03-09T10:00:01Z"));
        assert_eq!(d.last_seen.as_deref(), Some("2024-03-09T11:00:01Z"));
        assert_eq!(d.errors, vec!["Cannot start TLS: handshake failure"]);
        assert_eq!(d.domains, vec!["partner.example"]);
    }

    #[test]
    fn rfc3339_lines_are_read_and_converted_to_utc() {
        let (d, _) = read(&[
            "2024-03-09T10:00:01.123456+01:00 mail postfix/smtp[77]: 4QmHxq1bL9z9sKs: to=<a@b.example>, relay=mx.b.example[2001:db8::7]:25, delay=1, delays=0/0/1/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host mx.b.example[2001:db8::7])",
        ]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].nexthop, "mx.b.example[2001:db8::7]:25");
        assert_eq!(d[0].first_seen.as_deref(), Some("2024-03-09T09:00:01.123456Z"));
    }

    #[test]
    fn error_lines_before_the_status_line_are_its_errors() {
        let (d, _) = read(&[
            "Mar  9 10:00:01 mail postfix/smtp[9]: SSL_connect error to mx.x.example[192.0.2.1]:25: lost connection",
            "Mar  9 10:00:01 mail postfix/smtp[9]: warning: TLS library problem: error:0A000410:SSL routines::sslv3 alert handshake failure:../ssl/record/rec_layer_s3.c:1586:SSL alert number 40:",
            "Mar  9 10:00:02 mail postfix/smtp[9]: ABCDEF123: to=<u@x.example>, relay=mx.x.example[192.0.2.1]:25, delay=2, delays=0/0/2/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
        ]);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].messages, d[0].deferred, d[0].bounced),
            (1, 0, 0),
            "sent in plaintext"
        );
        assert_eq!(d[0].errors.len(), 2);
    }

    #[test]
    fn greylisting_is_not_a_tls_failure_and_junk_is_counted() {
        let (d, c) = read(&[
            "Mar  9 10:00:01 mail postfix/smtp[9]: ABCDEF123: to=<u@x.example>, relay=mx.x.example[192.0.2.1]:25, delay=2, delays=0/0/2/0, dsn=4.7.1, status=deferred (host mx.x.example[192.0.2.1] said: 450 4.7.1 Greylisted, try again later)",
            "this is not a log line",
            "Mar  9 10:00:01 mail postfix/qmgr[8]: ABCDEF123: from=<a@here.example>, size=300, nrcpt=1 (queue active)",
            "",
        ]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.not_understood, 1);
        assert_eq!(c.lines, 4);
    }

    #[test]
    fn a_classic_date_after_now_is_from_last_year() {
        let (d, _) = read(&[
            "Dec 31 23:59:59 mail postfix/smtp[1]: ABCDEF123: to=<u@x.example>, relay=mx.x.example[192.0.2.1]:25, delay=2, delays=0/0/2/0, dsn=4.7.5, status=bounced (Cannot start TLS: handshake failure)",
        ]);
        assert_eq!(d[0].first_seen.as_deref(), Some("2023-12-31T23:59:59Z"));
        assert_eq!(d[0].bounced, 1);
    }

    #[test]
    fn find_hop_reads_names_ips_and_ports() {
        assert_eq!(
            find_hop("relay=mx.a.example[192.0.2.1]:2525, delay"),
            Some(Hop {
                host: "mx.a.example".into(),
                ip: "192.0.2.1".parse().unwrap(),
                port: Some(2525)
            })
        );
        assert_eq!(find_hop("by host mx.b.example[::1])").map(|h| h.port), Some(None));
        assert_eq!(find_hop("postfix/smtp[123]: x"), None);
    }
}
