//! Reading capture files: pcap (micro- and nanosecond, either byte order,
//! the "modified" variant) and pcapng (several sections and interfaces,
//! per-interface timestamp resolution and offset), recognised by their
//! first bytes, never by the file name.
//!
//! The file is streamed through pcap-parser's circular-buffer readers: memory
//! is the read buffer (grown only for a block larger than it, up to
//! [`MAX_BLOCK`]), whatever the file size. A damaged or truncated file is not
//! an error once its header was read: the packets before the damage are
//! delivered and the damage becomes a warning.

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, Linktype, PcapBlockOwned, PcapError, PcapNGReader};
use std::io::Read;

/// The read buffer to start with: a few ordinary blocks.
const INITIAL_BUFFER: usize = 256 * 1024;
/// Bytes read before choosing a reader: more than any file header.
const PREFIX: usize = 64 * 1024;
/// A block (one packet plus pcapng framing) larger than this is refused:
/// the largest snap length tools write is 256 KiB, so 16 MiB only admits
/// damaged files, which are then reported instead of exhausting memory.
pub const MAX_BLOCK: usize = 16 * 1024 * 1024;
/// Interfaces kept per pcapng section; more only come from damaged files.
const MAX_INTERFACES: usize = 4096;

/// A capture timestamp: seconds and nanoseconds since the Unix epoch, and
/// whether the capture has nanosecond precision (for printing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
    pub nano_precision: bool,
}

impl Timestamp {
    /// Seconds as a float, for durations in messages.
    pub fn as_f64(self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }

    /// Seconds from `earlier` to `self` (never negative).
    pub fn since(self, earlier: Timestamp) -> f64 {
        (self.as_f64() - earlier.as_f64()).max(0.0)
    }

    /// RFC 3339 UTC with the capture's precision (6 or 9 fraction digits).
    pub fn rfc3339(self) -> String {
        let Ok(t) = time::OffsetDateTime::from_unix_timestamp(self.secs) else {
            return format!("@{}.{:09}", self.secs, self.nanos);
        };
        let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
        let (h, mi, s) = (t.hour(), t.minute(), t.second());
        if self.nano_precision {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z", self.nanos)
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z", self.nanos / 1000)
        }
    }
}

/// One captured frame.
#[derive(Debug)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub linktype: Linktype,
    pub data: &'a [u8],
    /// The frame was cut by the snap length.
    pub truncated: bool,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("not a pcap or pcapng capture (it starts with {0})")]
    NotACapture(String),
    #[error("the capture header is damaged: {0}")]
    BadHeader(String),
}

/// What reading found besides packets.
#[derive(Debug, Default)]
pub struct ReadSummary {
    pub packets: u64,
    pub bytes: u64,
    /// Damage, truncation and skipped content, one line each.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pcap,
    PcapNg,
}

/// Recognises the format from the first four bytes.
fn format_of(magic: &[u8]) -> Option<Format> {
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => Some(Format::PcapNg),
        // Micro, nano and "modified" pcap, each in both byte orders.
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x34, 0xcd, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xcd, 0x34] => Some(Format::Pcap),
        _ => None,
    }
}

/// Reads the whole capture from `input`, calling `on_packet` for each frame
/// in file order.
pub fn read_capture<R: Read + Send>(
    mut input: R,
    mut on_packet: impl FnMut(&Packet<'_>),
) -> Result<ReadSummary, CaptureError> {
    // The first bytes decide the format. They are read up front (a short
    // read from a pipe is retried) because the readers parse the file
    // header from their first read alone.
    let mut head = vec![0u8; PREFIX];
    let mut got = 0;
    while got < head.len() {
        let Some(space) = head.get_mut(got..) else { break };
        match input.read(space) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CaptureError::Io(e)),
        }
    }
    head.truncate(got);
    if head.is_empty() {
        return Err(CaptureError::Empty);
    }
    let Some(format) = head.get(..4).and_then(format_of) else {
        return Err(CaptureError::NotACapture(describe_magic(
            head.get(..4).unwrap_or(&head),
        )));
    };
    // A small file gets a small buffer; it grows if a block needs more.
    let capacity = if got < PREFIX {
        (got + 1).next_power_of_two().clamp(4096, INITIAL_BUFFER)
    } else {
        INITIAL_BUFFER
    };
    let input = std::io::Cursor::new(head).chain(input);
    let mut summary = ReadSummary::default();
    match format {
        Format::Pcap => {
            let reader = LegacyPcapReader::new(capacity, input).map_err(|e| header_error(&e))?;
            drive(reader, capacity, &mut summary, &mut on_packet);
        }
        Format::PcapNg => {
            let reader = PcapNGReader::new(capacity, input).map_err(|e| header_error(&e))?;
            drive(reader, capacity, &mut summary, &mut on_packet);
        }
    }
    Ok(summary)
}

fn describe_magic(head: &[u8]) -> String {
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    let text = crate::smtp::printable(head);
    format!("{} \"{text}\"", hex.join(" "))
}

fn header_error(e: &PcapError<&[u8]>) -> CaptureError {
    match e {
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
            CaptureError::BadHeader("the file ends inside the header".to_owned())
        }
        PcapError::ReadError => CaptureError::BadHeader("read error".to_owned()),
        other => CaptureError::BadHeader(short_error(other)),
    }
}

fn short_error(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) => format!("malformed block ({kind:?})"),
        PcapError::OwnedNomError(_, kind) => format!("malformed block ({kind:?})"),
        PcapError::HeaderNotRecognized => "header not recognised".to_owned(),
        PcapError::BufferTooSmall => "block too large".to_owned(),
        PcapError::UnexpectedEof => "unexpected end of file".to_owned(),
        PcapError::Incomplete(_) => "incomplete block".to_owned(),
        PcapError::ReadError => "read error".to_owned(),
        PcapError::Eof => "end of file".to_owned(),
    }
}

/// One pcapng interface as its description block says.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    offset_secs: i64,
}

/// Per-file reading state across blocks.
struct State {
    /// Legacy pcap: the one link type and precision.
    legacy: Option<(Linktype, bool)>,
    /// pcapng: the interfaces of the current section.
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
    bad_interface_warned: bool,
}

fn drive<R: PcapReaderIterator>(
    mut reader: R,
    mut capacity: usize,
    summary: &mut ReadSummary,
    on_packet: &mut impl FnMut(&Packet<'_>),
) {
    let mut st = State {
        legacy: None,
        interfaces: Vec::new(),
        last_ts: Timestamp::default(),
        bad_interface_warned: false,
    };
    // Guards against a reader that reports "incomplete" without progress.
    let mut stalled = 0u32;
    loop {
        let consumed = reader.consumed();
        match reader.next() {
            Ok((offset, block)) => {
                stalled = 0;
                block_of(&block, &mut st, summary, on_packet);
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                let before = reader.data().len();
                if reader.refill().is_err() {
                    stalled = u32::MAX;
                } else if reader.data().len() == before {
                    stalled += 1;
                } else {
                    stalled = 0;
                }
                if stalled > 3 {
                    summary.warnings.push(format!(
                        "the capture is truncated: the block at byte {consumed} is cut short; packets after it are missing"
                    ));
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) => {
                if capacity >= MAX_BLOCK {
                    summary.warnings.push(format!(
                        "a block at byte {consumed} is larger than {} MiB: the file is damaged; reading stopped there",
                        MAX_BLOCK >> 20
                    ));
                    break;
                }
                capacity = (capacity * 2).min(MAX_BLOCK);
                if !reader.grow(capacity) || reader.refill().is_err() {
                    summary.warnings.push(format!(
                        "a block at byte {consumed} could not be buffered; reading stopped there"
                    ));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                summary.warnings.push(format!(
                    "the capture is truncated: the last block (at byte {consumed}) is cut short"
                ));
                break;
            }
            Err(e) => {
                summary.warnings.push(format!(
                    "the capture is damaged at byte {consumed}: {}; packets after it are not read",
                    short_error(&e)
                ));
                break;
            }
        }
    }
}

fn block_of(
    block: &PcapBlockOwned<'_>,
    st: &mut State,
    summary: &mut ReadSummary,
    on_packet: &mut impl FnMut(&Packet<'_>),
) {
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            st.legacy = Some((h.network, h.is_nanosecond_precision()));
        }
        PcapBlockOwned::Legacy(b) => {
            let (linktype, nano) = st.legacy.unwrap_or((Linktype::ETHERNET, false));
            let nanos = if nano {
                b.ts_usec.min(999_999_999)
            } else {
                b.ts_usec.min(999_999).saturating_mul(1000)
            };
            let ts = Timestamp {
                secs: i64::from(b.ts_sec),
                nanos,
                nano_precision: nano,
            };
            let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
            emit(
                &Packet {
                    ts,
                    linktype,
                    data,
                    truncated: b.origlen > b.caplen,
                },
                st,
                summary,
                on_packet,
            );
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => st.interfaces.clear(),
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            if st.interfaces.len() < MAX_INTERFACES {
                st.interfaces.push(Interface {
                    linktype: idb.linktype,
                    // An invalid resolution falls back to the default, microseconds.
                    resolution: ts_resolution(idb.if_tsresol),
                    offset_secs: idb.ts_offset(),
                });
            }
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let Some(iface) = st.interfaces.get(epb.if_id as usize).copied() else {
                if !st.bad_interface_warned {
                    st.bad_interface_warned = true;
                    summary.warnings.push(format!(
                        "packets name interface {} which the section does not describe; they are skipped",
                        epb.if_id
                    ));
                }
                return;
            };
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let secs = units / iface.resolution;
            let frac = units % iface.resolution;
            let nanos = u128::from(frac) * 1_000_000_000 / u128::from(iface.resolution);
            let ts = Timestamp {
                secs: i64::try_from(secs)
                    .unwrap_or(i64::MAX)
                    .saturating_add(iface.offset_secs),
                nanos: u32::try_from(nanos).unwrap_or(0),
                nano_precision: iface.resolution > 1_000_000,
            };
            emit(
                &Packet {
                    ts,
                    linktype: iface.linktype,
                    data: epb.packet_data(),
                    truncated: epb.origlen > epb.caplen,
                },
                st,
                summary,
                on_packet,
            );
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            // Simple packets carry no timestamp and belong to the first interface.
            let Some(iface) = st.interfaces.first().copied() else {
                return;
            };
            let ts = st.last_ts;
            emit(
                &Packet {
                    ts,
                    linktype: iface.linktype,
                    data: spb.packet_data(),
                    truncated: spb.origlen as usize > spb.packet_data().len(),
                },
                st,
                summary,
                on_packet,
            );
        }
        PcapBlockOwned::NG(_) => {}
    }
}

fn emit(p: &Packet<'_>, st: &mut State, summary: &mut ReadSummary, on_packet: &mut impl FnMut(&Packet<'_>)) {
    st.last_ts = p.ts;
    summary.packets += 1;
    summary.bytes += p.data.len() as u64;
    on_packet(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_formats_by_magic() {
        assert_eq!(format_of(&[0x0a, 0x0d, 0x0d, 0x0a]), Some(Format::PcapNg));
        assert_eq!(format_of(&[0xd4, 0xc3, 0xb2, 0xa1]), Some(Format::Pcap));
        assert_eq!(format_of(&[0x4d, 0x3c, 0xb2, 0xa1]), Some(Format::Pcap));
        assert_eq!(format_of(b"GIF8"), None);
    }

    #[test]
    fn refuses_non_captures_and_empty_files() {
        let e = read_capture(&b"hello world"[..], |_| {}).unwrap_err();
        assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
        assert!(matches!(read_capture(&b""[..], |_| {}), Err(CaptureError::Empty)));
        assert!(matches!(
            read_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0][..], |_| {}),
            Err(CaptureError::BadHeader(_))
        ));
    }

    #[test]
    fn timestamps_print_with_their_precision() {
        let t = Timestamp {
            secs: 1_700_000_000,
            nanos: 123_456_789,
            nano_precision: false,
        };
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.123456Z");
        let t = Timestamp {
            nano_precision: true,
            ..t
        };
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.123456789Z");
    }
}

/// Units per second of a pcapng `if_tsresol` (RFC draft pcapng §4.2):
/// 10^n, or 2^n when the high bit is set. (pcap-parser 0.17 rejects every
/// binary resolution.) An invalid one falls back to microseconds.
fn ts_resolution(tsresol: u8) -> u64 {
    let n = u32::from(tsresol & 0x7f);
    let units = if tsresol & 0x80 != 0 {
        1u64.checked_shl(n).filter(|_| n < 64)
    } else {
        10u64.checked_pow(n)
    };
    units.filter(|u| *u > 0).unwrap_or(1_000_000)
}

#[cfg(test)]
mod resolution_tests {
    #[test]
    fn decimal_and_binary_resolutions() {
        assert_eq!(super::ts_resolution(6), 1_000_000);
        assert_eq!(super::ts_resolution(9), 1_000_000_000);
        assert_eq!(super::ts_resolution(0x80 | 30), 1 << 30);
        assert_eq!(super::ts_resolution(0x80 | 70), 1_000_000);
        assert_eq!(super::ts_resolution(25), 1_000_000);
    }
}
