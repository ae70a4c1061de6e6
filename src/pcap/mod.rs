//! `hsscan pcap`: explains the TLS handshakes (and their failures) in
//! pcap/pcapng captures (SPEC §1 item 3, §3b).
//!
//! The pipeline is streaming end to end: [`capture`] reads frames,
//! [`packet`] decodes link, IP and TCP headers, [`flow`] keeps one
//! reassembler ([`tcp`]) and one analyser ([`conn`]) per connection and
//! hands out a [`report::ConnectionRecord`] as each connection ends.
//! [`replay`] sends captured ClientHellos to a live server.

pub mod capture;
pub mod conn;
pub mod fingerprint;
pub mod flow;
pub mod packet;
pub mod replay;
pub mod report;
pub mod shard;
pub mod tcp;

#[cfg(test)]
mod pipeline_tests;

use clap::Args;
use report::ConnectionRecord;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `hsscan pcap`.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// pcap or pcapng files (the format is read from the content).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// One JSON object per connection, one per line (SPEC §3b).
    #[arg(long, conflicts_with = "brief")]
    pub json: bool,
    /// One line per connection.
    #[arg(long)]
    pub brief: bool,
    /// Only connections from or to this IP address.
    #[arg(long, value_name = "IP")]
    pub host: Option<std::net::IpAddr>,
    /// Only connections from or to this TCP port.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Send each captured ClientHello, byte for byte, to this server (through
    /// SMTP STARTTLS when the capture shows it) and say whether the outcome
    /// is the captured one.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub replay: Option<String>,
    /// The EHLO name for --replay through STARTTLS (default: the captured one).
    #[arg(long, value_name = "NAME", requires = "replay")]
    pub ehlo: Option<String>,
    /// Seconds to wait for each reply during --replay.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, requires = "replay")]
    pub timeout: f64,
    /// Threads that analyse connections (default: one per CPU); the
    /// output is the same whatever the number.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// What one capture file yielded.
#[derive(Debug, Default)]
pub struct Analysis {
    pub records: Vec<ConnectionRecord>,
    pub summary: capture::ReadSummary,
    pub counters: flow::Counters,
}

/// Options of one analysis.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub filter: flow::Filter,
    /// Keep each first ClientHello's bytes (for --replay).
    pub keep_hellos: bool,
    /// Records for `--brief` only: no fingerprints or certificate
    /// descriptions (lists of certificates stay empty).
    pub summary: bool,
}

/// Analyses one capture read from `input`, calling `out` for each
/// connection as soon as it (and every connection that started before it)
/// has ended.
pub fn analyse<R: std::io::Read + Send>(
    input: R,
    opts: &Options,
    out: &mut dyn FnMut(ConnectionRecord),
) -> Result<(capture::ReadSummary, flow::Counters), capture::CaptureError> {
    let mut keyed = |_: flow::OrderKey, r: ConnectionRecord| out(r);
    let mut tracker = flow::Tracker::new(opts.filter.clone(), opts.keep_hellos, &mut keyed).summary_only(opts.summary);
    let mut unsupported: Vec<i32> = Vec::new();
    let mut summary = capture::read_capture(input, |p| match packet::decode(p.linktype, p.data) {
        // A frame cut by the snap length shows as an IP packet shorter than
        // its header says (`seg.truncated`), which is what matters.
        Ok(seg) => tracker.segment(&seg, p.ts),
        Err(packet::Skip::LinkType(l)) => {
            if !unsupported.contains(&l) && unsupported.len() < 16 {
                unsupported.push(l);
            }
        }
        Err(packet::Skip::NotTcp) => tracker.counters.not_tcp += 1,
        Err(packet::Skip::Fragment) => tracker.counters.fragments += 1,
        Err(packet::Skip::Malformed) => tracker.counters.malformed += 1,
    })?;
    let counters = tracker.close();
    warn_about(&mut summary, &counters, &unsupported);
    Ok((summary, counters))
}

/// The capture-wide warnings: frames not decoded, connections cut short.
fn warn_about(summary: &mut capture::ReadSummary, counters: &flow::Counters, unsupported: &[i32]) {
    for l in unsupported {
        summary.warnings.push(format!(
            "frames of link type {l} are not decoded (supported: Ethernet, Linux SLL/SLL2, raw IP, BSD loopback)"
        ));
    }
    if counters.fragments > 0 {
        summary.warnings.push(format!(
            "{} IP fragments were skipped (TCP over fragmented IP is not reassembled)",
            counters.fragments
        ));
    }
    if counters.malformed > 0 {
        summary.warnings.push(format!(
            "{} frames with damaged or cut headers were skipped",
            counters.malformed
        ));
    }
    if counters.evicted > 0 {
        summary.warnings.push(format!(
            "{} connections were reported before their end: more than {} were open at once",
            counters.evicted,
            flow::MAX_FLOWS
        ));
    }
}

/// Analyses a capture held in memory; never panics, whatever the bytes
/// (the fuzz target's entry point).
pub fn analyse_bytes(data: &[u8]) -> Analysis {
    let mut records = Vec::new();
    let opts = Options {
        keep_hellos: true,
        ..Options::default()
    };
    match analyse(data, &opts, &mut |r| records.push(r)) {
        Ok((summary, counters)) => Analysis {
            records,
            summary,
            counters,
        },
        Err(e) => Analysis {
            records,
            summary: capture::ReadSummary {
                warnings: vec![e.to_string()],
                ..Default::default()
            },
            counters: flow::Counters::default(),
        },
    }
}

/// Analyses a file.
pub fn analyse_file(path: &Path, opts: &Options) -> Result<Analysis, capture::CaptureError> {
    let file = std::fs::File::open(path)?;
    let mut records = Vec::new();
    let label = path.display().to_string();
    let (summary, counters) = analyse(file, opts, &mut |mut r| {
        r.capture.clone_from(&label);
        records.push(r);
    })?;
    Ok(Analysis {
        records,
        summary,
        counters,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Brief,
    Block,
}

/// Runs `hsscan pcap`.
pub fn run(args: &PcapArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let format = match (args.json, args.brief) {
        (true, _) => Format::Json,
        (_, true) => Format::Brief,
        _ => Format::Block,
    };
    let replay_target = match &args.replay {
        Some(t) => Some(replay::parse_target(t).with_context(|| format!("reading --replay '{t}'"))?),
        None => None,
    };
    let opts = Options {
        filter: flow::Filter {
            host: args.host,
            port: args.port,
        },
        keep_hellos: replay_target.is_some(),
        summary: format == Format::Brief && replay_target.is_none(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut first_block = true;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, 64);
    for path in &args.files {
        if replay_target.is_none() {
            let label = path.display().to_string();
            let file = std::fs::File::open(path).with_context(|| format!("reading {label}"))?;
            let render = |r: &mut ConnectionRecord| -> Vec<u8> {
                r.capture.clone_from(&label);
                match format {
                    Format::Json => {
                        // A record is a few KiB: one allocation, not a doubling series.
                        let mut bytes = JsonBytes(Vec::with_capacity(6 * 1024));
                        // A record always serialises; the write is to memory.
                        let _ = serde_json::to_writer(&mut bytes, r);
                        bytes.0.push(b'\n');
                        bytes.0
                    }
                    Format::Brief => report::brief(r).into_bytes(),
                    Format::Block => report::block(r).into_bytes(),
                }
            };
            let mut write_error: Option<std::io::Error> = None;
            let result = shard::analyse(file, &opts, threads, &render, &mut |bytes| {
                if write_error.is_some() {
                    return;
                }
                let sep = if format == Format::Block && !first_block {
                    &b"\n"[..]
                } else {
                    &[]
                };
                first_block = false;
                if let Err(e) = out.write_all(sep).and_then(|()| out.write_all(bytes)) {
                    write_error = Some(e);
                }
            });
            let (summary, _) = result.map_err(|e| anyhow::anyhow!("reading {label}: {e}"))?;
            if let Some(e) = write_error {
                return Err(anyhow::Error::new(e).context("writing to stdout"));
            }
            for w in &summary.warnings {
                eprintln!("hsscan: {label}: warning: {w}");
            }
            out.flush().context("writing to stdout")?;
            continue;
        }
        let label = path.display().to_string();
        let file = std::fs::File::open(path).with_context(|| format!("reading {label}"))?;
        let mut write_error: Option<std::io::Error> = None;
        let mut replayed: Vec<ConnectionRecord> = Vec::new();
        // No BufReader: the capture reader has its own buffer and reads into it.
        let result = analyse(file, &opts, &mut |mut r| {
            r.capture.clone_from(&label);
            if replay_target.is_some() {
                replayed.push(r);
                return;
            }
            if write_error.is_some() {
                return;
            }
            if let Err(e) = write_record(&mut out, &r, format, &mut first_block) {
                write_error = Some(e);
            }
        });
        let (summary, _) = result.map_err(|e| anyhow::anyhow!("reading {label}: {e}"))?;
        if let Some(e) = write_error {
            return Err(anyhow::Error::new(e).context("writing to stdout"));
        }
        for w in &summary.warnings {
            eprintln!("hsscan: {}", crate::style::escape(&format!("{label}: warning: {w}")));
        }
        if let Some(target) = &replay_target {
            let cfg = replay::ReplayConfig {
                target: target.clone(),
                ehlo: args.ehlo.clone(),
                timeout: std::time::Duration::from_secs_f64(args.timeout.clamp(0.1, 3600.0)),
            };
            let results = replay::replay_all(&replayed, &cfg).context("starting the runtime")?;
            for (record, outcome) in replayed.iter_mut().zip(results) {
                match format {
                    Format::Json => {
                        let mut v = serde_json::to_value(&*record).context("writing JSON")?;
                        if let Some(o) = v.as_object_mut() {
                            o.insert(
                                "replay".to_owned(),
                                serde_json::to_value(&outcome).context("writing JSON")?,
                            );
                        }
                        writeln!(out, "{v}").context("writing to stdout")?;
                    }
                    Format::Brief => {
                        write!(out, "{}", report::brief(record)).context("writing to stdout")?;
                        writeln!(out, "  replay: {}", crate::style::escape(&outcome.summary))
                            .context("writing to stdout")?;
                    }
                    Format::Block => {
                        write_record(&mut out, record, format, &mut first_block).context("writing to stdout")?;
                        writeln!(out, "  {:<14}{}", "replay", crate::style::escape(&outcome.summary))
                            .context("writing to stdout")?;
                    }
                }
            }
        }
        out.flush().context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// A record's JSON in memory. serde_json writes quotes, colons and commas
/// one byte at a time: a push each, not a call to copy one byte.
struct JsonBytes(Vec<u8>);

impl std::io::Write for JsonBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match buf {
            [b] => self.0.push(*b),
            _ => self.0.extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.write(buf).map(|_| ())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_record(
    out: &mut impl std::io::Write,
    r: &ConnectionRecord,
    format: Format,
    first_block: &mut bool,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, r)?;
            out.write_all(b"\n")
        }
        Format::Brief => out.write_all(report::brief(r).as_bytes()),
        Format::Block => {
            if !*first_block {
                out.write_all(b"\n")?;
            }
            *first_block = false;
            out.write_all(report::block(r).as_bytes())
        }
    }
}
