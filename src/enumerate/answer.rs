//! What one enumeration hello drew, judged against the hello itself: a
//! ServerHello only counts when it selects a version, a suite (and a
//! group) the hello offered. Everything the planner decides starts here.

use super::planner::HelloSpec;
use crate::outcome::{Failure, FailureKind, Stage};
use crate::probe::ProbeResult;
use hsscan_wire::catalog;
use hsscan_wire::{AlertDescription, CipherSuite, NamedGroup, ProtocolVersion, ServerKeyExchange};

/// One answer, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello at the offered version choosing this offered suite, or
    /// a HelloRetryRequest naming it. `group`: the key share group of a
    /// HelloRetryRequest or TLS 1.3 ServerHello, or the curve of a TLS 1.2
    /// ServerKeyExchange.
    Chose {
        suite: CipherSuite,
        group: Option<NamedGroup>,
    },
    /// An SSLv2 SERVER-HELLO (answer to the SSLv2 hello only) and the
    /// cipher specs it shares with us.
    Sslv2(Vec<hsscan_wire::Sslv2CipherSpec>),
    /// A ServerHello at a lower version than the hello's highest.
    Fallback(ProtocolVersion),
    /// A fatal alert: a clean refusal.
    Alert(AlertDescription),
    /// A reset, a close or silence right after the hello: a refusal by some
    /// servers and load balancers, or a server that has turned hostile. The
    /// planner checks which before it believes it.
    Dropped(&'static str),
    /// Nothing that says anything about this hello: a 421, garbage, a
    /// connection that failed before the hello, a ServerHello selecting
    /// what was never offered, a local error. Retried, never a refusal.
    Unclear(String),
    /// Our own connection budget is spent: nothing more may be sent.
    Budget,
}

impl Answer {
    /// Judges `r`, the answer to `spec`.
    pub fn judge(spec: &HelloSpec, r: &ProbeResult) -> Self {
        let f = &r.flight;
        // The probe found the answer invalid before anything was recorded.
        if let Some(bad) = r.failure.as_ref().filter(|f| f.kind == FailureKind::InvalidServerHello) {
            return Answer::Unclear(bad.detail.clone());
        }
        if spec.version == ProtocolVersion::SSL2 {
            if let Some(h) = &f.sslv2 {
                return Answer::Sslv2(h.cipher_specs.clone());
            }
        } else if let Some(h) = f.retry_request.as_ref() {
            if !spec.suites.contains(&h.cipher_suite) {
                return Answer::Unclear(format!(
                    "a HelloRetryRequest chose {}, which was not offered",
                    h.cipher_suite.hex()
                ));
            }
            let group = h.key_share_group();
            if let Some(g) = group.filter(|g| !spec.groups.contains(g)) {
                return Answer::Unclear(format!(
                    "a HelloRetryRequest asked for group {}, which was not offered",
                    g.hex()
                ));
            }
            return Answer::Chose {
                suite: h.cipher_suite,
                group,
            };
        } else if let Some(h) = f.server_hello.as_ref() {
            let got = h.selected_version();
            let rank = catalog::version_rank;
            if got != spec.version {
                return if rank(got) < rank(spec.version) && got != ProtocolVersion::SSL2 {
                    Answer::Fallback(got)
                } else {
                    Answer::Unclear(format!(
                        "a ServerHello selected {}, above the hello's {}",
                        got.hex(),
                        super::label(spec.version)
                    ))
                };
            }
            if !spec.suites.contains(&h.cipher_suite) {
                return Answer::Unclear(format!(
                    "a ServerHello chose {}, which was not offered",
                    h.cipher_suite.hex()
                ));
            }
            let group = h
                .key_share_group()
                .or_else(|| f.server_key_exchange.as_ref().and_then(ServerKeyExchange::group));
            return Answer::Chose {
                suite: h.cipher_suite,
                group,
            };
        } else if f.sslv2.is_some() {
            return Answer::Unclear("an SSLv2 SERVER-HELLO answered a TLS hello".to_owned());
        }
        if let Some(a) = f.alerts.last() {
            return Answer::Alert(a.description);
        }
        match r.failure.as_ref() {
            Some(failure) => Self::from_failure(failure),
            None => Answer::Unclear("no answer and no failure".to_owned()),
        }
    }

    /// A failure with no server answer.
    pub fn from_failure(f: &Failure) -> Self {
        match f.kind {
            FailureKind::BudgetSpent => Answer::Budget,
            FailureKind::ResetAfterHello => Answer::Dropped("connection reset after the hello"),
            FailureKind::TimeoutAfterHello => Answer::Dropped("no answer to the hello"),
            FailureKind::ClosedAfterHello => Answer::Dropped("connection closed after the hello"),
            FailureKind::Alert if f.stage == Stage::Handshake => Answer::Unclear(format!("{}: {}", f.kind, f.detail)),
            _ => Answer::Unclear(format!("{} at {}: {}", f.kind, f.stage, f.detail)),
        }
    }

    /// One line for traces and evidence.
    pub fn describe(&self) -> String {
        match self {
            Answer::Chose { suite, .. } => format!("chose {}", suite.name().map_or_else(|| suite.hex(), str::to_owned)),
            Answer::Sslv2(specs) => format!("SSLv2 SERVER-HELLO with {} cipher specs", specs.len()),
            Answer::Fallback(v) => format!("fell back to {}", super::label(*v)),
            Answer::Alert(a) => format!("alert {}", hsscan_wire::Alert::fatal(*a)),
            Answer::Dropped(how) => (*how).to_owned(),
            Answer::Unclear(why) => format!("unclear: {why}"),
            Answer::Budget => "budget spent".to_owned(),
        }
    }
}
