//! TCP reassembly for one direction of a connection: segments in capture
//! order in, the byte stream in sequence order out.
//!
//! Retransmitted and overlapping bytes are delivered once (the first copy
//! wins, as most stacks keep it); out-of-order segments wait in a buffer of
//! at most [`MAX_PENDING`] bytes. A hole that can never be filled — the
//! peer acknowledged bytes the capture does not hold, the buffer overflowed,
//! or the frame was cut by the snap length — is a gap: delivery stops there
//! and the connection is reported incomplete. Positions are 64-bit stream
//! offsets, so sequence number wrap-around needs no special case.

use std::collections::BTreeMap;

/// Out-of-order bytes held per direction. A handshake flight is a few KiB;
/// a larger hole means the capture lost a segment for good.
pub const MAX_PENDING: usize = 256 * 1024;
/// A segment further than this from the expected sequence number is not
/// part of this stream (a stray or corrupt segment).
const MAX_SEQ_DISTANCE: i64 = 1 << 30;

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Stream {
    /// The sequence number of the next in-order byte, once known.
    next: Option<u32>,
    /// In-order bytes delivered so far.
    delivered: u64,
    /// Out-of-order bytes by stream offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Stream offset of the FIN, once seen.
    fin_at: Option<u64>,
    /// The SYN was seen, so the stream starts at its beginning.
    pub syn_seen: bool,
    /// Initial sequence number from the SYN.
    pub isn: Option<u32>,
    /// Bytes are missing; nothing more is delivered.
    pub gap: bool,
    /// The caller needs no more bytes: nothing is delivered or held.
    ignored: bool,
}

impl Stream {
    /// Whether bytes or a SYN of this direction were seen.
    pub fn has_state(&self) -> bool {
        self.next.is_some() || self.isn.is_some()
    }

    /// A SYN (or SYN-ACK) from this direction.
    pub fn syn(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq.wrapping_add(1));
            self.isn = Some(seq);
            self.syn_seen = true;
        }
    }

    /// Whether the stream's start was seen (else the capture began mid-stream).
    pub fn started_at_syn(&self) -> bool {
        self.syn_seen
    }

    /// Bytes of the stream seen (delivered, or counted once ignored).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Bytes held out of order.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Stops delivering and frees held bytes (FIN and gaps still count).
    pub fn ignore(&mut self) {
        self.ignored = true;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// The offset of `seq` in the stream; `None` before the stream's start
    /// is known or when it is implausibly far away.
    fn position(&self, seq: u32) -> Option<i64> {
        let next = self.next?;
        let rel = i64::from(seq.wrapping_sub(next) as i32);
        if rel.abs() > MAX_SEQ_DISTANCE {
            return None;
        }
        Some(self.delivered as i64 + rel)
    }

    /// A segment's payload starting at sequence number `seq`. In-order
    /// bytes (and any buffered bytes they make contiguous) go to `deliver`.
    /// Returns whether this segment revealed a gap.
    pub fn data(&mut self, seq: u32, payload: &[u8], deliver: &mut impl FnMut(&[u8])) -> bool {
        if payload.is_empty() {
            return false;
        }
        if self.next.is_none() {
            // The capture started after this direction's SYN.
            self.next = Some(seq);
        }
        if self.gap {
            return false;
        }
        let Some(pos) = self.position(seq) else {
            return false;
        };
        let delivered = self.delivered as i64;
        let end = pos + payload.len() as i64;
        if end <= delivered {
            return false; // a retransmission of bytes already delivered
        }
        if self.ignored {
            // Only counted: the stream's length is all that is still wanted.
            self.advance(usize::try_from(end - delivered).unwrap_or(0));
            return false;
        }
        if pos <= delivered {
            let skip = usize::try_from(delivered - pos).unwrap_or(0);
            let fresh = payload.get(skip..).unwrap_or(&[]);
            self.advance(fresh.len());
            deliver(fresh);
            self.drain(deliver);
            return false;
        }
        // Out of order: hold it until the hole before it is filled.
        if self.pending_bytes + payload.len() > MAX_PENDING {
            self.gap = true;
            self.pending.clear();
            self.pending_bytes = 0;
            return true;
        }
        let key = pos as u64;
        match self.pending.get(&key) {
            Some(held) if held.len() >= payload.len() => {}
            _ => {
                if let Some(old) = self.pending.insert(key, payload.to_vec()) {
                    self.pending_bytes -= old.len();
                }
                self.pending_bytes += payload.len();
            }
        }
        false
    }

    fn advance(&mut self, n: usize) {
        self.delivered += n as u64;
        self.next = self.next.map(|s| s.wrapping_add(n as u32));
    }

    /// Delivers held bytes that are now in order.
    fn drain(&mut self, deliver: &mut impl FnMut(&[u8])) {
        while let Some((&pos, _)) = self.pending.first_key_value() {
            if pos > self.delivered {
                break;
            }
            let Some(bytes) = self.pending.remove(&pos) else { break };
            self.pending_bytes -= bytes.len();
            let skip = usize::try_from(self.delivered - pos).unwrap_or(usize::MAX);
            if let Some(fresh) = bytes.get(skip..).filter(|f| !f.is_empty()) {
                self.advance(fresh.len());
                deliver(fresh);
            }
        }
    }

    /// A FIN at sequence number `seq` (after `len` payload bytes of its segment).
    pub fn fin(&mut self, seq: u32, len: usize) {
        if self.next.is_none() {
            self.next = Some(seq);
        }
        if let Some(pos) = self.position(seq.wrapping_add(len as u32)) {
            if pos >= 0 && self.fin_at.is_none() {
                self.fin_at = Some(pos as u64);
            }
        }
    }

    /// The peer acknowledged everything before `ack`: if that is past what
    /// the capture holds, the missing bytes were received but not captured.
    /// Returns whether this revealed a gap.
    pub fn peer_ack(&mut self, ack: u32) -> bool {
        if self.gap || self.ignored {
            return false;
        }
        let Some(pos) = self.position(ack) else { return false };
        // A FIN takes one sequence number.
        let fin = u64::from(self.fin_at.is_some_and(|f| f <= self.delivered));
        let limit = (self.delivered + fin) as i64;
        if pos > limit {
            self.gap = true;
            self.pending.clear();
            self.pending_bytes = 0;
            return true;
        }
        false
    }

    /// Marks the stream as missing bytes (a frame cut by the snap length).
    pub fn mark_gap(&mut self) {
        self.gap = true;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// Whether every byte before the FIN was delivered.
    pub fn complete_to_fin(&self) -> bool {
        self.fin_at.is_some_and(|f| f <= self.delivered) || (self.ignored && self.fin_at.is_some())
    }

    /// Whether a FIN was seen.
    pub fn fin_seen(&self) -> bool {
        self.fin_at.is_some()
    }

    /// Whether bytes are known to be missing: a gap, held bytes that never
    /// became contiguous, or a FIN beyond the delivered bytes.
    pub fn missing(&self) -> bool {
        !self.ignored && (self.gap || self.pending_bytes > 0 || self.fin_at.is_some_and(|f| f > self.delivered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: &mut Stream, segs: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, data) in segs {
            stream.data(*seq, data, &mut |b: &[u8]| out.extend_from_slice(b));
        }
        out
    }

    #[test]
    fn reorders_and_drops_retransmissions() {
        let mut s = Stream::default();
        s.syn(99);
        let out = run(
            &mut s,
            &[
                (106, b"world"),
                (100, b"hello "),
                (100, b"hello "),
                (103, b"lo wo"),
                (111, b"!"),
            ],
        );
        assert_eq!(out, b"hello world!");
        assert!(!s.missing());
    }

    #[test]
    fn overlapping_segments_deliver_each_byte_once() {
        let mut s = Stream::default();
        s.syn(0);
        let out = run(&mut s, &[(5, b"efgh"), (3, b"cdef"), (1, b"ab"), (7, b"ghij")]);
        assert_eq!(out, b"abcdefghij");
    }

    #[test]
    fn survives_sequence_wrap_around() {
        let mut s = Stream::default();
        s.syn(u32::MAX - 2);
        let out = run(&mut s, &[(u32::MAX - 1, b"ab"), (0, b"cd"), (2, b"e")]);
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn a_mid_stream_start_takes_the_first_segment_as_the_origin() {
        let mut s = Stream::default();
        let out = run(&mut s, &[(5000, b"xy"), (5002, b"z")]);
        assert_eq!(out, b"xyz");
        assert!(!s.started_at_syn());
    }

    #[test]
    fn an_acknowledged_hole_is_a_gap() {
        let mut s = Stream::default();
        s.syn(0);
        run(&mut s, &[(1, b"ab"), (6, b"fg")]);
        assert!(s.missing());
        assert!(!s.peer_ack(3));
        assert!(s.peer_ack(8));
        assert!(s.gap);
        // Nothing after a gap is delivered.
        assert!(run(&mut s, &[(3, b"cde")]).is_empty());
    }

    #[test]
    fn a_fin_is_acknowledged_without_a_gap() {
        let mut s = Stream::default();
        s.syn(0);
        run(&mut s, &[(1, b"abc")]);
        s.fin(4, 0);
        assert!(!s.peer_ack(5));
        assert!(s.complete_to_fin());
    }

    #[test]
    fn the_pending_buffer_is_capped() {
        let mut s = Stream::default();
        s.syn(0);
        let big = vec![0u8; 64 * 1024];
        let mut gap = false;
        for i in 0..8u32 {
            gap |= s.data(10 + i * 65536, &big, &mut |_| {});
        }
        assert!(gap && s.gap);
        assert_eq!(s.pending_bytes(), 0);
    }
}
