//! The flow table: TCP segments in capture order, one [`Conn`] per
//! connection, finished connections out — in the order they started.
//!
//! Memory does not grow with the file: a connection is reported and freed
//! when both FINs are in, at a RST, after [`IDLE_TIMEOUT`] of capture time
//! without a packet, or when the table is full ([`MAX_FLOWS`]) or holds more
//! than [`MAX_HELD_BYTES`] for analysis (the least recently active go
//! first, reported with a warning). Finished records wait only until every
//! connection that started before them has finished too, so that output is
//! in start order, and at most [`MAX_WAITING`] of them wait.

use super::capture::Timestamp;
use super::conn::{Conn, Dir, How};
use super::packet::Segment;
use super::report::ConnectionRecord;
use super::tcp::Stream;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

/// Connections tracked at once.
pub const MAX_FLOWS: usize = 20_000;
/// Bytes held for analysis over all tracked connections (out-of-order
/// segments and handshake bytes not yet decoded).
pub const MAX_HELD_BYTES: usize = 512 * 1024 * 1024;
/// A connection with no packet for this long (capture time) is reported.
pub const IDLE_TIMEOUT: i64 = 300;
/// Finished records waiting for earlier-started connections.
pub const MAX_WAITING: usize = 10_000;
/// How often (capture seconds) idle connections are looked for.
const SWEEP_EVERY: i64 = 10;

/// Which connections to report.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Filter {
    pub fn admits(&self, a: SocketAddr, b: SocketAddr) -> bool {
        self.host.is_none_or(|h| a.ip() == h || b.ip() == h) && self.port.is_none_or(|p| a.port() == p || b.port() == p)
    }
}

type Key = (SocketAddr, SocketAddr);

/// Where a connection's record goes in the output: its start, then the
/// order connections were seen in.
pub type OrderKey = (Timestamp, u64);

/// The flow table's hash: foldhash, seeded per process. SipHash showed as
/// 6% of a capture's analysis; the table is capped at [`MAX_FLOWS`], which
/// bounds what a crafted capture can make collisions cost.
type FlowHash = foldhash::fast::RandomState;

/// The connection's key, the same whichever side sent the segment.
pub fn key_of(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

struct Flow {
    id: u64,
    started: Timestamp,
    last: Timestamp,
    /// Streams indexed by sender: 0 is `key.0`, 1 is `key.1`.
    streams: [Stream; 2],
    /// Index of the client's stream, once known.
    client: Option<usize>,
    /// Boxed: a connection's state is large and flows move in the table.
    conn: Option<Box<Conn>>,
    /// Bytes counted against the global budget.
    held: usize,
    fin: [bool; 2],
}

/// Counters for the end-of-file summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub segments: u64,
    pub flows: u64,
    pub evicted: u64,
    pub timed_out: u64,
    pub not_tcp: u64,
    pub fragments: u64,
    pub malformed: u64,
}

/// The table and its output.
pub struct Tracker<'o> {
    filter: Filter,
    flows: HashMap<Key, Flow, FlowHash>,
    /// Tracked connections by start, to know when a finished record may go out.
    active: BTreeSet<(Timestamp, u64)>,
    waiting: BTreeMap<(Timestamp, u64), Box<ConnectionRecord>>,
    next_id: u64,
    held: usize,
    now: Timestamp,
    last_sweep: i64,
    pub counters: Counters,
    keep_hellos: bool,
    /// Records for a one-line summary only (see [`Tracker::summary_only`]).
    summary: bool,
    /// This table's share of [`MAX_FLOWS`] and [`MAX_HELD_BYTES`] (1 of
    /// `shares` tables that split the connections between them).
    shares: usize,
    out: &'o mut dyn FnMut(OrderKey, ConnectionRecord),
}

impl<'o> Tracker<'o> {
    pub fn new(filter: Filter, keep_hellos: bool, out: &'o mut dyn FnMut(OrderKey, ConnectionRecord)) -> Self {
        Self {
            filter,
            flows: HashMap::default(),
            active: BTreeSet::new(),
            waiting: BTreeMap::new(),
            next_id: 0,
            held: 0,
            now: Timestamp::default(),
            last_sweep: i64::MIN,
            counters: Counters::default(),
            keep_hellos,
            summary: false,
            shares: 1,
            out,
        }
    }

    /// A table holding one of `shares` parts of the connections: its caps
    /// are that part of the whole's.
    pub fn with_shares(mut self, shares: usize) -> Self {
        self.shares = shares.max(1);
        self
    }

    /// Records hold only what `--brief` prints: no fingerprints and no
    /// certificate descriptions, which are most of a connection's cost.
    pub fn summary_only(mut self, summary: bool) -> Self {
        self.summary = summary;
        self
    }

    fn max_flows(&self) -> usize {
        (MAX_FLOWS / self.shares).max(1)
    }

    /// Capture time went on (in another table's connections): idle ones
    /// here are reported on time too.
    pub fn advance(&mut self, now: Timestamp) {
        if now > self.now {
            self.now = now;
        }
        if self.now.secs.saturating_sub(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = self.now.secs;
            self.sweep();
        }
    }

    /// No record to come from this table sorts before this key: the
    /// earliest connection still open (records wait for it).
    pub fn watermark(&self) -> Option<OrderKey> {
        self.active.first().copied()
    }

    /// One TCP segment.
    pub fn segment(&mut self, seg: &Segment<'_>, ts: Timestamp) {
        if ts > self.now {
            self.now = ts;
        }
        if !self.filter.admits(seg.src, seg.dst) {
            return;
        }
        self.counters.segments += 1;
        if self.now.secs.saturating_sub(self.last_sweep) >= SWEEP_EVERY {
            self.last_sweep = self.now.secs;
            self.sweep();
        }
        let key = key_of(seg.src, seg.dst);
        let from = usize::from(seg.src != key.0);
        // A new SYN with another initial sequence number: the port pair was reused.
        if seg.flags.syn && !seg.flags.ack {
            let reused = self.flows.get(&key).is_some_and(|f| {
                // Another ISN, or state that did not come from a SYN (a
                // connection captured mid-stream): either way a new one.
                let s = &f.streams[from];
                (s.isn != Some(seg.seq) && s.has_state()) || f.client != Some(from)
            });
            if reused {
                self.finish(key);
            }
        }
        let known = self.flows.contains_key(&key);
        if !known {
            if !seg.flags.syn && seg.payload.is_empty() {
                return; // a stray ACK, FIN or RST of a connection not seen
            }
            if self.flows.len() >= self.max_flows() {
                self.evict((self.max_flows() / 10).max(1));
            }
            self.next_id += 1;
            self.counters.flows += 1;
            self.active.insert((ts, self.next_id));
            self.flows.insert(
                key,
                Flow {
                    id: self.next_id,
                    started: ts,
                    last: ts,
                    streams: [Stream::default(), Stream::default()],
                    client: None,
                    conn: None,
                    held: 0,
                    fin: [false; 2],
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else { return };
        flow.last = ts;
        if seg.flags.syn {
            flow.streams[from].syn(seg.seq);
            if flow.client.is_none() {
                flow.client = Some(if seg.flags.ack { 1 - from } else { from });
            }
        }
        if flow.client.is_none() && !seg.payload.is_empty() {
            flow.client = Some(if sends_first_as_client(seg) { from } else { 1 - from });
        }
        let Some(client) = flow.client else { return };
        let (keep_hellos, summary) = (self.keep_hellos, self.summary);
        let dir = if from == client { Dir::Client } else { Dir::Server };
        let conn = flow.conn.get_or_insert_with(|| {
            let (c, s) = if from == client {
                (seg.src, seg.dst)
            } else {
                (seg.dst, seg.src)
            };
            Box::new(Conn::new(c, s, flow.started, keep_hellos, summary))
        });
        if seg.flags.ack {
            let other = 1 - from;
            if flow.streams[other].peer_ack(seg.ack) {
                conn.gap(if dir == Dir::Client { Dir::Server } else { Dir::Client });
            }
        }
        let data_seq = seg.seq.wrapping_add(u32::from(seg.flags.syn));
        let stream = &mut flow.streams[from];
        let gap = stream.data(data_seq, seg.payload, &mut |bytes: &[u8]| conn.data(dir, bytes, ts));
        if gap {
            conn.gap(dir);
        }
        if seg.truncated && !seg.payload.is_empty() {
            stream.mark_gap();
            conn.gap(dir);
        }
        if !conn.wants(dir) {
            stream.ignore();
        }
        if seg.flags.fin {
            stream.fin(data_seq, seg.payload.len());
            flow.fin[from] = true;
            conn.end(dir, How::Fin, ts);
        }
        if seg.flags.rst {
            conn.end(dir, How::Rst, ts);
        }
        let held_now = conn.held(Dir::Client)
            + conn.held(Dir::Server)
            + flow.streams[0].pending_bytes()
            + flow.streams[1].pending_bytes();
        self.held = self.held.saturating_sub(flow.held) + held_now;
        flow.held = held_now;
        let done = seg.flags.rst
            || (flow.fin[0] && flow.fin[1] && flow.streams[0].complete_to_fin() && flow.streams[1].complete_to_fin());
        if done {
            self.finish(key);
        }
        if self.held > MAX_HELD_BYTES / self.shares {
            self.evict(self.flows.len() / 10 + 1);
        }
    }

    /// Reports and forgets one connection.
    fn finish(&mut self, key: Key) {
        let Some(flow) = self.flows.remove(&key) else { return };
        self.held = self.held.saturating_sub(flow.held);
        self.active.remove(&(flow.started, flow.id));
        let no_syn = flow.client.is_some_and(|c| !flow.streams[c].started_at_syn());
        let (missing, bytes) = match flow.client {
            Some(c) => (
                [flow.streams[c].missing(), flow.streams[1 - c].missing()],
                [flow.streams[c].delivered(), flow.streams[1 - c].delivered()],
            ),
            None => ([false, false], [0, 0]),
        };
        if let Some(conn) = flow.conn {
            if let Some(record) = conn.finish(self.now, no_syn, missing, bytes) {
                self.waiting.insert((flow.started, flow.id), Box::new(record));
            }
        }
        self.release();
    }

    /// Emits the waiting records no still-open earlier connection precedes.
    fn release(&mut self) {
        while let Some((&first, _)) = self.waiting.first_key_value() {
            let blocked = self.active.first().is_some_and(|a| *a < first);
            if blocked && self.waiting.len() <= MAX_WAITING {
                break;
            }
            if let Some((key, record)) = self.waiting.pop_first() {
                (self.out)(key, *record);
            }
        }
    }

    /// Reports connections idle for longer than [`IDLE_TIMEOUT`].
    fn sweep(&mut self) {
        let now = self.now.secs;
        let idle: Vec<Key> = self
            .flows
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.last.secs) > IDLE_TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        self.counters.timed_out += idle.len() as u64;
        for k in idle {
            if let Some(c) = self.flows.get_mut(&k).and_then(|f| f.conn.as_mut()) {
                c.timed_out(IDLE_TIMEOUT);
            }
            self.finish(k);
        }
    }

    /// Reports the `n` least recently active connections early.
    fn evict(&mut self, n: usize) {
        let mut by_age: Vec<(Timestamp, Key)> = self.flows.iter().map(|(k, f)| (f.last, *k)).collect();
        by_age.sort_unstable();
        for (_, k) in by_age.into_iter().take(n) {
            if let Some(f) = self.flows.get_mut(&k) {
                if let Some(c) = f.conn.as_mut() {
                    c.evicted();
                }
            }
            self.counters.evicted += 1;
            self.finish(k);
        }
    }

    /// End of the capture: reports everything still open.
    pub fn close(mut self) -> Counters {
        let keys: Vec<Key> = self.flows.keys().copied().collect();
        for k in keys {
            self.finish(k);
        }
        while let Some((key, record)) = self.waiting.pop_first() {
            (self.out)(key, *record);
        }
        self.counters
    }
}

/// Whether the sender of the first payload seen is the client, for
/// connections whose SYN is not in the capture.
fn sends_first_as_client(seg: &Segment<'_>) -> bool {
    let p = seg.payload;
    match (p.first(), p.get(5), p.get(2)) {
        // A TLS handshake record: ClientHello (1) or a server message.
        (Some(0x16), Some(&t), _) => return t == 1,
        // An SSLv2 header: CLIENT-HELLO (1) or SERVER-HELLO (4).
        (Some(b), _, Some(&t)) if b & 0x80 != 0 && (t == 1 || t == 4) => return t == 1,
        _ => {}
    }
    let digits = p.len() >= 4 && p.iter().take(3).all(u8::is_ascii_digit) && matches!(p.get(3), Some(b' ' | b'-'));
    if digits {
        return false; // an SMTP (or FTP) reply
    }
    if p.first().is_some_and(u8::is_ascii_alphabetic) {
        return true; // a command such as EHLO
    }
    // Otherwise the well-known (lower) port is the server's.
    seg.src.port() > seg.dst.port()
}
