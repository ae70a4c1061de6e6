//! SMTP up to STARTTLS, as a well-mannered MTA speaks it (RFC 5321, RFC
//! 3207): wait for the whole banner, EHLO, read the multi-line reply,
//! STARTTLS, expect 220. Every reply is kept verbatim. Replies are capped
//! in size and every read has a timeout.

use crate::outcome::{Failure, FailureKind, Stage};
use serde::Serialize;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A reply longer than this is refused: real EHLO replies are under 1 KiB.
pub const MAX_REPLY_BYTES: usize = 16 * 1024;
/// Lines of one reply.
pub const MAX_REPLY_LINES: usize = 100;

/// One SMTP reply, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Each line as received, without CRLF.
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as one string, lines joined with `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The RFC 3463 enhanced status code of the first line, if any (`4.7.0`).
    pub fn enhanced(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let rest = first.get(4..)?.split_whitespace().next()?;
        let parts: Vec<&str> = rest.split('.').collect();
        (parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then_some(rest)
    }

    /// 421, or a 4xx with 4.7.0 or a connection-count message: the server
    /// is limiting us, which says nothing about its TLS (SPEC §7).
    pub fn is_rate_limit(&self) -> bool {
        if self.code == 421 {
            return true;
        }
        if !(400..500).contains(&self.code) {
            return false;
        }
        let t = self.text().to_ascii_lowercase();
        self.enhanced() == Some("4.7.0") && !t.contains("tls")
            || t.contains("too many connections")
            || t.contains("too many concurrent")
            || t.contains("rate limit")
    }
}

/// The dialog as reported (SPEC §3 `smtp`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dialog {
    pub banner: Option<String>,
    pub ehlo_name: String,
    /// EHLO keywords with their parameters, e.g. `SIZE 10240000`, `STARTTLS`.
    pub extensions: Vec<String>,
    /// `offered`, `absent` or `rejected`.
    pub starttls: Option<&'static str>,
    /// The reply to STARTTLS (or to the step that failed), verbatim.
    pub reply: Option<String>,
    /// The quickest command and reply (EHLO, STARTTLS): about one round trip.
    #[serde(skip)]
    pub round_trip: Option<std::time::Duration>,
}

/// How long to wait.
#[derive(Debug, Clone, Copy)]
pub struct SmtpTimeouts {
    /// For the banner: long enough for a postscreen greeting delay.
    pub banner: Duration,
    /// For each other reply.
    pub reply: Duration,
}

/// A line reader that keeps what it read past the reply it returns.
pub struct ReplyReader {
    buf: Vec<u8>,
}

enum ReadError {
    Timeout,
    Closed,
    Io(std::io::Error),
    TooLong,
    Garbage(Vec<u8>),
}

impl ReplyReader {
    pub fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Bytes read after the last reply (none from a well-behaved server).
    pub fn leftover(self) -> Vec<u8> {
        self.buf
    }

    async fn read_reply<S: AsyncRead + Unpin>(&mut self, s: &mut S, timeout: Duration) -> Result<Reply, ReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut lines: Vec<String> = Vec::new();
        let mut code: Option<u16> = None;
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_owned();
                let bytes = line.as_bytes();
                let digits = bytes.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
                let Some(digits) = digits else {
                    return Err(ReadError::Garbage(raw));
                };
                let this: u16 = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                if code.is_some_and(|c| c != this) {
                    return Err(ReadError::Garbage(raw));
                }
                code = Some(this);
                let more = bytes.get(3) == Some(&b'-');
                lines.push(line);
                if lines.len() > MAX_REPLY_LINES {
                    return Err(ReadError::TooLong);
                }
                if !more {
                    return Ok(Reply { code: this, lines });
                }
            }
            if self.buf.len() > MAX_REPLY_BYTES {
                return Err(ReadError::TooLong);
            }
            // Bytes that cannot start a reply (a TLS record, binary) fail at once.
            if lines.is_empty() && self.buf.len() >= 3 && !self.buf.iter().take(3).all(u8::is_ascii_digit) {
                return Err(ReadError::Garbage(std::mem::take(&mut self.buf)));
            }
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Err(e)) => return Err(ReadError::Io(e)),
                Ok(Ok(0)) => return Err(ReadError::Closed),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

impl Default for ReplyReader {
    fn default() -> Self {
        Self::new()
    }
}

fn read_failure(stage: Stage, e: ReadError, waited: Duration) -> Failure {
    let (kind, detail) = match e {
        ReadError::Timeout if stage == Stage::Banner => (
            FailureKind::Timeout,
            format!("no SMTP banner within {}s: the port may expect implicit TLS (smtps), or a greeting delay is longer than the banner timeout", waited.as_secs()),
        ),
        ReadError::Timeout => (FailureKind::Timeout, format!("no reply within {}s", waited.as_secs())),
        // No hello was sent yet: a close or reset here is `closed`, not `*-after-hello`.
        ReadError::Closed => (FailureKind::Closed, "the server closed the connection".to_owned()),
        ReadError::Io(e) => (FailureKind::Closed, e.to_string()),
        ReadError::TooLong => (FailureKind::NotTls, format!("reply longer than {MAX_REPLY_BYTES} bytes or {MAX_REPLY_LINES} lines")),
        ReadError::Garbage(bytes) => {
            let looks_tls = bytes.first().is_some_and(|&b| (20..=24).contains(&b));
            let what = if looks_tls { "a TLS record where an SMTP reply was expected: the port speaks implicit TLS" } else { "bytes that are not an SMTP reply" };
            (FailureKind::NotTls, format!("{what}: {}", printable(&bytes)))
        }
    };
    Failure::new(stage, kind, detail)
}

/// Up to 200 bytes as text, control bytes escaped.
pub fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(200)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, line: &str, timeout: Duration) -> Result<(), Failure> {
    let stage = if line.starts_with("EHLO") {
        Stage::Ehlo
    } else {
        Stage::Starttls
    };
    match tokio::time::timeout(timeout, s.write_all(line.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::new(
            stage,
            FailureKind::Closed,
            format!("writing {}: {e}", line.trim_end()),
        )),
        Err(_) => Err(Failure::new(
            stage,
            FailureKind::Timeout,
            format!("writing {}: timed out", line.trim_end()),
        )),
    }
}

/// Runs banner, EHLO and STARTTLS. On success the stream is ready for the
/// ClientHello; `leftover` holds any bytes the server sent after its 220.
pub async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    ehlo_name: &str,
    timeouts: SmtpTimeouts,
    dialog: &mut Dialog,
) -> Result<Vec<u8>, Failure> {
    dialog.ehlo_name = ehlo_name.to_owned();
    let mut reader = ReplyReader::new();

    // Some MTAs drop the connection if EHLO arrives before the banner's final
    // "220 " line, so a "220-" continuation is not enough to proceed.
    let waiting = crate::wait::begin(
        || "the SMTP banner (a port that expects implicit TLS never sends one)".to_owned(),
        timeouts.banner,
    );
    let banner = reader
        .read_reply(s, timeouts.banner)
        .await
        .map_err(|e| read_failure(Stage::Banner, e, timeouts.banner))?;
    drop(waiting);
    dialog.banner = Some(banner.text());
    if banner.code != 220 {
        let kind = if banner.is_rate_limit() {
            FailureKind::RateLimited
        } else {
            FailureKind::SmtpRejected
        };
        quit(s, &mut reader, timeouts.reply).await;
        return Err(Failure::new(Stage::Banner, kind, banner.text()));
    }

    let asked = std::time::Instant::now();
    send(s, &format!("EHLO {ehlo_name}\r\n"), timeouts.reply).await?;
    let waiting = crate::wait::begin(|| "the reply to EHLO".to_owned(), timeouts.reply);
    let ehlo = reader
        .read_reply(s, timeouts.reply)
        .await
        .map_err(|e| read_failure(Stage::Ehlo, e, timeouts.reply))?;
    drop(waiting);
    dialog.round_trip = Some(asked.elapsed());
    if ehlo.code != 250 {
        let kind = if ehlo.is_rate_limit() {
            FailureKind::RateLimited
        } else {
            FailureKind::SmtpRejected
        };
        dialog.reply = Some(ehlo.text());
        quit(s, &mut reader, timeouts.reply).await;
        return Err(Failure::new(Stage::Ehlo, kind, ehlo.text()));
    }
    dialog.extensions = ehlo
        .lines
        .iter()
        .skip(1)
        .filter_map(|l| l.get(4..))
        .map(|l| l.trim().to_owned())
        .collect();
    let offered = dialog.extensions.iter().any(|e| {
        e.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        dialog.starttls = Some("absent");
        quit(s, &mut reader, timeouts.reply).await;
        return Err(Failure::new(
            Stage::Starttls,
            FailureKind::StarttlsAbsent,
            "STARTTLS is not among the EHLO keywords",
        ));
    }

    let asked = std::time::Instant::now();
    send(s, "STARTTLS\r\n", timeouts.reply).await?;
    let waiting = crate::wait::begin(|| "the reply to STARTTLS".to_owned(), timeouts.reply);
    let reply = reader
        .read_reply(s, timeouts.reply)
        .await
        .map_err(|e| read_failure(Stage::Starttls, e, timeouts.reply))?;
    drop(waiting);
    let took = asked.elapsed();
    dialog.round_trip = Some(dialog.round_trip.map_or(took, |r| r.min(took)));
    dialog.reply = Some(reply.text());
    if reply.code != 220 {
        dialog.starttls = Some("rejected");
        let kind = if reply.is_rate_limit() {
            FailureKind::RateLimited
        } else {
            FailureKind::StarttlsRejected
        };
        quit(s, &mut reader, timeouts.reply).await;
        return Err(Failure::new(Stage::Starttls, kind, reply.text()));
    }
    dialog.starttls = Some("offered");
    Ok(reader.leftover())
}

/// Says goodbye when the dialog ends without TLS (SPEC §7), not waiting long.
async fn quit<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, reader: &mut ReplyReader, timeout: Duration) {
    let wait = timeout.min(Duration::from_secs(2));
    if tokio::time::timeout(wait, s.write_all(b"QUIT\r\n")).await.is_ok() {
        let _ = reader.read_reply(s, wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(server: &[u8]) -> (Result<Vec<u8>, Failure>, Dialog, Vec<u8>) {
        let (mut client, mut peer) = tokio::io::duplex(64 * 1024);
        peer.write_all(server).await.unwrap();
        let mut dialog = Dialog::default();
        let t = SmtpTimeouts {
            banner: Duration::from_secs(1),
            reply: Duration::from_secs(1),
        };
        let r = starttls(&mut client, "scanner.example", t, &mut dialog).await;
        drop(client);
        let mut sent = Vec::new();
        peer.read_to_end(&mut sent).await.unwrap();
        (r, dialog, sent)
    }

    #[tokio::test]
    async fn full_dialog_with_multiline_replies() {
        let (r, d, sent) = run(b"220-mx.example ESMTP\r\n220 welcome\r\n250-mx.example\r\n250-SIZE 1000\r\n250-STARTTLS\r\n250 8BITMIME\r\n220 2.0.0 Ready to start TLS\r\n").await;
        assert_eq!(r.unwrap(), Vec::<u8>::new());
        assert_eq!(d.banner.as_deref(), Some("220-mx.example ESMTP\n220 welcome"));
        assert_eq!(d.extensions, vec!["SIZE 1000", "STARTTLS", "8BITMIME"]);
        assert_eq!(d.starttls, Some("offered"));
        assert_eq!(d.reply.as_deref(), Some("220 2.0.0 Ready to start TLS"));
        assert_eq!(sent, b"EHLO scanner.example\r\nSTARTTLS\r\n");
    }

    #[tokio::test]
    async fn rate_limit_banner_is_not_a_tls_failure() {
        let (r, _, sent) = run(b"421 4.7.0 mx.example Error: too many connections from 192.0.2.1\r\n").await;
        let f = r.unwrap_err();
        assert_eq!((f.stage, f.kind), (Stage::Banner, FailureKind::RateLimited));
        assert_eq!(sent, b"QUIT\r\n");
    }

    #[tokio::test]
    async fn starttls_absent_and_rejected() {
        let (r, d, _) = run(b"220 mx\r\n250-mx\r\n250 SIZE 1\r\n221 bye\r\n").await;
        assert_eq!(r.unwrap_err().kind, FailureKind::StarttlsAbsent);
        assert_eq!(d.starttls, Some("absent"));
        let (r, d, _) =
            run(b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not available due to local problem\r\n").await;
        let f = r.unwrap_err();
        assert_eq!((f.stage, f.kind), (Stage::Starttls, FailureKind::StarttlsRejected));
        assert_eq!(d.starttls, Some("rejected"));
    }

    #[tokio::test]
    async fn a_tls_record_instead_of_a_banner_is_named() {
        let (r, _, _) = run(&[0x15, 3, 3, 0, 2, 2, 40]).await;
        let f = r.unwrap_err();
        assert_eq!((f.stage, f.kind), (Stage::Banner, FailureKind::NotTls));
        assert!(f.detail.contains("implicit TLS"), "{}", f.detail);
    }

    #[tokio::test]
    async fn silence_is_a_banner_timeout() {
        let (mut client, _peer) = tokio::io::duplex(1024);
        let mut d = Dialog::default();
        let t = SmtpTimeouts {
            banner: Duration::from_millis(50),
            reply: Duration::from_millis(50),
        };
        let f = starttls(&mut client, "x", t, &mut d).await.unwrap_err();
        assert_eq!((f.stage, f.kind), (Stage::Banner, FailureKind::Timeout));
    }

    #[test]
    fn enhanced_codes() {
        let r = Reply {
            code: 421,
            lines: vec!["421 4.7.0 too busy".into()],
        };
        assert_eq!(r.enhanced(), Some("4.7.0"));
        let r = Reply {
            code: 454,
            lines: vec!["454 4.7.0 TLS not available".into()],
        };
        assert!(!r.is_rate_limit());
        let r = Reply {
            code: 450,
            lines: vec!["450 4.7.0 too many connections".into()],
        };
        assert!(r.is_rate_limit());
    }
}
