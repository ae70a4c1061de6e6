//! `hsscan pcap FILE --replay HOST[:PORT]`: each captured ClientHello is
//! sent again, byte for byte and in the segments the client used, to a live
//! server — after SMTP STARTTLS when the capture shows the client got a 220
//! to it — and the server's answer now is compared with the captured one.
//!
//! One connection per replayed hello, one at a time, through the live
//! scanner's probe (`crate::probe`): the same SMTP dialog, flight reader and
//! failure kinds as a scan, so "reproduced" means the same kind, alert or
//! negotiated version and suite.

use super::report::ConnectionRecord;
use crate::outcome::{Failure, FailureKind};
use crate::probe::{self, Endpoint, ProbeConfig, ProbeResult};
use crate::target::Transport;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::time::Duration;

/// Where to replay: a host and, when given, a port (else the captured one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: Option<u16>,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub target: Target,
    /// The EHLO name (default: the captured one).
    pub ehlo: Option<String>,
    /// Each read's timeout.
    pub timeout: Duration,
}

/// The outcome of replaying one connection's hello.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The address the hello went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `true`: same answer as captured; `false`: it differs; null: nothing replayed.
    pub reproduced: Option<bool>,
    /// The server's answer in the capture.
    pub captured: String,
    /// The server's answer now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// One line: `reproduced: …` or `differs: now …`.
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(String);

/// Parses `HOST[:PORT]`, `[v6]:PORT`, or a bare IPv4/IPv6 address.
pub fn parse_target(s: &str) -> Result<Target, TargetError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(TargetError("expected HOST[:PORT]".to_owned()));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Target {
            host: addr.ip().to_string(),
            port: Some(addr.port()),
        });
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(Target {
            host: ip.to_string(),
            port: None,
        });
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| TargetError(format!("port '{port}' is not a number from 1 to 65535")))?;
            if host.is_empty() {
                return Err(TargetError("expected HOST[:PORT]".to_owned()));
            }
            Ok(Target {
                host: host.to_owned(),
                port: Some(port),
            })
        }
        Some(_) => Err(TargetError(
            "write an IPv6 address with a port as [addr]:port".to_owned(),
        )),
        None => Ok(Target {
            host: s.to_owned(),
            port: None,
        }),
    }
}

/// What the server answered, as compared between capture and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Hello {
        version: String,
        suite: String,
    },
    Retry {
        group: String,
    },
    Sslv2,
    Failure {
        kind: FailureKind,
        detail: Option<String>,
    },
    /// The probe ended without a hello and without a failure.
    Nothing,
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Hello { version, suite } => format!("negotiates {version} {suite}"),
            Answer::Retry { group } => format!("asks for a retry with group {group}"),
            Answer::Sslv2 => "answers with an SSLv2 SERVER-HELLO".to_owned(),
            Answer::Failure { kind, detail: Some(d) } => format!("{kind} {d}"),
            Answer::Failure { kind, detail: None } => kind.to_string(),
            Answer::Nothing => "no answer".to_owned(),
        }
    }
}

/// The captured answer to the first hello.
fn captured_answer(r: &ConnectionRecord) -> Option<Answer> {
    // Only the first hello is replayed: its answer was the retry request,
    // whatever the second hello drew.
    if r.hello_retry_request {
        return Some(Answer::Retry {
            group: r.retry_group.map_or_else(|| "?".to_owned(), |g| g.to_string()),
        });
    }
    // An SSLv2 SERVER-HELLO has no suite (it is reported as 0x0002 below).
    if let Some((h, suite)) = r.server_hello.as_ref().and_then(|h| Some((h, h.cipher_suite?))) {
        return Some(Answer::Hello {
            version: h.selected_version.to_string(),
            suite: suite.to_string(),
        });
    }
    if r.negotiated_version == Some(hsscan_wire::ProtocolVersion::SSL2) {
        return Some(Answer::Sslv2);
    }
    let kind = r.verdict.kind?;
    let detail = (kind == FailureKind::Alert)
        .then(|| r.alerts.iter().find(|a| a.from == "server"))
        .flatten()
        .map(|a| {
            hsscan_wire::Alert {
                level: a.level,
                description: a.description,
            }
            .to_string()
        });
    Some(Answer::Failure { kind, detail })
}

fn replayed_answer(p: &ProbeResult) -> Answer {
    if let Some(h) = &p.flight.retry_request {
        return Answer::Retry {
            group: h.key_share_group().map_or_else(|| "?".to_owned(), |g| g.to_string()),
        };
    }
    if let Some(h) = &p.flight.server_hello {
        return Answer::Hello {
            version: h.selected_version().to_string(),
            suite: h.cipher_suite.to_string(),
        };
    }
    if p.flight.sslv2.is_some() {
        return Answer::Sslv2;
    }
    match &p.failure {
        Some(Failure { kind, detail, .. }) => Answer::Failure {
            kind: *kind,
            // Alerts are compared by name; other details are prose.
            detail: (*kind == FailureKind::Alert).then(|| detail.clone()),
        },
        None => Answer::Nothing,
    }
}

/// Whether the capture shows the hello went through SMTP STARTTLS.
fn via_starttls(r: &ConnectionRecord) -> bool {
    r.smtp
        .as_ref()
        .and_then(|s| s.starttls_reply.as_deref())
        .is_some_and(|reply| reply.starts_with('2'))
}

/// Replays every record's hello, one connection at a time.
pub fn replay_all(records: &[ConnectionRecord], cfg: &ReplayConfig) -> std::io::Result<Vec<Outcome>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(records.iter().map(|r| runtime.block_on(replay_one(r, cfg))).collect())
}

async fn replay_one(r: &ConnectionRecord, cfg: &ReplayConfig) -> Outcome {
    let captured = captured_answer(r);
    let captured_text = captured
        .as_ref()
        .map_or_else(|| "no answer to compare".to_owned(), Answer::describe);
    let nothing = |why: String| Outcome {
        target: None,
        reproduced: None,
        captured: captured_text.clone(),
        now: None,
        summary: why,
    };
    if r.hello_writes.is_empty() {
        return nothing("nothing to replay: the capture holds no complete ClientHello".to_owned());
    }
    let port = cfg.target.port.unwrap_or(r.server_port);
    let host = cfg.target.host.clone();
    let addr = match tokio::task::spawn_blocking(move || (host.as_str(), port).to_socket_addrs()).await {
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(a) => a,
            None => return nothing(format!("not replayed: {} has no address", cfg.target.host)),
        },
        Ok(Err(e)) => return nothing(format!("not replayed: resolving {}: {e}", cfg.target.host)),
        Err(e) => return nothing(format!("not replayed: resolving {}: {e}", cfg.target.host)),
    };
    let transport = if via_starttls(r) {
        Transport::SmtpStarttls
    } else {
        Transport::ImplicitTls
    };
    let ehlo_name = cfg
        .ehlo
        .clone()
        .or_else(|| r.smtp.as_ref().and_then(|s| s.ehlo.clone()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost.localdomain".to_owned());
    let endpoint = Endpoint {
        addr,
        transport,
        ehlo_name,
    };
    let probe_cfg = ProbeConfig {
        connect_timeout: cfg.timeout,
        read_timeout: cfg.timeout,
        banner_timeout: cfg.timeout,
        ..ProbeConfig::default()
    };
    let result = probe::run(&endpoint, &r.hello_writes, &probe_cfg).await;
    let now = replayed_answer(&result);
    let now_text = now.describe();
    let reproduced = captured.as_ref() == Some(&now);
    let summary = match (&captured, reproduced) {
        (Some(_), true) => format!("reproduced: {now_text}"),
        (Some(c), false) => format!("differs: now {now_text} (captured: {})", c.describe()),
        (None, _) => format!("replayed: {now_text} (the capture shows no answer to compare)"),
    };
    Outcome {
        target: Some(addr.to_string()),
        reproduced: captured.as_ref().map(|_| reproduced),
        captured: captured_text,
        now: Some(now_text),
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |s: &str| parse_target(s).unwrap();
        assert_eq!(
            t("127.0.0.1:2525"),
            Target {
                host: "127.0.0.1".into(),
                port: Some(2525)
            }
        );
        assert_eq!(t("[::1]:25").host, "::1");
        assert_eq!(t("::1").port, None);
        assert_eq!(t("mx.example.net").port, None);
        assert_eq!(t("mx.example.net:587").port, Some(587));
        assert!(parse_target("mx:0").is_err());
        assert!(parse_target("mx:x").is_err());
        assert!(parse_target("").is_err());
    }
}
