//! The analysis on several cores: the reading thread decodes each frame's
//! headers and deals its TCP segment to one of `workers` flow tables by a
//! hash of the connection's address pair, so a connection lives in one
//! worker from its first segment to its record. Each worker reassembles,
//! analyses and renders its records; the reading thread merges them back
//! into the order of [`super::analyse`] (connections by start).
//!
//! Memory stays flat: segments travel in batches of at most
//! [`BATCH_BYTES`], a worker's queue holds [`QUEUE`] batches (the reader
//! waits when it is full), emptied batches come back to be refilled, and a
//! record waits only until no worker can still produce an earlier one —
//! each worker says, with every batch it finishes, the start of its
//! earliest open connection ([`Tracker::watermark`]).

use super::capture::{self, Timestamp};
use super::flow::{self, Counters, OrderKey, Tracker};
use super::packet::{self, Flags, Segment};
use super::report::ConnectionRecord;
use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::net::SocketAddr;
use std::sync::mpsc;

/// Payload bytes per batch: large enough that the hand-off costs little
/// per segment, small enough to keep the queues' memory small.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Segments per batch at most (handshake segments are small).
const BATCH_SEGMENTS: usize = 2048;
/// Batches queued per worker.
const QUEUE: usize = 4;

/// Renders one record to the bytes written for it (run in the workers).
pub type Render<'a> = dyn Fn(&mut ConnectionRecord) -> Vec<u8> + Sync + 'a;

/// One segment's headers; its payload is `bytes[start..start + len]` of its batch.
#[derive(Debug, Clone, Copy)]
struct Meta {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: Flags,
    truncated: bool,
    ts: Timestamp,
    start: usize,
    len: usize,
}

/// Segments for one worker, and the capture time when they were dealt.
#[derive(Debug, Default)]
struct Batch {
    segs: Vec<Meta>,
    bytes: Vec<u8>,
    now: Timestamp,
}

impl Batch {
    fn clear(&mut self) {
        self.segs.clear();
        self.bytes.clear();
    }
}

/// What a worker sends back after each batch.
struct Report {
    shard: usize,
    /// Rendered records, in this worker's start order.
    records: Vec<(OrderKey, Vec<u8>)>,
    /// No later record of this worker sorts before this.
    watermark: Option<OrderKey>,
    /// The emptied batch, to be filled again.
    batch: Option<Batch>,
    /// Set in the last report, after the table closed.
    counters: Option<Counters>,
}

/// Where merged records stand: by start, then by worker and arrival.
type MergeKey = (Timestamp, u64, usize);

/// Analyses one capture on `workers` threads (at least 1), rendering each
/// record with `render` and passing the bytes to `out` in the order of
/// [`super::analyse`].
pub fn analyse<R: std::io::Read + Send>(
    input: R,
    opts: &super::Options,
    workers: usize,
    render: &Render<'_>,
    out: &mut dyn FnMut(&[u8]),
) -> Result<(capture::ReadSummary, Counters), capture::CaptureError> {
    let workers = workers.max(1);
    let hasher = foldhash::fast::FixedState::default();
    std::thread::scope(|scope| {
        let (report_tx, report_rx) = mpsc::channel::<Report>();
        let mut senders = Vec::with_capacity(workers);
        for shard in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
            senders.push(tx);
            let report_tx = report_tx.clone();
            let detail = (opts.keep_hellos, opts.summary);
            scope.spawn(move || work(shard, workers, detail, render, &rx, &report_tx));
        }
        drop(report_tx);
        let mut merge = Merge::new(workers);
        let mut batches: Vec<Batch> = (0..workers).map(|_| Batch::default()).collect();
        let mut spare: Vec<Batch> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut pending_segs = 0usize;
        let mut counters = Counters::default();
        let mut unsupported: Vec<i32> = Vec::new();
        let mut now = Timestamp::default();
        let filter = &opts.filter;
        let mut flush = |batches: &mut Vec<Batch>, spare: &mut Vec<Batch>, now: Timestamp, merge: &mut Merge| {
            for (shard, tx) in senders.iter().enumerate() {
                let fresh = spare.pop().unwrap_or_default();
                let mut b = std::mem::replace(&mut batches[shard], fresh);
                b.now = now;
                // A worker gone is a worker that panicked: the scope says so.
                let _ = tx.send(b);
            }
            for r in report_rx.try_iter() {
                merge.take(r, spare, out);
            }
        };
        let summary = capture::read_capture(input, |p| match packet::decode(p.linktype, p.data) {
            Ok(seg) => {
                if p.ts > now {
                    now = p.ts;
                }
                if !filter.admits(seg.src, seg.dst) {
                    return;
                }
                let shard = shard_of(&hasher, &seg, workers);
                let b = &mut batches[shard];
                b.segs.push(Meta {
                    src: seg.src,
                    dst: seg.dst,
                    seq: seg.seq,
                    ack: seg.ack,
                    flags: seg.flags,
                    truncated: seg.truncated,
                    ts: p.ts,
                    start: b.bytes.len(),
                    len: seg.payload.len(),
                });
                b.bytes.extend_from_slice(seg.payload);
                pending_bytes += seg.payload.len();
                pending_segs += 1;
                if pending_bytes >= BATCH_BYTES || pending_segs >= BATCH_SEGMENTS {
                    flush(&mut batches, &mut spare, now, &mut merge);
                    pending_bytes = 0;
                    pending_segs = 0;
                }
            }
            Err(packet::Skip::LinkType(l)) => {
                if !unsupported.contains(&l) && unsupported.len() < 16 {
                    unsupported.push(l);
                }
            }
            Err(packet::Skip::NotTcp) => counters.not_tcp += 1,
            Err(packet::Skip::Fragment) => counters.fragments += 1,
            Err(packet::Skip::Malformed) => counters.malformed += 1,
        });
        flush(&mut batches, &mut spare, now, &mut merge);
        // Closing the queues closes the tables; the last reports follow.
        drop(senders);
        for r in report_rx.iter() {
            merge.take(r, &mut spare, out);
        }
        merge.drain(out);
        for c in &merge.counters {
            add(&mut counters, c);
        }
        let mut summary = summary?;
        super::warn_about(&mut summary, &counters, &unsupported);
        Ok((summary, counters))
    })
}

fn add(total: &mut Counters, c: &Counters) {
    total.segments += c.segments;
    total.flows += c.flows;
    total.evicted += c.evicted;
    total.timed_out += c.timed_out;
    total.not_tcp += c.not_tcp;
    total.fragments += c.fragments;
    total.malformed += c.malformed;
}

/// The worker a segment's connection belongs to: a fixed hash of its
/// address pair, the same in both directions (and from run to run).
fn shard_of(hasher: &foldhash::fast::FixedState, seg: &Segment<'_>, workers: usize) -> usize {
    if workers == 1 {
        return 0;
    }
    let key = flow::key_of(seg.src, seg.dst);
    (hasher.hash_one(key) % workers as u64) as usize
}

/// One worker: its own flow table over the segments dealt to it.
fn work(
    shard: usize,
    workers: usize,
    (keep_hellos, summary): (bool, bool),
    render: &Render<'_>,
    rx: &mpsc::Receiver<Batch>,
    tx: &mpsc::Sender<Report>,
) {
    let records: std::cell::RefCell<Vec<(OrderKey, Vec<u8>)>> = std::cell::RefCell::default();
    let mut emit = |key: OrderKey, mut r: ConnectionRecord| {
        let bytes = render(&mut r);
        records.borrow_mut().push((key, bytes));
    };
    let mut tracker = Tracker::new(flow::Filter::default(), keep_hellos, &mut emit)
        .with_shares(workers)
        .summary_only(summary);
    for mut batch in rx.iter() {
        for m in &batch.segs {
            let payload = batch.bytes.get(m.start..m.start + m.len).unwrap_or(&[]);
            let seg = Segment {
                src: m.src,
                dst: m.dst,
                seq: m.seq,
                ack: m.ack,
                flags: m.flags,
                payload,
                truncated: m.truncated,
            };
            tracker.segment(&seg, m.ts);
        }
        tracker.advance(batch.now);
        // Connections not yet seen start no earlier than the capture's now.
        let now_key = (batch.now, 0);
        let watermark = Some(tracker.watermark().map_or(now_key, |w| w.min(now_key)));
        batch.clear();
        let _ = tx.send(Report {
            shard,
            records: std::mem::take(&mut *records.borrow_mut()),
            watermark,
            batch: Some(batch),
            counters: None,
        });
    }
    let counters = tracker.close();
    let _ = tx.send(Report {
        shard,
        records: records.take(),
        watermark: None,
        batch: None,
        counters: Some(counters),
    });
}

/// The records of all workers, put back in start order.
struct Merge {
    waiting: BTreeMap<MergeKey, Vec<u8>>,
    /// Each worker's latest watermark; `None` once it has finished.
    marks: Vec<Option<OrderKey>>,
    finished: Vec<bool>,
    counters: Vec<Counters>,
}

impl Merge {
    fn new(workers: usize) -> Self {
        Self {
            waiting: BTreeMap::new(),
            marks: vec![Some((Timestamp::default(), 0)); workers],
            finished: vec![false; workers],
            counters: Vec::new(),
        }
    }

    fn take(&mut self, r: Report, spare: &mut Vec<Batch>, out: &mut dyn FnMut(&[u8])) {
        for (key, bytes) in r.records {
            self.waiting.insert((key.0, key.1, r.shard), bytes);
        }
        if let Some(b) = r.batch {
            spare.push(b);
        }
        if let Some(c) = r.counters {
            self.counters.push(c);
            self.finished[r.shard] = true;
            self.marks[r.shard] = None;
        } else {
            self.marks[r.shard] = r.watermark;
        }
        self.release(out);
    }

    /// Writes every record no worker can still precede.
    fn release(&mut self, out: &mut dyn FnMut(&[u8])) {
        let bound = self
            .marks
            .iter()
            .zip(&self.finished)
            .filter(|(_, done)| !**done)
            .filter_map(|(m, _)| *m)
            .min();
        while let Some(&(ts, id, _)) = self.waiting.keys().next() {
            let blocked = bound.is_some_and(|b| (ts, id) >= b);
            if blocked && self.waiting.len() <= flow::MAX_WAITING {
                break;
            }
            if let Some((_, bytes)) = self.waiting.pop_first() {
                out(&bytes);
            }
        }
    }

    fn drain(&mut self, out: &mut dyn FnMut(&[u8])) {
        while let Some((_, bytes)) = self.waiting.pop_first() {
            out(&bytes);
        }
    }
}
