//! The outcome of talking to a server, typed once (SPEC §3 `failure`):
//! where it stopped ([`Stage`]), why ([`FailureKind`], SPEC §3's closed
//! set), and the evidence. What a kind means for the result — inconclusive,
//! the server's fault, worth another try — is answered here by predicates,
//! so no other module compares kinds, and a new kind is added in one place.
//! Both enums serialise to exactly the kebab-case strings of the contract.

use serde::Serialize;
use std::fmt;

/// Where a connection (or a lookup) stopped: SPEC §3 failure `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Resolving a host or a domain's MX records.
    Dns,
    /// A domain record's summary of its MX hosts' failures.
    Mx,
    Connect,
    Banner,
    Ehlo,
    Starttls,
    Handshake,
    /// This machine or hsscan itself: nothing reached the server, or what
    /// did says nothing about it.
    Local,
}

impl Stage {
    /// Every stage, in SPEC §3 order.
    pub const ALL: &'static [Stage] = &[
        Stage::Dns,
        Stage::Mx,
        Stage::Connect,
        Stage::Banner,
        Stage::Ehlo,
        Stage::Starttls,
        Stage::Handshake,
        Stage::Local,
    ];

    /// The contract's name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dns => "dns",
            Stage::Mx => "mx",
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "ehlo",
            Stage::Starttls => "starttls",
            Stage::Handshake => "handshake",
            Stage::Local => "local",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why it stopped: SPEC §3's closed set of failure kinds. Grow it
/// deliberately, together with the SPEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    Nxdomain,
    NoMx,
    /// RFC 7505 `MX 0 .`: the domain accepts no mail.
    NullMx,
    DnsError,
    Refused,
    Timeout,
    Unreachable,
    /// The server closed or reset the connection during the SMTP dialog.
    Closed,
    /// A 5xx banner or EHLO reply.
    SmtpRejected,
    /// 421, 4.7.0 or a connection-count reply (SPEC §7).
    RateLimited,
    StarttlsAbsent,
    /// 454 or 5xx to STARTTLS.
    StarttlsRejected,
    /// No banner, or TLS bytes, where SMTP was spoken.
    TlsExpected,
    ResetAfterHello,
    ClosedAfterHello,
    TimeoutAfterHello,
    /// A TLS alert; the detail names its description.
    Alert,
    /// Plaintext (such as `220 …`) in answer to a ClientHello.
    PlaintextReply,
    /// Bytes that are neither TLS nor SMTP.
    NotTls,
    InvalidServerHello,
    VersionBelowMinimum,
    NoSharedProtocol,
    NoSharedCipher,
    /// Our own `--max-connections` budget is spent.
    BudgetSpent,
    /// A limit of this machine, e.g. too many open files.
    LocalError,
    /// A bug of ours; the record is still written.
    InternalError,
}

impl FailureKind {
    /// Every kind, in SPEC §3 order.
    pub const ALL: &'static [FailureKind] = &[
        FailureKind::Nxdomain,
        FailureKind::NoMx,
        FailureKind::NullMx,
        FailureKind::DnsError,
        FailureKind::Refused,
        FailureKind::Timeout,
        FailureKind::Unreachable,
        FailureKind::Closed,
        FailureKind::SmtpRejected,
        FailureKind::RateLimited,
        FailureKind::StarttlsAbsent,
        FailureKind::StarttlsRejected,
        FailureKind::TlsExpected,
        FailureKind::ResetAfterHello,
        FailureKind::ClosedAfterHello,
        FailureKind::TimeoutAfterHello,
        FailureKind::Alert,
        FailureKind::PlaintextReply,
        FailureKind::NotTls,
        FailureKind::InvalidServerHello,
        FailureKind::VersionBelowMinimum,
        FailureKind::NoSharedProtocol,
        FailureKind::NoSharedCipher,
        FailureKind::BudgetSpent,
        FailureKind::LocalError,
        FailureKind::InternalError,
    ];

    /// The contract's name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Nxdomain => "nxdomain",
            FailureKind::NoMx => "no-mx",
            FailureKind::NullMx => "null-mx",
            FailureKind::DnsError => "dns-error",
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Closed => "closed",
            FailureKind::SmtpRejected => "smtp-rejected",
            FailureKind::RateLimited => "rate-limited",
            FailureKind::StarttlsAbsent => "starttls-absent",
            FailureKind::StarttlsRejected => "starttls-rejected",
            FailureKind::TlsExpected => "tls-expected",
            FailureKind::ResetAfterHello => "reset-after-hello",
            FailureKind::ClosedAfterHello => "closed-after-hello",
            FailureKind::TimeoutAfterHello => "timeout-after-hello",
            FailureKind::Alert => "alert",
            FailureKind::PlaintextReply => "plaintext-reply",
            FailureKind::NotTls => "not-tls",
            FailureKind::InvalidServerHello => "invalid-server-hello",
            FailureKind::VersionBelowMinimum => "version-below-minimum",
            FailureKind::NoSharedProtocol => "no-shared-protocol",
            FailureKind::NoSharedCipher => "no-shared-cipher",
            FailureKind::BudgetSpent => "budget-spent",
            FailureKind::LocalError => "local-error",
            FailureKind::InternalError => "internal-error",
        }
    }

    /// The kind a contract name stands for (reading back an earlier run's
    /// records); `None` for a name outside the closed set.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// The result says nothing about the server's TLS: status
    /// `inconclusive`, never "no TLS" (SPEC §3, §7). A rate limit or a null
    /// MX is the server declining to be asked; a spent budget, a local
    /// limit or a bug of ours is this side not asking.
    pub fn is_inconclusive(self) -> bool {
        matches!(
            self,
            FailureKind::RateLimited
                | FailureKind::NullMx
                | FailureKind::BudgetSpent
                | FailureKind::LocalError
                | FailureKind::InternalError
        )
    }

    /// The failure may be laid at the server's (or its DNS's) door: false
    /// only for what happened on this side — our budget, this machine's
    /// limits, our bugs — which findings and advice must never blame on
    /// the receiver.
    pub fn blames_server(self) -> bool {
        !matches!(
            self,
            FailureKind::BudgetSpent | FailureKind::LocalError | FailureKind::InternalError
        )
    }

    /// Another try, after a backoff, may well answer differently, so a
    /// caller that retries (an enumeration pass after earlier successes,
    /// SPEC §4) asks this: a rate limit lapses, a timeout may be a lost
    /// packet, a local limit frees up as other connections end, and a
    /// drop right after the hello (reset, close, silence) is as often a
    /// busy or flaky server as a refusal. Refusals that state a reason —
    /// an alert, a rejection reply, a missing STARTTLS — are answers, not
    /// luck; a spent budget never refills within a run.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            FailureKind::RateLimited | FailureKind::Timeout | FailureKind::LocalError
        ) || self.is_drop_after_hello()
    }

    /// The server took the hello and then dropped the connection without a
    /// TLS answer: reset, closed, or silent until the timeout. An
    /// enumeration tells these apart from an alert: the hello may have
    /// broken the server rather than been refused by it.
    pub fn is_drop_after_hello(self) -> bool {
        matches!(
            self,
            FailureKind::ResetAfterHello | FailureKind::ClosedAfterHello | FailureKind::TimeoutAfterHello
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a connection failed and why (SPEC §3 `failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub stage: Stage,
    pub kind: FailureKind,
    /// The evidence: an alert name, a reply, the bytes received.
    pub detail: String,
}

impl Failure {
    pub fn new(stage: Stage, kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            stage,
            kind,
            detail: detail.into(),
        }
    }

    /// Whether this says nothing about the server's TLS (see
    /// [`FailureKind::is_inconclusive`]).
    pub fn is_inconclusive(&self) -> bool {
        self.kind.is_inconclusive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// SPEC §3, copied by hand: the failure stages.
    const SPEC_STAGES: [&str; 8] = [
        "dns",
        "mx",
        "connect",
        "banner",
        "ehlo",
        "starttls",
        "handshake",
        "local",
    ];

    /// SPEC §3, copied by hand: the closed set of failure kinds.
    const SPEC_KINDS: [&str; 26] = [
        "nxdomain",
        "no-mx",
        "null-mx",
        "dns-error",
        "refused",
        "timeout",
        "unreachable",
        "closed",
        "smtp-rejected",
        "rate-limited",
        "starttls-absent",
        "starttls-rejected",
        "tls-expected",
        "reset-after-hello",
        "closed-after-hello",
        "timeout-after-hello",
        "alert",
        "plaintext-reply",
        "not-tls",
        "invalid-server-hello",
        "version-below-minimum",
        "no-shared-protocol",
        "no-shared-cipher",
        "budget-spent",
        "local-error",
        "internal-error",
    ];

    fn serialised<T: Serialize>(v: &T) -> String {
        match serde_json::to_value(v).expect("serialises") {
            serde_json::Value::String(s) => s,
            other => panic!("not a string: {other}"),
        }
    }

    /// Both directions: nothing serialised that SPEC §3 lacks, nothing of
    /// SPEC §3 without a variant.
    fn assert_same_set(got: &[String], spec: &[&str]) {
        let got_set: BTreeSet<&str> = got.iter().map(String::as_str).collect();
        let spec_set: BTreeSet<&str> = spec.iter().copied().collect();
        assert_eq!(got_set.len(), got.len(), "a name serialised twice: {got:?}");
        let extra: Vec<&&str> = got_set.difference(&spec_set).collect();
        let missing: Vec<&&str> = spec_set.difference(&got_set).collect();
        assert!(extra.is_empty(), "not in SPEC §3: {extra:?}");
        assert!(missing.is_empty(), "SPEC §3 names without a variant: {missing:?}");
    }

    #[test]
    fn stages_serialise_to_exactly_the_spec_list() {
        let got: Vec<String> = Stage::ALL.iter().map(serialised).collect();
        assert_same_set(&got, &SPEC_STAGES);
        for s in Stage::ALL {
            assert_eq!(serialised(s), s.as_str());
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    #[test]
    fn kinds_serialise_to_exactly_the_spec_list() {
        let got: Vec<String> = FailureKind::ALL.iter().map(serialised).collect();
        assert_same_set(&got, &SPEC_KINDS);
        for k in FailureKind::ALL {
            assert_eq!(serialised(k), k.as_str());
            assert_eq!(k.to_string(), k.as_str());
            assert_eq!(FailureKind::from_name(k.as_str()), Some(*k));
        }
        assert_eq!(FailureKind::from_name("no answer"), None);
    }

    #[test]
    fn failure_serialises_as_stage_kind_detail() {
        let f = Failure::new(Stage::Local, FailureKind::BudgetSpent, "spent");
        assert_eq!(
            serde_json::to_string(&f).expect("serialises"),
            r#"{"stage":"local","kind":"budget-spent","detail":"spent"}"#
        );
        assert!(f.is_inconclusive());
    }

    #[test]
    fn predicates_follow_the_spec() {
        let inconclusive: Vec<&str> = FailureKind::ALL
            .iter()
            .filter(|k| k.is_inconclusive())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            inconclusive,
            [
                "null-mx",
                "rate-limited",
                "budget-spent",
                "local-error",
                "internal-error"
            ]
        );
        let ours: Vec<&str> = FailureKind::ALL
            .iter()
            .filter(|k| !k.blames_server())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(ours, ["budget-spent", "local-error", "internal-error"]);
        let retryable: Vec<&str> = FailureKind::ALL
            .iter()
            .filter(|k| k.is_retryable())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            retryable,
            [
                "timeout",
                "rate-limited",
                "reset-after-hello",
                "closed-after-hello",
                "timeout-after-hello",
                "local-error"
            ]
        );
        let drops: Vec<&str> = FailureKind::ALL
            .iter()
            .filter(|k| k.is_drop_after_hello())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            drops,
            ["reset-after-hello", "closed-after-hello", "timeout-after-hello"]
        );
    }
}

/// What the server chose for a hello: version, suite and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    pub version: hsscan_wire::ProtocolVersion,
    pub cipher: hsscan_wire::CipherSuite,
    pub group: Option<hsscan_wire::NamedGroup>,
}

/// `status` of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Negotiated,
    Failed,
    Inconclusive,
}

impl Status {
    /// The status of a record that has nothing but `failure` to say:
    /// `inconclusive` when the failure says nothing about the server's TLS.
    pub fn of_failure(failure: &Failure) -> Self {
        if failure.is_inconclusive() {
            Status::Inconclusive
        } else {
            Status::Failed
        }
    }
}
