//! The verdict of one connection (SPEC §3 failure kinds), from what
//! [`Conn`] saw: SMTP refusals first, then the client's mistakes, then the
//! server's answer to the hello, then how the connection ended.

use super::{extensions_of, Conn, Dir, How};
use crate::outcome::FailureKind;
use crate::pcap::capture::Timestamp;
use crate::pcap::report::Verdict;
use crate::smtp::Reply;
use hsscan_wire::{Alert, CipherSuite};

impl Conn {
    /// The verdict; bytes missing from the capture turn a failure into `incomplete`.
    pub(super) fn verdict(&self, capture_end: Timestamp) -> Verdict {
        let v = self.raw_verdict(capture_end);
        let missing: Vec<&str> = [(&self.client, "client"), (&self.server, "server")]
            .iter()
            .filter(|(h, _)| h.gap)
            .map(|(_, n)| *n)
            .collect();
        let cut: Vec<&str> = [(&self.client, "client"), (&self.server, "server")]
            .iter()
            .filter(|(h, _)| h.cut && !h.gap)
            .map(|(_, n)| *n)
            .collect();
        if v.outcome == "established" {
            return v;
        }
        if missing.is_empty() && !cut.is_empty() {
            // What was not read may be exactly what would settle it.
            return Verdict {
                outcome: "incomplete",
                kind: None,
                message: format!(
                    "the {}'s bytes past {} MiB were not analysed; from what was: {}",
                    cut.join(" and the "),
                    super::MAX_ANALYSED >> 20,
                    v.message
                ),
            };
        }
        if missing.is_empty() {
            return v;
        }
        // What the capture lacks may be exactly what would explain the failure.
        Verdict {
            outcome: "incomplete",
            kind: None,
            message: format!(
                "bytes from the {} are missing from the capture; from what it holds: {}",
                missing.join(" and the "),
                v.message
            ),
        }
    }

    fn raw_verdict(&self, capture_end: Timestamp) -> Verdict {
        let s = &self.smtp;
        // SMTP refusals before any TLS.
        if self.is_smtp() {
            if let Some(b) = &s.banner {
                if b.code != 220 {
                    return failed(
                        if b.is_rate_limit() {
                            FailureKind::RateLimited
                        } else {
                            FailureKind::SmtpRejected
                        },
                        format!("the server's greeting refused the session: {}", first_line(b)),
                    );
                }
            }
            if let Some(r) = &s.ehlo_reply {
                if !(200..300).contains(&r.code) {
                    return failed(
                        if r.is_rate_limit() {
                            FailureKind::RateLimited
                        } else {
                            FailureKind::SmtpRejected
                        },
                        format!("the server refused EHLO: {}", first_line(r)),
                    );
                }
            }
            if s.starttls_sent {
                match &s.starttls_reply {
                    Some(r) if !(200..300).contains(&r.code) => {
                        return failed(
                            if r.is_rate_limit() {
                                FailureKind::RateLimited
                            } else {
                                FailureKind::StarttlsRejected
                            },
                            format!("the server refused STARTTLS: {}", r.text().replace('\n', " / ")),
                        );
                    }
                    Some(_) => {}
                    None if self.hellos == 0 => {
                        return self.unfinished("the client sent STARTTLS and no reply is in the capture", capture_end);
                    }
                    None => {}
                }
            } else if self.hellos == 0 {
                let offered = s
                    .ehlo_reply
                    .as_ref()
                    .is_some_and(|r| extensions_of(r).iter().any(|e| keyword(e) == "STARTTLS"));
                return match (&s.ehlo_reply, offered) {
                    (Some(_), false) => failed(
                        FailureKind::StarttlsAbsent,
                        "the server's EHLO reply does not offer STARTTLS: the session stays in plaintext".to_owned(),
                    ),
                    (Some(_), true) => Verdict {
                        outcome: "failed",
                        kind: None,
                        message: "the server offered STARTTLS but the client did not use it".to_owned(),
                    },
                    (None, _) if s.ehlo.is_some() => {
                        self.unfinished("the SMTP dialog ends before the EHLO reply", capture_end)
                    }
                    (None, _) => self.unfinished("the client sent no EHLO after the greeting", capture_end),
                };
            }
        }
        if self.client_spoke_smtp_to_tls() {
            let name = s.ehlo.as_deref().unwrap_or("");
            let answer = if self.server.tls_bytes {
                match self.alerts.iter().find(|a| a.from == "server") {
                    Some(a) => format!(
                        "the server answered with a TLS alert {}",
                        Alert {
                            level: a.level,
                            description: a.description
                        }
                    ),
                    None => "the server answered with TLS records".to_owned(),
                }
            } else {
                match self.server.ended {
                    Some(How::Rst) => "the server reset the connection without a banner".to_owned(),
                    Some(How::Fin) => "the server closed the connection without a banner".to_owned(),
                    None => "the server sent no banner".to_owned(),
                }
            };
            return failed(
                FailureKind::NotTls,
                format!(
                    "the client sent SMTP in plaintext (EHLO {name}) to port {}, which speaks implicit TLS: {answer}; the client must start TLS at once (smtps) or use the STARTTLS port",
                    self.server_addr.port()
                ),
            );
        }
        if self.hellos == 0 {
            if let Some(e) = &self.client.error {
                return failed(
                    FailureKind::NotTls,
                    format!("the client's bytes are not a TLS hello: {e}"),
                );
            }
            if self.server_hello.is_some() || self.retry.is_some() {
                return Verdict {
                    outcome: "incomplete",
                    kind: None,
                    message: "the capture holds the server's hello but not the client's".to_owned(),
                };
            }
            if s.starttls_reply.is_some() {
                return self.unfinished("the client sent no ClientHello after the STARTTLS reply", capture_end);
            }
            return self.unfinished("no ClientHello in the capture", capture_end);
        }
        self.tls_verdict(capture_end)
    }

    fn tls_verdict(&self, capture_end: Timestamp) -> Verdict {
        let answered = self.server_hello.is_some() || self.sslv2_server.is_some();
        // A fatal alert from the server before its hello: the server refused.
        if let Some((Dir::Server, a, false, _)) = self.fatal {
            let retry = if self.retry.is_some() {
                " (after a HelloRetryRequest and a second ClientHello)"
            } else {
                ""
            };
            return failed(
                FailureKind::Alert,
                format!("the server answered the ClientHello{retry} with the fatal alert {a}"),
            );
        }
        if let Some(code) = self.sslv2_error {
            let (kind, what) = match code {
                1 => (FailureKind::NoSharedCipher, "NO-CIPHER-ERROR"),
                2 => (FailureKind::Alert, "NO-CERTIFICATE-ERROR"),
                4 => (FailureKind::Alert, "BAD-CERTIFICATE-ERROR"),
                6 => (FailureKind::Alert, "UNSUPPORTED-CERTIFICATE-TYPE-ERROR"),
                _ => (FailureKind::Alert, "an unknown error"),
            };
            return failed(
                kind,
                format!("the server answered the SSLv2 hello with {what} ({code})"),
            );
        }
        // The client gave up after a HelloRetryRequest: no second hello.
        if !answered && self.hellos < 2 {
            if let Some(hrr) = &self.retry {
                let group = hrr
                    .key_share_group()
                    .map_or_else(|| "?".to_owned(), |g| format!("{g:?}"));
                if let Some((Dir::Client, a, false, _)) = self.fatal {
                    return failed(
                        FailureKind::Alert,
                        format!("the client answered the HelloRetryRequest (group {group}) with the fatal alert {a} instead of a second ClientHello"),
                    );
                }
                let how = match self.client.ended {
                    Some(How::Rst) => "reset the connection",
                    Some(How::Fin) => "closed the connection",
                    None => "stopped",
                };
                return Verdict {
                    outcome: if self.client.ended.is_some() { "failed" } else { "incomplete" },
                    kind: None,
                    message: format!(
                        "the server asked for a retry with group {group} (HelloRetryRequest); the client sent no second ClientHello and {how}"
                    ),
                };
            }
        }
        if !answered {
            if let Some(text) = &self.server.plaintext {
                return classify_plaintext(text);
            }
            if self.tls_without_starttls && self.smtp.banner.is_some() && !self.server.tls_bytes {
                let b = self.smtp.banner.as_ref().map(first_line).unwrap_or_default();
                return failed(
                    FailureKind::PlaintextReply,
                    format!(
                        "the server greeted in SMTP ({b}) and the client sent a ClientHello at once: port {} expects STARTTLS, not implicit TLS; {}",
                        self.server_addr.port(),
                        self.after_hello_end()
                    ),
                );
            }
            if let Some(e) = &self.server.error {
                return failed(FailureKind::NotTls, format!("the server's answer is not TLS: {e}"));
            }
            if let Some(e) = &self.client.error {
                if self.server.ended.is_none() && self.end.is_none() {
                    return failed(
                        FailureKind::NotTls,
                        format!("the client's TLS bytes could not be decoded: {e}"),
                    );
                }
            }
            return self.no_answer(capture_end);
        }
        // The server chose: did the handshake go through?
        // A client alert after the server closed only says the stream ended
        // early: the close is the failure (below).
        if let Some((dir, a, true, _)) = self.fatal.filter(|f| !(f.0 == Dir::Client && f.3)) {
            let who = dir.name();
            let why = match (dir, a.description.0) {
                (Dir::Client, 42..=48) => ": the client rejected the server's certificate",
                (Dir::Client, 40) => ": the client refused the server's choice",
                _ => "",
            };
            return failed(
                FailureKind::Alert,
                format!("the {who} sent the fatal alert {a} after the server's hello{why}"),
            );
        }
        let established = match &self.server_hello {
            Some(h) if h.is_tls13() => match self.client.first_encrypted_len {
                Some(len) if len == alert_record_len(h.cipher_suite) => {
                    return failed(
                            FailureKind::Alert,
                            format!(
                                "the client answered the server's TLS 1.3 flight with an encrypted alert (a {len}-byte record), then {}: this is how a client rejects the certificate (bad_certificate, unknown_ca …); the alert itself is encrypted",
                                self.end_text(Dir::Client)
                            ),
                        );
                }
                Some(_) => true,
                None => false,
            },
            Some(_) => self.client.ccs && self.server.ccs,
            None => self.client.encrypted > 0 && self.server.encrypted > 0,
        };
        if established {
            let what = match &self.server_hello {
                Some(h) => format!(
                    "{} with {}",
                    h.selected_version(),
                    h.cipher_suite
                        .name()
                        .map_or_else(|| h.cipher_suite.hex(), str::to_owned)
                ),
                None => "SSLv2".to_owned(),
            };
            let how = if self.smtp.starttls_reply.is_some() {
                " after STARTTLS"
            } else {
                ""
            };
            return Verdict {
                outcome: "established",
                kind: None,
                message: format!("the handshake completed{how}: {what}"),
            };
        }
        match &self.end {
            Some((dir, how, _, after)) => {
                let kind = if *how == How::Rst {
                    FailureKind::ResetAfterHello
                } else {
                    FailureKind::ClosedAfterHello
                };
                let after = after.as_deref().unwrap_or("the server's hello");
                failed(
                    kind,
                    format!(
                        "the server answered, then the {} {} the connection after {after} before the handshake completed",
                        dir.name(),
                        if *how == How::Rst { "reset" } else { "closed" }
                    ),
                )
            }
            None => Verdict {
                outcome: "incomplete",
                kind: None,
                message: format!(
                    "the capture ends during the handshake, after {}",
                    self.last_message.as_deref().unwrap_or("the server's hello")
                ),
            },
        }
    }

    /// The ClientHello got no TLS answer.
    fn no_answer(&self, capture_end: Timestamp) -> Verdict {
        let mut v = self.no_answer_plain(capture_end);
        // A hello dropped unanswered: say what in it some receivers drop.
        let dropped = matches!(
            v.kind,
            Some(FailureKind::ResetAfterHello | FailureKind::ClosedAfterHello | FailureKind::TimeoutAfterHello)
        );
        if let (true, Some(h)) = (dropped, self.hello.as_ref()) {
            let hints = intolerance_hints(h);
            if !hints.is_empty() {
                v.message = format!(
                    "{}; the hello has what some receivers and devices in front of them drop: {} (`hsscan --bisect` against the server names which, if any)",
                    v.message,
                    hints.join("; ")
                );
            }
        }
        v
    }

    fn no_answer_plain(&self, capture_end: Timestamp) -> Verdict {
        let hello_at = self.hello_at.unwrap_or(self.started);
        let retry = if self.retry.is_some() && self.hellos >= 2 {
            "the second ClientHello (after a HelloRetryRequest)"
        } else {
            "the ClientHello"
        };
        match (self.server.ended, self.client.ended) {
            (Some(How::Rst), _) => failed(
                FailureKind::ResetAfterHello,
                format!("the server reset the connection after {retry} without answering it"),
            ),
            (Some(How::Fin), _) if self.end.as_ref().is_some_and(|e| e.0 == Dir::Server) => failed(
                FailureKind::ClosedAfterHello,
                format!("the server closed the connection after {retry} without answering it"),
            ),
            (_, Some(how)) => {
                let waited = self.end.as_ref().map_or(0.0, |e| e.2.since(hello_at));
                failed(
                    FailureKind::TimeoutAfterHello,
                    format!(
                        "the server did not answer {retry}; the client gave up after {waited:.3} s ({})",
                        if how == How::Rst { "reset" } else { "closed" }
                    ),
                )
            }
            (Some(How::Fin), None) => failed(
                FailureKind::ClosedAfterHello,
                format!("the server closed the connection after {retry} without answering it"),
            ),
            (None, None) => Verdict {
                outcome: "incomplete",
                kind: None,
                message: format!(
                    "the capture ends {:.3} s after {retry} with no answer and no close",
                    capture_end.since(hello_at)
                ),
            },
        }
    }

    fn after_hello_end(&self) -> String {
        match (self.server.ended, self.client.ended) {
            (Some(How::Rst), _) => "the server then reset the connection".to_owned(),
            (Some(How::Fin), _) => "the server then closed the connection".to_owned(),
            (None, Some(_)) => "the client then gave up".to_owned(),
            (None, None) => "the capture ends there".to_owned(),
        }
    }

    fn end_text(&self, dir: Dir) -> &'static str {
        match self.half_ref(dir).ended {
            Some(How::Rst) => "reset the connection",
            Some(How::Fin) => "closed the connection",
            None => "went silent",
        }
    }

    fn unfinished(&self, what: &str, _capture_end: Timestamp) -> Verdict {
        match &self.end {
            Some((dir, how, _, _)) => Verdict {
                outcome: "failed",
                kind: None,
                message: format!(
                    "{what}; the {} {} the connection",
                    dir.name(),
                    if *how == How::Rst { "reset" } else { "closed" }
                ),
            },
            None => Verdict {
                outcome: "incomplete",
                kind: None,
                message: format!("{what}; the capture ends there"),
            },
        }
    }
}

/// Bytes a fatal alert takes as a TLS 1.3 record: two bytes, the inner
/// content type, and the AEAD tag (8 bytes for the CCM_8 suite, else 16).
fn alert_record_len(suite: CipherSuite) -> usize {
    if suite == CipherSuite(0x1305) {
        2 + 1 + 8
    } else {
        2 + 1 + 16
    }
}

fn failed(kind: FailureKind, message: String) -> Verdict {
    Verdict {
        outcome: "failed",
        kind: Some(kind),
        message,
    }
}

fn first_line(r: &Reply) -> String {
    r.lines.first().cloned().unwrap_or_default()
}

fn keyword(ext: &str) -> String {
    ext.split_whitespace().next().unwrap_or("").to_ascii_uppercase()
}

/// Text in answer to a ClientHello, judged as the live probe judges it.
fn classify_plaintext(bytes: &[u8]) -> Verdict {
    let f = crate::probe::classify_plaintext(bytes);
    failed(f.kind, f.detail)
}

/// What in a ClientHello is known to make some receivers drop it (SPEC §8
/// intolerances): a capture shows one hello, so these are candidates, not
/// a finding; `--bisect` settles it against the live server.
pub(crate) fn intolerance_hints(h: &crate::pcap::report::ClientHelloSeen) -> Vec<String> {
    use hsscan_wire::catalog::{self, GroupKind};
    let mut out = Vec::new();
    // The handshake message: what is on the wire minus the record headers.
    let message = h.bytes.saturating_sub(5 * h.records.max(1));
    if (256..512).contains(&message) {
        out.push(format!(
            "a hello of {} bytes on the wire, its handshake message of {message} in the 256–511 range some load balancers (F5) drop (RFC 7685 pads past it)",
            h.bytes
        ));
    } else if message >= 512 {
        out.push(format!(
            "a hello of {} bytes on the wire ({message} in its handshake message), longer than some middleboxes read",
            h.bytes
        ));
    }
    let pq: Vec<String> = h
        .key_share_groups
        .iter()
        .filter(|g| catalog::group(**g).is_some_and(|i| matches!(i.kind, GroupKind::MlKem | GroupKind::Hybrid)))
        .map(|g| g.name().map_or_else(|| g.hex(), str::to_owned))
        .collect();
    if !pq.is_empty() {
        out.push(format!("a post-quantum key share ({})", pq.join(", ")));
    }
    if h.cipher_suites.len() > 64 {
        out.push(format!(
            "{} cipher suites, more than the 64 Windows 2003 Schannel reads",
            h.cipher_suites.len()
        ));
    }
    if h.records > 1 {
        out.push(format!("the hello split over {} records", h.records));
    }
    out
}
