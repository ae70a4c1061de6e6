//! Targets as users type them (SPEC §2): `host`, `host:port`,
//! `[v6addr]:port`, an IP address, `smtp://host[:port]` (STARTTLS) and
//! `smtps://host[:port]` (implicit TLS). The transport follows the port
//! (25, 587 and 2525 speak STARTTLS; everything else starts TLS at once)
//! unless the scheme or `--starttls` says otherwise.

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// How TLS starts on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    SmtpStarttls,
    ImplicitTls,
}

/// `--starttls smtp|none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartTlsMode {
    /// SMTP STARTTLS whatever the port.
    Smtp,
    /// TLS at once whatever the port.
    None,
}

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// The DNS name, if the target has one (SNI and certificate checks use it).
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// What the user typed.
    pub input: String,
    pub host: Host,
    pub port: u16,
    pub transport: Transport,
}

/// Why a target could not be parsed; the message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing target '{input}': {reason}")]
pub struct TargetError {
    pub input: String,
    pub reason: String,
}

/// The transport a port implies (SPEC §2).
pub fn transport_for_port(port: u16) -> Transport {
    match port {
        25 | 587 | 2525 => Transport::SmtpStarttls,
        _ => Transport::ImplicitTls,
    }
}

impl Target {
    /// Parses one target; `mode` is `--starttls` when given.
    pub fn parse(input: &str, mode: Option<StartTlsMode>) -> Result<Self, TargetError> {
        let err = |reason: &str| TargetError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty target; give a host name, an IP address or host:port"));
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, s),
        };
        let (scheme_transport, default_port) = match scheme.as_deref() {
            None => (None, 25),
            Some("smtp") => (Some(Transport::SmtpStarttls), 25),
            Some("smtps") => (Some(Transport::ImplicitTls), 465),
            Some(_) => return Err(err("unknown scheme; use smtp:// (STARTTLS) or smtps:// (implicit TLS)")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(err("a target is host[:port]; paths, users and queries are not allowed"));
        }
        let (host_text, port_text) = split_host_port(rest).map_err(|r| err(&r))?;
        let port = match port_text {
            None => default_port,
            Some("") => {
                return Err(err(
                    "missing port number after ':'; write host:port, e.g. mx.example.net:25",
                ))
            }
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(err(&format!("port '{p}' is not a number from 1 to 65535"))),
                Ok(n) => n,
            },
        };
        let host = parse_host(host_text).map_err(|r| err(&r))?;
        let transport = match (scheme_transport, mode) {
            (Some(t), _) => t,
            (None, Some(StartTlsMode::Smtp)) => Transport::SmtpStarttls,
            (None, Some(StartTlsMode::None)) => Transport::ImplicitTls,
            (None, None) => transport_for_port(port),
        };
        Ok(Self {
            input: input.to_owned(),
            host,
            port,
            transport,
        })
    }
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err("unclosed '['; write an IPv6 address as [2001:db8::1]:25".into());
        };
        return match after {
            "" => Ok((addr, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((addr, Some(p))),
                None => Err(format!("unexpected '{after}' after ']'")),
            },
        };
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => s
            .split_once(':')
            .map(|(h, p)| (h, Some(p)))
            .ok_or_else(|| "bad host:port".into()),
        // More than one colon without brackets: a bare IPv6 address.
        _ => Ok((s, None)),
    }
}

fn parse_host(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("missing host name".into());
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if h.contains(':') {
        return Err(format!("'{h}' is not an IPv6 address"));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > 253 {
        return Err("host name longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("empty label in host name '{h}'"));
        }
        if label.len() > 63 {
            return Err(format!("label '{label}' longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "'{h}' is not a host name (letters, digits, '-', '_' and '.' only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label '{label}' starts or ends with '-'"));
        }
    }
    Ok(Host::Name(name.to_ascii_lowercase()))
}

/// The longest line a targets or domains file (`-i`) may hold. A host
/// name is at most 253 bytes and a target at most a scheme, a host and a
/// port more, so a longer line is not a target — and reading it whole
/// would let a file that never ends (`-i /dev/zero`) fill memory.
pub const MAX_LINE_BYTES: usize = 1024;

/// The most lines a targets or domains file may hold (comments and blank
/// lines included): an input that never ends stops here, with exit 2,
/// rather than growing without bound. Split larger inputs.
pub const MAX_INPUT_LINES: usize = 1_000_000;

/// Why an input file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("reading {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {name}: line {line} is longer than {MAX_LINE_BYTES} bytes (one target or domain per line)")]
    LineTooLong { name: String, line: usize },
    #[error("reading {name}: more than {MAX_INPUT_LINES} lines; split the input")]
    TooManyLines { name: String },
}

/// The entries of a targets or domains file, one per line, read as bytes
/// (a stray Latin-1 comment must not end the input), with `#` comments and
/// blank lines skipped and every line bounded ([`MAX_LINE_BYTES`],
/// [`MAX_INPUT_LINES`]).
pub struct InputLines {
    name: String,
    inner: Box<dyn std::io::BufRead + Send>,
    line: usize,
    buf: Vec<u8>,
}

impl InputLines {
    /// Opens `path` (`-`: stdin) holding `what` (`targets`, `domains`).
    pub fn open(path: &str, what: &str) -> Result<Self, InputError> {
        if path == "-" {
            let stdin = std::io::BufReader::new(std::io::stdin());
            return Ok(Self::new(&format!("{what} from stdin"), Box::new(stdin)));
        }
        let name = format!("{what} from {path}");
        let file = std::fs::File::open(path).map_err(|source| InputError::Io {
            name: name.clone(),
            source,
        })?;
        Ok(Self::new(&name, Box::new(std::io::BufReader::new(file))))
    }

    /// Reads `inner`, called `name` in messages.
    pub fn new(name: &str, inner: Box<dyn std::io::BufRead + Send>) -> Self {
        Self {
            name: name.to_owned(),
            inner,
            line: 0,
            buf: Vec::with_capacity(256),
        }
    }

    /// The name messages give the input.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next entry and its line number (from 1); `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<(usize, String)>, InputError> {
        use std::io::{BufRead as _, Read as _};
        loop {
            self.buf.clear();
            let limit = u64::try_from(MAX_LINE_BYTES + 1).unwrap_or(u64::MAX);
            let n = (&mut self.inner)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| InputError::Io {
                    name: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.line > MAX_INPUT_LINES {
                return Err(InputError::TooManyLines {
                    name: self.name.clone(),
                });
            }
            if self.buf.len() > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
                return Err(InputError::LineTooLong {
                    name: self.name.clone(),
                    line: self.line,
                });
            }
            let text = String::from_utf8_lossy(&self.buf);
            let entry = text.split('#').next().unwrap_or("").trim();
            if !entry.is_empty() {
                return Ok(Some((self.line, entry.to_owned())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(input: &[u8]) -> Result<Vec<(usize, String)>, InputError> {
        let mut lines = InputLines::new("test", Box::new(std::io::Cursor::new(input.to_vec())));
        let mut out = Vec::new();
        while let Some(e) = lines.next_entry()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn input_lines_skip_comments_and_blanks_and_keep_line_numbers() {
        let got = entries(b"a.example\n\n# M\xfcller\n  b.example # two\r\n\xff\nc.example").expect("entries");
        assert_eq!(
            got,
            [
                (1, "a.example".to_owned()),
                (4, "b.example".to_owned()),
                (5, "\u{fffd}".to_owned()),
                (6, "c.example".to_owned())
            ]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_naming_it() {
        let mut input = b"ok.example\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES));
        input.push(b'\n');
        assert_eq!(entries(&input).expect("exactly the limit").len(), 2);
        input.extend(std::iter::repeat_n(0u8, MAX_LINE_BYTES + 1));
        let e = entries(&input).expect_err("one byte over");
        assert_eq!(
            e.to_string(),
            "reading test: line 3 is longer than 1024 bytes (one target or domain per line)"
        );
    }

    #[test]
    fn an_input_that_never_ends_stops_at_the_line_cap() {
        // Blank lines for ever: never an entry, still counted.
        let endless = std::io::repeat(b'\n');
        let mut lines = InputLines::new("endless", Box::new(std::io::BufReader::new(endless)));
        let e = lines.next_entry().expect_err("stops");
        assert_eq!(
            e.to_string(),
            "reading endless: more than 1000000 lines; split the input"
        );
    }

    fn t(s: &str) -> Target {
        Target::parse(s, None).unwrap()
    }

    #[test]
    fn forms_and_default_transports() {
        assert_eq!(
            (t("mx.example.net").port, t("mx.example.net").transport),
            (25, Transport::SmtpStarttls)
        );
        assert_eq!(t("mx.example.net:465").transport, Transport::ImplicitTls);
        assert_eq!(t("mx.example.net:587").transport, Transport::SmtpStarttls);
        assert_eq!(t("MX.Example.NET.").host, Host::Name("mx.example.net".into()));
        assert_eq!(t("smtps://mx.example.net").port, 465);
        assert_eq!(t("smtps://mx.example.net").transport, Transport::ImplicitTls);
        assert_eq!(t("smtp://mx.example.net:2526").transport, Transport::SmtpStarttls);
        assert_eq!(t("192.0.2.7").host, Host::Ip("192.0.2.7".parse().unwrap()));
        assert_eq!(t("[2001:db8::1]:587").port, 587);
        assert_eq!(t("[::1]").host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(t("::1").port, 25);
        assert_eq!(t("127.0.0.1:4433").transport, Transport::ImplicitTls);
    }

    #[test]
    fn starttls_flag_overrides_the_port_but_not_the_scheme() {
        assert_eq!(
            Target::parse("h:4433", Some(StartTlsMode::Smtp)).unwrap().transport,
            Transport::SmtpStarttls
        );
        assert_eq!(
            Target::parse("h:25", Some(StartTlsMode::None)).unwrap().transport,
            Transport::ImplicitTls
        );
        assert_eq!(
            Target::parse("smtp://h:465", Some(StartTlsMode::None))
                .unwrap()
                .transport,
            Transport::SmtpStarttls
        );
    }

    #[test]
    fn bad_input_names_the_problem() {
        let e = |s: &str| Target::parse(s, None).unwrap_err().to_string();
        assert!(
            e("mx.example.net:").contains("missing port number"),
            "{}",
            e("mx.example.net:")
        );
        assert!(e("mx.example.net:99999").contains("1 to 65535"));
        assert!(e("mx.example.net:smtp").contains("not a number"));
        assert!(e("http://mx.example.net").contains("unknown scheme"));
        assert!(e("mx..example.net").contains("empty label"));
        assert!(e("mx example.net").contains("not a host name"));
        assert!(e("[2001:db8::1").contains("unclosed"));
        assert!(e("").contains("empty target"));
        assert!(e("bad host").starts_with("parsing target 'bad host': "));
    }
}
