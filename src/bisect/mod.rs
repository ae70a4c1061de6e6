//! Hello intolerance bisection (SPEC §3 `enumeration.intolerance`, §8):
//! which property of a hello makes a receiver drop it, while a smaller or
//! older hello is answered. The decisions are the planner's ([`planner`],
//! sans-I/O, STYLE §10); this module holds the variant type, the result and
//! the small async driver that sends the planner's hellos through the
//! per-IP gate, one at a time.

pub mod planner;
#[cfg(test)]
mod tests;

use crate::enumerate::Intolerance;
use crate::gate::HostGate;
use crate::hellos::{random32, Prepared};
use crate::probe::{Endpoint, ProbeConfig};
use hsscan_wire::{ClientExtension, ClientHello, EncodeError, ExtensionType, Framing, ProtocolVersion};
use planner::{Planner, Reply};

/// At most this many connections per bisection. A receiver that drops
/// hellos is often a middlebox, and middleboxes are what blocks scanners:
/// sixteen is the widest single search (a hello length between 256 bytes
/// and 4 KiB, twelve halvings, fewer with the usual edges as hints) plus
/// the base hello and one check for each property tried before it.
pub const MAX_CONNECTIONS: u32 = 16;

/// One hello the planner wants sent: the ClientHello, its record version
/// and how it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub hello: ClientHello,
    pub record_version: ProtocolVersion,
    /// Handshake bytes per record when the hello is split over records.
    pub record_size: Option<usize>,
    /// Sent in two TCP writes (with a pause between them).
    pub two_writes: bool,
}

impl Variant {
    pub fn new(hello: ClientHello, record_version: ProtocolVersion) -> Self {
        Self {
            hello,
            record_version,
            record_size: None,
            two_writes: false,
        }
    }

    /// The variant of a prepared hello (its first record decoded), e.g. a
    /// sender profile's exact hello.
    pub fn from_prepared(p: &Prepared) -> Option<Self> {
        let bytes = p.writes.concat();
        let record_version = ProtocolVersion(u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]));
        let mut d = hsscan_wire::Deframer::new(hsscan_wire::Side::Client);
        d.push(&bytes).ok()?;
        let hello = match d.next_event().ok()? {
            Some(hsscan_wire::Event::ClientHello(h)) => h,
            _ => return None,
        };
        let framing = d.hello_framing().unwrap_or_default();
        Some(Self {
            hello,
            record_version,
            record_size: (framing.records > 1).then(|| framing.bytes / framing.records.max(1)),
            two_writes: p.writes.len() > 1,
        })
    }

    /// Its suites, signalling values (the renegotiation SCSV) left out, as
    /// the scan record's `cipher_count` counts them.
    pub fn suite_count(&self) -> usize {
        self.hello.cipher_suites.iter().filter(|s| !s.is_signal()).count()
    }

    /// Its length in one record, header included.
    pub fn record_bytes(&self) -> usize {
        self.hello.to_record(self.record_version).map_or(0, |r| r.len())
    }

    /// The bytes to send, with what the hello offered.
    pub fn prepare(&self) -> Result<Prepared, EncodeError> {
        let mut hello = self.hello.clone();
        hello.random = random32();
        let record = hello.to_record(self.record_version)?;
        let bytes = match self.record_size {
            Some(size) => {
                let message = hello.to_bytes()?;
                Framing::records_of(self.record_version, size, message.len())
                    .frame(hsscan_wire::ContentType::HANDSHAKE, &message)?
                    .concat()
            }
            None => record.clone(),
        };
        let writes = if self.two_writes {
            let (a, b) = bytes.split_at(bytes.len() / 2);
            vec![a.to_vec(), b.to_vec()]
        } else {
            vec![bytes]
        };
        let groups = match hello.extension(ExtensionType::SUPPORTED_GROUPS) {
            Some(ClientExtension::SupportedGroups(g)) => g.clone(),
            _ => Vec::new(),
        };
        let max_version = hello
            .offered_versions()
            .into_iter()
            .max_by_key(|v| hsscan_wire::catalog::version_rank(*v))
            .unwrap_or(hello.legacy_version);
        Ok(Prepared {
            hello_bytes: record.len(),
            cipher_count: hello.cipher_suites.iter().filter(|s| !s.is_signal()).count(),
            writes,
            max_version,
            min_version: ProtocolVersion::SSL3,
            suites: hello.cipher_suites.clone(),
            groups,
            retry: None,
        })
    }
}

/// What a bisection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bisection {
    /// The property that explains the failure (empty: none found).
    pub intolerance: Vec<Intolerance>,
    /// One sentence: what was bisected and what came of it.
    pub summary: String,
    /// False when the budget or unclear answers cut the search short.
    pub complete: bool,
    pub connections: u32,
}

/// Runs one bisection through `gate`.
pub async fn bisect(gate: &HostGate, endpoint: &Endpoint, probe: &ProbeConfig, mut planner: Planner) -> Bisection {
    loop {
        let offers = planner.next_offers();
        if offers.is_empty() {
            break;
        }
        for offer in offers {
            match offer.variant.prepare() {
                Ok(hello) => match gate.probe(endpoint, &hello, probe).await {
                    Some(r) => planner.record(offer.id, Reply::Answered(&r)),
                    None => planner.record(offer.id, Reply::NotSent("the --max-connections budget is spent")),
                },
                Err(e) => planner.record(offer.id, Reply::NotSent(&format!("building a hello: {e}"))),
            }
        }
    }
    planner.finish()
}

/// What the endpoint scan hands the bisection.
pub struct Scope<'a> {
    pub gate: &'a HostGate,
    pub endpoint: &'a Endpoint,
    /// Bisect even when no sender's hello was dropped (`--bisect`).
    pub requested: bool,
    pub senders: &'a crate::senders::Senders,
    pub probe: &'a crate::probe::ProbeConfig,
    /// The day advice expires from (its removal-date comments).
    pub today: time::Date,
    pub sni: Option<&'a str>,
    /// What a hello of the scan negotiated.
    pub known: Option<(ProtocolVersion, hsscan_wire::CipherSuite)>,
    /// Every hello of the scan was dropped but the small hello
    /// ([`crate::hellos::small`], this many bytes) was answered: `known`
    /// is what it negotiated.
    pub small: Option<usize>,
    pub host: &'a str,
    pub port: u16,
    pub domains: &'a [String],
}

/// Whether a sender got no TLS because its hello was dropped (and no
/// other hello was answered): what the small hello is tried for.
pub fn dropped_at_the_hello(r: &crate::senders::SenderResult) -> bool {
    r.outcome == crate::senders::Outcome::NoTls
        && r.reason
            .as_ref()
            .is_some_and(|x| x.kind == crate::senders::ReasonKind::Dropped)
}

/// Bisects the first sender hello dropped with `hello-intolerance` (after
/// the sender recheck; or dropped with every other hello of the scan,
/// when the small hello was answered: the reason becomes
/// `hello-intolerance` if the bisection names a property), or, with
/// `--bisect`, the headline sender's hello
/// (else the modern hello). Names the property in that sender's reason,
/// adds the advice for it and a finding, and returns the entries of
/// `intolerance`.
pub async fn for_endpoint(
    scope: &Scope<'_>,
    senders: &mut [crate::senders::SenderResult],
    advice: &mut Vec<crate::senders::advice::Advice>,
    findings: &mut Vec<crate::finding::Finding>,
) -> Vec<Intolerance> {
    use crate::finding::{Finding, Severity};
    use crate::senders::{Outcome, ReasonKind};
    // A sender refused with "no shared cipher" although it offers, at a
    // version it offers, the suite the server chose for another hello:
    // the server may read only part of its hello.
    let offers_known = |r: &crate::senders::SenderResult| {
        let Some((v, suite)) = scope.known else {
            return false;
        };
        let rank = hsscan_wire::catalog::version_rank;
        scope
            .senders
            .profiles
            .iter()
            .find(|p| p.id == r.sender)
            .and_then(|p| p.prepare(scope.sni).ok())
            .is_some_and(|h| {
                h.suites.contains(&suite) && rank(h.min_version) <= rank(v) && rank(v) <= rank(h.max_version)
            })
    };
    let dropped = senders.iter().position(|r| {
        r.outcome == Outcome::NoTls
            && r.reason.as_ref().is_some_and(|x| match x.kind {
                ReasonKind::HelloIntolerance => true,
                ReasonKind::Dropped => scope.small.is_some(),
                ReasonKind::NoSharedCipher => offers_known(r),
                _ => false,
            })
    });
    if dropped.is_none() && !scope.requested {
        return Vec::new();
    }
    let Some(known) = scope.known else {
        if scope.requested {
            findings.push(Finding::new(
                "bisection-not-run",
                Severity::Info,
                "no hello was answered, so there is nothing to bisect against",
                "",
            ));
        }
        return Vec::new();
    };
    let index = dropped.or_else(|| (!senders.is_empty()).then_some(0));
    let profile = index
        .and_then(|i| senders.get(i))
        .and_then(|r| scope.senders.profiles.iter().find(|p| p.id == r.sender));
    let prepared = match profile {
        Some(p) => p.prepare(scope.sni),
        None => crate::hellos::modern(scope.sni),
    };
    let Some(subject) = prepared.ok().as_ref().and_then(Variant::from_prepared) else {
        return Vec::new();
    };
    let label = match profile {
        Some(p) => format!(
            "the hello of {} ({} bytes, {} suites)",
            p.id,
            subject.record_bytes(),
            subject.suite_count()
        ),
        None => format!("the modern hello ({} bytes)", subject.record_bytes()),
    };
    let subject_bytes = subject.record_bytes();
    let subject_suites = subject.suite_count();
    let planner = Planner::new(subject, label, known, dropped.is_some());
    let b = bisect(scope.gate, scope.endpoint, scope.probe, planner).await;
    let Some(found) = b.intolerance.first() else {
        findings.push(Finding::new(
            "no-intolerance",
            Severity::Info,
            b.summary.clone(),
            format!("{} connections", b.connections),
        ));
        return Vec::new();
    };
    findings.push(Finding::new(
        "hello-intolerance",
        Severity::Medium,
        format!(
            "the server drops hellos because of their {}: {}",
            found.property, found.evidence
        ),
        format!("bisection, {} connections", b.connections),
    ));
    if let (Some(i), Some(p)) = (index, profile) {
        if let Some(r) = senders.get_mut(i) {
            if r.outcome == Outcome::NoTls {
                let mut flipped = false;
                if let Some(reason) = r.reason.as_mut() {
                    let (v, suite) = known;
                    let detail = match reason.kind {
                        // Every hello of the scan was dropped; the small one was not.
                        ReasonKind::Dropped => Some(format!(
                            "the server drops this sender's hello ({} bytes) and every other hello of the scan, but answers a small one ({} bytes)",
                            subject_bytes,
                            scope.small.unwrap_or(0)
                        )),
                        ReasonKind::NoSharedCipher if matches!(found.property, "suite-position" | "suite-count") => {
                            Some(format!(
                                "the server refuses this sender's hello ({} bytes, {} suites) although it offers {}, which the server chose at {} for another hello",
                                subject_bytes,
                                subject_suites,
                                suite.name().unwrap_or("its suite"),
                                v.name().unwrap_or("its version")
                            ))
                        }
                        _ => None,
                    };
                    match detail {
                        Some(d) => {
                            reason.kind = ReasonKind::HelloIntolerance;
                            reason.detail = d;
                            flipped = true;
                        }
                        // Refused for another reason than what was bisected:
                        // the finding says what the bisection found.
                        None if reason.kind != ReasonKind::HelloIntolerance => return b.intolerance,
                        None => {}
                    }
                    reason.detail = format!(
                        "{}; bisection names the {}: {}",
                        reason.detail, found.property, found.evidence
                    );
                }
                let facts = crate::senders::advice::Facts {
                    host: scope.host,
                    port: scope.port,
                    domains: scope.domains,
                    best_version: Some(known.0),
                    server_suites: vec![known.1],
                    today: scope.today,
                    sni: scope.sni,
                };
                let mut add = crate::senders::advice::for_intolerance(p, found, known.1, &facts);
                verify(scope, p, found, known.1, &mut add).await;
                if flipped {
                    // The advice given for the reason the sender had
                    // before answers a question that no longer stands.
                    advice.retain(|a| a.for_sender != p.id);
                }
                // The bisected advice goes before the generic advice for this sender.
                let at = advice.iter().position(|a| a.for_sender == p.id).unwrap_or(advice.len());
                for (k, a) in add.into_iter().enumerate() {
                    advice.insert(at + k, a);
                }
            }
        }
    }
    b.intolerance
}

/// Tries the hello an advised sender change would send (one connection
/// per advice that changes the hello) and records what it showed.
async fn verify(
    scope: &Scope<'_>,
    p: &crate::senders::Profile,
    found: &Intolerance,
    suite: hsscan_wire::CipherSuite,
    advice: &mut [crate::senders::advice::Advice],
) {
    for a in advice.iter_mut() {
        if a.expect != Some(crate::senders::advice::Expect::Tls) {
            continue;
        }
        let Some((_, changed)) = crate::senders::advice::sender_change(p, found, suite, scope.sni) else {
            continue;
        };
        let Ok(hello) = changed.prepare(scope.sni) else {
            continue;
        };
        if let Some(r) = scope.gate.probe(scope.endpoint, &hello, scope.probe).await {
            a.verified_by = Some(if r.answered() {
                format!(
                    "a probe with the hello this change makes the sender send ({} bytes, {} suites): answered",
                    hello.hello_bytes, hello.cipher_count
                )
            } else {
                format!(
                    "a probe with the hello this change makes the sender send ({} bytes): not answered either",
                    hello.hello_bytes
                )
            });
            if !r.answered() {
                a.expect = None;
            }
        }
    }
}
