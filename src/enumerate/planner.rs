//! The enumeration planner (SPEC §4, STYLE §10): a synchronous state
//! machine that says which hellos may go out now and takes what came back.
//! It owns no socket and no clock; the async driver in `super` does.
//!
//! ```text
//! loop {
//!     for offer in planner.next_offers() { send it after offer.delay }
//!     planner.record(id, reply)            // one per offer, in any order
//! } until planner.is_done();  planner.finish()
//! ```
//!
//! Passes run in stages: SSLv2 beside TLS 1.2 (which settles whether the
//! server reads past the 64th suite), then TLS 1.3, 1.1 and 1.0 side by
//! side, then SSLv3, then the group passes and the fallback SCSV probe,
//! which need the suites found. Within a stage the passes are independent
//! and their hellos go out together.
//!
//! Unsure is unsure: every pass's answers go through a guard. An answer
//! that says nothing about the hello (a 421, garbage, a failed connect, a
//! ServerHello choosing what was never offered) is retried with backoff;
//! a drop after the hello is believed as a refusal only when a hello known
//! to work still works and the dropped hello is dropped again. When that
//! cannot be settled the pass stops with an `unsure` reason, and its
//! protocol is reported incomplete — never a shorter list presented as
//! exact.

use super::answer::Answer;
use super::suites::SuitePass;
use super::{label, tls12_curves, tls13_groups, Codepoint, Features, ProtocolDetail, Unsure, WINDOW};
use crate::finding::Finding;
use crate::hellos::{self, HelloOptions, Prepared};
use crate::outcome::Failure;
use crate::probe::ProbeResult;
use hsscan_wire::catalog;
use hsscan_wire::{
    AlertDescription, CipherSuite, CompressionMethod, EncodeError, ExtensionType, NamedGroup, ProtocolVersion,
    ServerExtension, ServerHello, ServerKeyExchange,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Identifies an offer until its reply is recorded.
pub type OfferId = u32;

/// The protocols of an enumeration, lowest first.
pub const PROTOCOLS: [ProtocolVersion; 6] = [
    ProtocolVersion::SSL2,
    ProtocolVersion::SSL3,
    ProtocolVersion::TLS10,
    ProtocolVersion::TLS11,
    ProtocolVersion::TLS12,
    ProtocolVersion::TLS13,
];

/// Retries of a hello whose answer was unclear (after the first try).
const RETRIES: u32 = 2;

/// A hello to build: the SSLv2 CLIENT-HELLO when `version` is SSLv2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloSpec {
    pub version: ProtocolVersion,
    pub suites: Vec<CipherSuite>,
    pub groups: Vec<NamedGroup>,
    pub options: HelloOptions,
}

impl HelloSpec {
    pub fn new(version: ProtocolVersion, suites: Vec<CipherSuite>, groups: Vec<NamedGroup>) -> Self {
        Self {
            version,
            suites,
            groups,
            options: HelloOptions::default(),
        }
    }

    /// The bytes to send.
    pub fn prepare(&self, sni: Option<&str>) -> Result<Prepared, EncodeError> {
        if self.version == ProtocolVersion::SSL2 {
            return hellos::sslv2();
        }
        hellos::for_version_with(self.version, &self.suites, &self.groups, &[], sni, &self.options)
    }
}

/// A hello that may go out now, not before `delay` has passed.
#[derive(Debug, Clone)]
pub struct Offer {
    pub id: OfferId,
    pub spec: HelloSpec,
    pub delay: Duration,
    /// When more hellos may go out than there are connections to the
    /// host, those of longer passes first (higher goes first): the
    /// longest pass sets the enumeration's length.
    pub priority: u8,
}

/// What came of an offer.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// The probe ran (whatever it found).
    Answered(&'a ProbeResult),
    /// It never left: the budget was spent, or the hello did not encode.
    NotSent(&'a Failure),
}

/// What the planner learnt beyond one pass's suites: shared by the passes.
#[derive(Debug, Default)]
pub struct Shared {
    /// Whether the server reads suites past the 64th: proven by a choice
    /// made past that position, disproven by one found only beyond it.
    pub reads_all: Option<bool>,
    /// Who decided at the last protocol where that was settled (true: the
    /// server). Only a hint for spending hellos, never reported.
    pub last_server_order: Option<bool>,
    /// The group of the first HelloRetryRequest to a TLS 1.3 hello that
    /// offered every group: the group pass's first answer, already known.
    pub first_retry_group: Option<NamedGroup>,
    pub findings: Vec<Finding>,
    /// A hello known to draw a ServerHello, to tell a refusal from a
    /// server that stopped answering.
    control: Option<HelloSpec>,
    /// A pass could not settle its answers: later ones do not retry.
    hostile: bool,
    /// A hello that worked before failed once: drops believed without a
    /// control (SSLv2) are not sure.
    suspicious: bool,
    budget_spent: bool,
    /// Each chain seen, with the version of the hello that showed it.
    pub chains: Vec<(ProtocolVersion, Vec<Vec<u8>>)>,
    pub features: Features,
    pub dh_bits: Option<usize>,
    /// Base of the retry backoff (doubling).
    backoff: Duration,
    /// The version the quick check negotiated.
    pub known_version: Option<ProtocolVersion>,
    /// A special key exchange family broke a hello somewhere.
    pub special_broke: bool,
    /// Special families answered on their own, and those refused after
    /// one of them broke a hello (suites::families).
    pub good_families: std::collections::BTreeSet<&'static str>,
    pub bad_families: std::collections::BTreeSet<&'static str>,
    /// Protocols with a suite found so far.
    pub supported: Vec<ProtocolVersion>,
    /// Protocols whose suite passes (every lane) have finished: what they
    /// learnt is final.
    pub finished: Vec<ProtocolVersion>,
    /// Protocols whose lead suite pass (the one lanes split off) has finished.
    pub leads_done: Vec<ProtocolVersion>,
}

/// A pass's next move.
pub enum Step {
    Send(HelloSpec),
    /// Nothing to send until another pass has finished (TLS 1.2).
    Wait,
    /// Waiting for nothing, with nothing to send: finished.
    Done,
}

/// How a guarded offer stands.
#[derive(Debug, Clone)]
enum Guard {
    /// The pass may be asked for its next hello.
    Idle,
    /// Out: the pass's own hello (`repeat`: sent again after a control).
    Sent {
        spec: HelloSpec,
        attempt: u32,
        repeat: bool,
    },
    /// Out: the control hello, after `original` was dropped.
    Control {
        original: HelloSpec,
        attempt: u32,
        dropped: &'static str,
    },
    /// To send after `delay`.
    Queued {
        spec: HelloSpec,
        attempt: u32,
        repeat: bool,
        delay: Duration,
        control_for: Option<(HelloSpec, &'static str)>,
    },
}

enum PassKind {
    Sslv2(Sslv2Pass),
    Suites(Box<SuitePass>),
    Groups(GroupPass),
    Scsv(ScsvPass),
}

struct Slot {
    pass: PassKind,
    guard: Guard,
    /// Connections this pass made.
    connections: u32,
    unsure: Option<String>,
    done: bool,
}

impl Slot {
    fn new(pass: PassKind) -> Self {
        Self {
            pass,
            guard: Guard::Idle,
            connections: 0,
            unsure: None,
            done: false,
        }
    }
}

/// Which pass goes first when hellos wait for a connection. TLS 1.2, the
/// longest, until it has split into lanes; then every pass alike, first
/// come first served, so that all progress together (the lanes are as
/// long as the other passes); single hellos last.
fn priority(pass: &PassKind) -> u8 {
    match pass {
        PassKind::Suites(p) if p.version() == ProtocolVersion::TLS12 && p.may_split() => 3,
        PassKind::Suites(_) | PassKind::Groups(_) => 2,
        PassKind::Sslv2(_) | PassKind::Scsv(_) => 1,
    }
}

/// The SSLv2 pass: one CLIENT-HELLO offering every cipher spec; the
/// SERVER-HELLO lists every spec the server shares with us.
#[derive(Default)]
struct Sslv2Pass {
    sent: bool,
    /// The answer was a drop, believed without a control.
    dropped: bool,
    result: Option<(bool, String, Vec<Codepoint>)>,
}

/// Groups by HelloRetryRequest (TLS 1.3) or ServerKeyExchange (TLS 1.2).
struct GroupPass {
    version: ProtocolVersion,
    suites: Vec<CipherSuite>,
    remaining: Vec<NamedGroup>,
    found: Vec<NamedGroup>,
    /// The curve of an ECDSA certificate that must stay offered at TLS
    /// 1.2 (RFC 8422 §5.1: otherwise the server cannot use it), last.
    keep: Option<NamedGroup>,
    finished: bool,
}

/// TLS_FALLBACK_SCSV: a hello below the best version, flagged a fallback.
struct ScsvPass {
    spec: HelloSpec,
    sent: bool,
    result: Option<bool>,
}

/// Everything the enumeration found.
#[derive(Debug)]
pub struct Outcome {
    pub protocols: BTreeMap<&'static str, Option<bool>>,
    pub ciphers: BTreeMap<&'static str, Vec<Codepoint>>,
    pub complete: BTreeMap<&'static str, bool>,
    pub unsure: Vec<Unsure>,
    pub server_preference: BTreeMap<&'static str, Option<bool>>,
    pub details: BTreeMap<&'static str, ProtocolDetail>,
    pub groups: Vec<NamedGroup>,
    pub features: Features,
    pub dh_bits: Option<usize>,
    pub findings: Vec<Finding>,
    /// Each chain seen, with the version of the hello that showed it.
    pub chains: Vec<(ProtocolVersion, Vec<Vec<u8>>)>,
}

/// The planner.
pub struct Planner {
    shared: Shared,
    /// Index of the stage under way.
    stage: usize,
    slots: Vec<Slot>,
    /// Offer id → slot index.
    out: BTreeMap<OfferId, usize>,
    next_id: OfferId,
    /// Finished suite passes, by protocol.
    suites_done: BTreeMap<&'static str, super::suites::PassResult>,
    /// The SSLv2 pass: supported, evidence, specs, connections, unsure, dropped.
    #[allow(clippy::type_complexity)]
    sslv2: Option<(bool, String, Vec<Codepoint>, u32, Option<String>, bool)>,
    groups: Vec<NamedGroup>,
    group_unsure: Vec<Unsure>,
    /// Curve of the ECDSA leaf seen, if any, and whether an RSA leaf was seen.
    ec_leaf_curve: Option<NamedGroup>,
    rsa_leaf: bool,
    sslv2_rechecked: bool,
    /// Connections the driver may have open at once (`--per-host`): with
    /// more than one, every suite pass starts at once (see [`Planner::new`]).
    parallel: usize,
    groups13_started: bool,
}

impl Planner {
    /// `known`: a (version, suite) the quick check negotiated, the first
    /// control hello. `backoff`: the first retry's wait (then doubling).
    /// `parallel`: connections that may be open at once. With one, the
    /// passes run in stages, each learning from the ones before. With
    /// more, every suite pass starts at once (the TLS 1.3 group pass as
    /// soon as TLS 1.3's suites are known): a pass beside TLS 1.2 takes
    /// the suites it finds at once but holds any answer that decides its
    /// course until TLS 1.2 has finished (`SuitePass::deferred`), so it
    /// ends exactly as it would have after TLS 1.2 — a far server costs
    /// the longest pass, not the sum of them.
    pub fn new(known: Option<(ProtocolVersion, CipherSuite)>, backoff: Duration, parallel: usize) -> Self {
        let control = known.map(|(v, s)| control_spec(v, s));
        let mut p = Self {
            shared: Shared {
                control,
                backoff,
                known_version: known.map(|(v, _)| v),
                ..Shared::default()
            },
            stage: 0,
            slots: Vec::new(),
            out: BTreeMap::new(),
            next_id: 0,
            suites_done: BTreeMap::new(),
            sslv2: None,
            groups: Vec::new(),
            group_unsure: Vec::new(),
            ec_leaf_curve: None,
            rsa_leaf: false,
            sslv2_rechecked: false,
            parallel: parallel.max(1),
            groups13_started: false,
        };
        p.start_stage();
        p
    }

    /// The passes under way, for a progress line: `TLSv1.2 (2 lanes), TLSv1.0, groups`.
    pub fn running(&self) -> String {
        let mut names: Vec<(String, usize)> = Vec::new();
        for s in self.slots.iter().filter(|s| !s.done) {
            let name = match &s.pass {
                PassKind::Suites(p) => label(p.version()).to_owned(),
                PassKind::Groups(p) => format!("{} groups", label(p.version)),
                PassKind::Sslv2(_) => "SSLv2".to_owned(),
                PassKind::Scsv(_) => "fallback SCSV".to_owned(),
            };
            match names.iter_mut().find(|(n, _)| *n == name) {
                Some((_, k)) => *k += 1,
                None => names.push((name, 1)),
            }
        }
        let parts: Vec<String> = names
            .into_iter()
            .map(|(n, k)| if k > 1 { format!("{n} ({k} lanes)") } else { n })
            .collect();
        parts.join(", ")
    }

    /// Whether the passes run side by side (more than one connection at once).
    fn side_by_side(&self) -> bool {
        self.parallel > 1
    }

    /// The number of stages.
    fn stages(&self) -> usize {
        if self.side_by_side() {
            3
        } else {
            7
        }
    }

    /// Whether every pass has finished.
    pub fn is_done(&self) -> bool {
        self.stage >= self.stages()
    }

    /// The hellos that may go out now (several when independent).
    pub fn next_offers(&mut self) -> Vec<Offer> {
        let mut offers = Vec::new();
        loop {
            // A pass that finishes can let others move on (TLS 1.2's end
            // releases the passes waiting on it; TLS 1.3's starts its group
            // pass): ask every pass again until nothing changes.
            loop {
                // Before the offers (a pass splits between hellos) and after
                // them (a pass that has just said it is done).
                let split = self.after_finished_passes();
                let before = offers.len();
                for i in 0..self.slots.len() {
                    if let Some(offer) = self.offer_of(i) {
                        offers.push(offer);
                    }
                }
                let finished = self.after_finished_passes();
                if !split && !finished && offers.len() == before {
                    break;
                }
            }
            if !offers.is_empty() || self.is_done() {
                return offers;
            }
            if self.slots.iter().all(|s| s.done) {
                self.end_stage();
                self.stage += 1;
                self.start_stage();
                continue;
            }
            // Something is out: wait for its reply.
            return offers;
        }
    }

    /// What finished passes start or release; whether anything changed.
    fn after_finished_passes(&mut self) -> bool {
        let mut changed = false;
        if self.side_by_side() && self.stage == 0 {
            // A TLS 1.2 pass that has shown the client decides splits into
            // as many lanes as connections may be open at once.
            let mut lanes = Vec::new();
            for s in &mut self.slots {
                if let (PassKind::Suites(p), false, Guard::Idle) = (&mut s.pass, s.done, &s.guard) {
                    lanes.extend(p.split_off(self.parallel));
                }
            }
            for lane in lanes {
                self.slots.push(Slot::new(PassKind::Suites(Box::new(lane))));
                changed = true;
            }
        }
        for s in &self.slots {
            if let PassKind::Suites(p) = &s.pass {
                if s.done && !p.is_lane() && !self.shared.leads_done.contains(&p.version()) {
                    self.shared.leads_done.push(p.version());
                    changed = true;
                }
            }
        }
        for v in PROTOCOLS {
            if self.shared.finished.contains(&v) {
                continue;
            }
            let mut lanes = self
                .slots
                .iter()
                .filter(|s| matches!(&s.pass, PassKind::Suites(p) if p.version() == v))
                .peekable();
            if lanes.peek().is_some() && lanes.all(|s| s.done) {
                self.shared.finished.push(v);
                changed = true;
            }
        }
        // The TLS 1.3 group pass, the longest chain of hellos that each
        // wait for the one before, needs one TLS 1.3 suite: it starts with
        // the first found, beside the rest of the TLS 1.3 suite pass.
        if self.side_by_side() && self.stage == 0 && !self.groups13_started {
            let found = self.slots.iter().find_map(|s| match &s.pass {
                PassKind::Suites(p) if (s.done || !p.found().is_empty()) && p.version() == ProtocolVersion::TLS13 => {
                    Some(p.found().to_vec())
                }
                _ => None,
            });
            if let Some(found) = found {
                self.groups13_started = true;
                if let Some(pass) = self.tls13_group_pass(found) {
                    self.slots.push(Slot::new(PassKind::Groups(pass)));
                    changed = true;
                }
            }
        }
        changed
    }

    fn offer_of(&mut self, i: usize) -> Option<Offer> {
        let slot = self.slots.get_mut(i)?;
        if slot.done {
            return None;
        }
        let priority = priority(&slot.pass);
        let (spec, delay) = match std::mem::replace(&mut slot.guard, Guard::Idle) {
            Guard::Idle => match step(&mut slot.pass, &mut self.shared) {
                Step::Wait => return None,
                Step::Done => {
                    slot.done = true;
                    return None;
                }
                Step::Send(spec) => {
                    if self.shared.budget_spent {
                        slot.unsure = Some("the connection budget is spent".to_owned());
                        slot.done = true;
                        return None;
                    }
                    slot.guard = Guard::Sent {
                        spec: spec.clone(),
                        attempt: 0,
                        repeat: false,
                    };
                    (spec, Duration::ZERO)
                }
            },
            Guard::Queued {
                spec,
                attempt,
                repeat,
                delay,
                control_for,
            } => {
                if let Some((original, dropped)) = control_for {
                    slot.guard = Guard::Control {
                        original,
                        attempt,
                        dropped,
                    };
                } else {
                    slot.guard = Guard::Sent {
                        spec: spec.clone(),
                        attempt,
                        repeat,
                    };
                }
                (spec, delay)
            }
            other => {
                // Out already: nothing new for this pass.
                slot.guard = other;
                return None;
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        self.out.insert(id, i);
        Some(Offer {
            id,
            spec,
            delay,
            priority,
        })
    }

    /// Takes the reply to offer `id`.
    pub fn record(&mut self, id: OfferId, reply: Reply<'_>) {
        let Some(i) = self.out.remove(&id) else { return };
        let Some(slot) = self.slots.get_mut(i) else { return };
        let guard = std::mem::replace(&mut slot.guard, Guard::Idle);
        let spec = match &guard {
            Guard::Sent { spec, .. } => spec.clone(),
            Guard::Control { .. } => self
                .shared
                .control
                .clone()
                .unwrap_or_else(|| control_spec(ProtocolVersion::TLS12, CipherSuite(0))),
            _ => return,
        };
        let answer = match reply {
            Reply::Answered(r) => {
                slot.connections += 1;
                // A leaf seen before says nothing new: parse only new ones
                // (most answers of an enumeration carry the same chain).
                let new_leaf = r
                    .flight
                    .certificates
                    .first()
                    .filter(|c| !self.shared.chains.iter().any(|(_, k)| k.first() == Some(*c)));
                observe(&mut self.shared, &spec, r);
                if let Some(c) = new_leaf {
                    let label = crate::certs::CertInfo::from_der(c).key;
                    if let Some(curve) = curve_of_key(&label) {
                        self.ec_leaf_curve.get_or_insert(curve);
                    } else if label.starts_with("RSA") {
                        self.rsa_leaf = true;
                    }
                }
                Answer::judge(&spec, r)
            }
            Reply::NotSent(f) => Answer::from_failure(f),
        };
        trace(&spec, &answer);
        let backoff = |attempt: u32| self.shared.backoff.saturating_mul(1 << attempt.min(6));
        match guard {
            Guard::Sent { spec, attempt, repeat } => match answer {
                Answer::Budget => {
                    self.shared.budget_spent = true;
                    slot.unsure = Some("the connection budget is spent".to_owned());
                    slot.done = true;
                }
                Answer::Unclear(why) => {
                    let retries = if self.shared.hostile { 0 } else { RETRIES };
                    if attempt < retries {
                        slot.guard = Guard::Queued {
                            spec,
                            attempt: attempt + 1,
                            repeat,
                            delay: backoff(attempt),
                            control_for: None,
                        };
                    } else {
                        self.shared.hostile = true;
                        slot.unsure = Some(format!(
                            "after {} tries the answer was still unclear: {why}",
                            attempt + 1
                        ));
                        slot.done = true;
                    }
                }
                // SSLv2: most servers drop an SSLv2 hello; believed at once, and
                // made unsure at the end if the server ever failed a control.
                Answer::Dropped(how)
                    if !repeat
                        && (spec.version != ProtocolVersion::SSL2 || self.shared.suspicious)
                        && self.shared.control.as_ref().is_some_and(|c| *c != spec) =>
                {
                    if self.shared.hostile {
                        slot.unsure = Some(format!(
                            "{how}, from a server that had stopped answering hellos it answered before"
                        ));
                        slot.done = true;
                    } else {
                        let control = self.shared.control.clone().unwrap_or_else(|| spec.clone());
                        slot.guard = Guard::Queued {
                            spec: control,
                            attempt,
                            repeat: false,
                            delay: Duration::ZERO,
                            control_for: Some((spec, how)),
                        };
                    }
                }
                answer => {
                    if let Answer::Chose { suite, .. } = &answer {
                        if self.shared.control.is_none() && spec.version != ProtocolVersion::SSL2 {
                            self.shared.control = Some(control_spec(spec.version, *suite));
                        }
                    }
                    record_pass(&mut slot.pass, &mut self.shared, answer);
                }
            },
            Guard::Control {
                original,
                attempt,
                dropped,
            } => match answer {
                Answer::Chose { .. } => {
                    // The server still answers: ask the dropped hello again.
                    slot.guard = Guard::Queued {
                        spec: original,
                        attempt,
                        repeat: true,
                        delay: Duration::ZERO,
                        control_for: None,
                    };
                }
                Answer::Budget => {
                    self.shared.budget_spent = true;
                    slot.unsure = Some("the connection budget is spent".to_owned());
                    slot.done = true;
                }
                other => {
                    self.shared.suspicious = true;
                    let retries = if self.shared.hostile { 0 } else { RETRIES };
                    if attempt < retries {
                        slot.guard = Guard::Queued {
                            spec: original,
                            attempt: attempt + 1,
                            repeat: false,
                            delay: backoff(attempt),
                            control_for: None,
                        };
                    } else {
                        self.shared.hostile = true;
                        slot.unsure = Some(format!(
                            "{dropped}; a hello the server answered before now drew: {}",
                            other.describe()
                        ));
                        slot.done = true;
                    }
                }
            },
            _ => {}
        }
    }

    fn start_stage(&mut self) {
        self.slots.clear();
        let passes = if self.side_by_side() {
            self.side_by_side_stage()
        } else {
            self.staged()
        };
        self.slots = passes.into_iter().map(Slot::new).collect();
    }

    /// The passes of a stage when every suite pass starts at once.
    fn side_by_side_stage(&mut self) -> Vec<PassKind> {
        match self.stage {
            0 => {
                let mut v = vec![
                    PassKind::Sslv2(Sslv2Pass::default()),
                    PassKind::Suites(Box::new(if self.side_by_side() {
                        SuitePass::splittable(ProtocolVersion::TLS12)
                    } else {
                        SuitePass::new(ProtocolVersion::TLS12)
                    })),
                ];
                for p in [
                    ProtocolVersion::TLS13,
                    ProtocolVersion::TLS11,
                    ProtocolVersion::TLS10,
                    ProtocolVersion::SSL3,
                ] {
                    v.push(PassKind::Suites(Box::new(SuitePass::new(p))));
                }
                v
            }
            // Both need every suite pass's result (and the TLS 1.3 groups).
            1 => {
                let mut v: Vec<PassKind> = self.tls12_group_pass().into_iter().map(PassKind::Groups).collect();
                v.extend(self.scsv_pass().into_iter().map(PassKind::Scsv));
                v
            }
            2 => self.sslv2_recheck(),
            _ => vec![],
        }
    }

    /// The SSLv2 hello's drop was believed without a control, and a
    /// control failed since: ask again, this time checked.
    fn sslv2_recheck(&mut self) -> Vec<PassKind> {
        match &self.sslv2 {
            Some((false, _, _, _, None, true)) if self.shared.suspicious && !self.shared.hostile => {
                self.sslv2_rechecked = true;
                vec![PassKind::Sslv2(Sslv2Pass::default())]
            }
            _ => vec![],
        }
    }

    /// The TLS 1.3 group pass over `suites` (the TLS 1.3 suites found).
    fn tls13_group_pass(&self, suites: Vec<CipherSuite>) -> Option<GroupPass> {
        let first = suites.first().copied()?;
        let mut remaining = tls13_groups();
        let mut found = Vec::new();
        // The suite pass already asked the first question with every group.
        if let Some(g) = self.shared.first_retry_group.filter(|g| remaining.contains(g)) {
            found.push(g);
            remaining.retain(|x| *x != g);
        }
        Some(GroupPass {
            version: ProtocolVersion::TLS13,
            suites: vec![first],
            remaining,
            found,
            keep: None,
            finished: false,
        })
    }

    /// The passes of a stage, one stage learning from the ones before.
    fn staged(&mut self) -> Vec<PassKind> {
        let suites_of = |p: &Self, v: ProtocolVersion| p.suites_done.get(label(v)).map(|r| r.found.clone());
        match self.stage {
            0 => vec![
                PassKind::Sslv2(Sslv2Pass::default()),
                PassKind::Suites(Box::new(SuitePass::new(ProtocolVersion::TLS12))),
            ],
            // Once TLS 1.2 has settled whether the server reads past the
            // 64th suite, the other TLS passes need nothing from each other:
            // they go out side by side (within --per-host). SSLv3 waits for
            // TLS 1.0, whose window it shares on the old servers that have it.
            1 => vec![
                PassKind::Suites(Box::new(SuitePass::new(ProtocolVersion::TLS13))),
                PassKind::Suites(Box::new(SuitePass::new(ProtocolVersion::TLS11))),
                PassKind::Suites(Box::new(SuitePass::new(ProtocolVersion::TLS10))),
            ],
            2 => vec![PassKind::Suites(Box::new(SuitePass::new(ProtocolVersion::SSL3)))],
            3 => suites_of(self, ProtocolVersion::TLS13)
                .and_then(|s| self.tls13_group_pass(s))
                .into_iter()
                .map(PassKind::Groups)
                .collect(),
            4 => self.tls12_group_pass().into_iter().map(PassKind::Groups).collect(),
            5 => self.scsv_pass().into_iter().map(PassKind::Scsv).collect(),
            6 => self.sslv2_recheck(),
            _ => vec![],
        }
    }

    /// The TLS ≤ 1.2 group pass: curves the TLS 1.3 pass did not find
    /// (secp256k1, brainpool, …), through ECDHE suites the certificate can
    /// sign, at the best TLS ≤ 1.2 version.
    fn tls12_group_pass(&self) -> Option<GroupPass> {
        let (v, suites) = [
            ProtocolVersion::TLS12,
            ProtocolVersion::TLS11,
            ProtocolVersion::TLS10,
            ProtocolVersion::SSL3,
        ]
        .into_iter()
        .find_map(|v| {
            self.suites_done
                .get(label(v))
                .filter(|r| !r.found.is_empty())
                .map(|r| (v, r.found.clone()))
        })?;
        let ecdhe = |auth: &str| -> Vec<CipherSuite> {
            suites
                .iter()
                .copied()
                .filter(|s| {
                    catalog::suite(*s)
                        .and_then(|i| i.properties)
                        .is_some_and(|p| p.kx == "ECDHE" && (auth.is_empty() || p.auth == auth))
                })
                .take(WINDOW)
                .collect()
        };
        // ECDHE_RSA needs no curve of the certificate; ECDHE_ECDSA needs the
        // leaf's curve among those offered.
        let rsa = ecdhe("RSA");
        let (offer, keep) = if !rsa.is_empty() && self.rsa_leaf {
            (rsa, None)
        } else {
            let any = ecdhe("");
            let ecdsa_only = any.iter().all(|s| {
                catalog::suite(*s)
                    .and_then(|i| i.properties)
                    .is_some_and(|p| p.auth == "ECDSA")
            });
            (any, if ecdsa_only { self.ec_leaf_curve } else { None })
        };
        if offer.is_empty() {
            return None;
        }
        let mut remaining = tls12_curves();
        remaining.retain(|g| !self.groups.contains(g));
        Some(GroupPass {
            version: v,
            suites: offer,
            remaining,
            found: Vec::new(),
            keep,
            finished: false,
        })
    }

    /// Fallback SCSV needs two versions: a hello at the second best.
    fn scsv_pass(&self) -> Option<ScsvPass> {
        let supported: Vec<(ProtocolVersion, &Vec<CipherSuite>)> = PROTOCOLS
            .iter()
            .rev()
            .filter(|v| **v != ProtocolVersion::SSL2)
            .filter_map(|v| {
                self.suites_done
                    .get(label(*v))
                    .filter(|r| !r.found.is_empty())
                    .map(|r| (*v, &r.found))
            })
            .collect();
        let (lower, suites) = supported.get(1)?;
        let mut spec = HelloSpec::new(*lower, suites.iter().take(WINDOW).copied().collect(), tls12_curves());
        spec.options.fallback_scsv = true;
        Some(ScsvPass {
            spec,
            sent: false,
            result: None,
        })
    }

    fn end_stage(&mut self) {
        for slot in std::mem::take(&mut self.slots) {
            let Slot {
                pass,
                connections,
                unsure,
                ..
            } = slot;
            match pass {
                PassKind::Sslv2(p) => {
                    let (supported, evidence, specs) = p
                        .result
                        .unwrap_or_else(|| (false, unsure.clone().unwrap_or_else(|| "no answer".to_owned()), vec![]));
                    let before = self.sslv2.as_ref().map_or(0, |s| s.3);
                    // A recheck's drop went through a control: it is believed.
                    let dropped = p.dropped && !self.sslv2_rechecked;
                    self.sslv2 = Some((supported, evidence, specs, connections + before, unsure, dropped));
                }
                PassKind::Suites(p) => {
                    if !self.shared.finished.contains(&p.version()) {
                        self.shared.finished.push(p.version());
                    }
                    let mut r = p.finish(&mut self.shared, connections, unsure);
                    r.connections = connections;
                    // The second lane of a split pass joins the first.
                    if let Some(first) = self.suites_done.get_mut(label(r.version)) {
                        first.merge_lane(r);
                        continue;
                    }
                    if let Some(p) = r.preference {
                        self.shared.last_server_order = Some(p);
                    }
                    self.suites_done.insert(label(r.version), r);
                }
                PassKind::Groups(p) => {
                    for g in p.found {
                        if !self.groups.contains(&g) {
                            self.groups.push(g);
                        }
                    }
                    if let Some(reason) = unsure {
                        self.group_unsure.push(Unsure {
                            protocol: label(p.version),
                            reason: format!("the group list may be incomplete: {reason}"),
                        });
                    }
                }
                PassKind::Scsv(p) => self.shared.features.fallback_scsv = p.result,
            }
        }
    }

    /// The result.
    pub fn finish(mut self) -> Outcome {
        // A planner finished early (budget) still reports what it has.
        while !self.is_done() {
            for slot in &mut self.slots {
                if !slot.done {
                    slot.done = true;
                    slot.unsure
                        .get_or_insert_with(|| "the enumeration was cut short".to_owned());
                }
            }
            self.end_stage();
            self.stage += 1;
            if self.stage < self.stages() {
                self.start_stage();
            }
        }
        let mut out = Outcome {
            protocols: BTreeMap::new(),
            ciphers: BTreeMap::new(),
            complete: BTreeMap::new(),
            unsure: Vec::new(),
            server_preference: BTreeMap::new(),
            details: BTreeMap::new(),
            groups: self.groups,
            features: self.shared.features,
            dh_bits: self.shared.dh_bits,
            findings: self.shared.findings,
            chains: self.shared.chains,
        };
        match self.sslv2 {
            Some((supported, evidence, specs, connections, unsure, dropped)) => {
                let unsure = match unsure {
                    None if dropped && (self.shared.suspicious || self.shared.hostile) => Some(
                        "the SSLv2 hello was dropped by a server that also failed hellos it answered before".to_owned(),
                    ),
                    u => u,
                };
                let settled = supported || unsure.is_none();
                out.protocols.insert("SSLv2", settled.then_some(supported));
                out.complete.insert("SSLv2", unsure.is_none());
                if supported {
                    out.ciphers.insert("SSLv2", specs);
                    out.server_preference.insert("SSLv2", None);
                }
                if let Some(reason) = unsure {
                    out.unsure.push(Unsure {
                        protocol: "SSLv2",
                        reason,
                    });
                }
                out.details.insert(
                    "SSLv2",
                    ProtocolDetail {
                        supported,
                        evidence,
                        order: "unknown",
                        connections,
                    },
                );
            }
            None => {
                out.protocols.insert("SSLv2", None);
                out.complete.insert("SSLv2", false);
            }
        }
        for v in PROTOCOLS.iter().skip(1) {
            let l = label(*v);
            let Some(r) = self.suites_done.remove(l) else {
                out.protocols.insert(l, None);
                out.complete.insert(l, false);
                out.unsure.push(Unsure {
                    protocol: l,
                    reason: "not enumerated".to_owned(),
                });
                continue;
            };
            let supported = !r.found.is_empty();
            out.protocols
                .insert(l, (supported || r.unsure.is_none()).then_some(supported));
            out.complete.insert(l, r.unsure.is_none());
            if supported {
                out.ciphers
                    .insert(l, r.found.iter().map(|s| Codepoint::from(*s)).collect());
                out.server_preference.insert(l, r.preference);
            }
            if let Some(reason) = r.unsure.clone() {
                out.unsure.push(Unsure { protocol: l, reason });
            }
            out.details.insert(l, r.detail());
        }
        out.unsure.extend(self.group_unsure);
        out
    }
}

/// A one-suite hello at `v` that drew a ServerHello before.
fn control_spec(v: ProtocolVersion, s: CipherSuite) -> HelloSpec {
    let groups = if v == ProtocolVersion::TLS13 {
        tls13_groups()
    } else {
        tls12_curves()
    };
    HelloSpec::new(v, vec![s], groups)
}

/// `EC P-256` → secp256r1.
fn curve_of_key(label: &str) -> Option<NamedGroup> {
    match label {
        "EC P-256" => Some(NamedGroup::SECP256R1),
        "EC P-384" => Some(NamedGroup::SECP384R1),
        "EC P-521" => Some(NamedGroup::SECP521R1),
        _ => None,
    }
}

fn step(pass: &mut PassKind, shared: &mut Shared) -> Step {
    match pass {
        PassKind::Sslv2(p) => {
            if p.sent {
                return Step::Done;
            }
            p.sent = true;
            Step::Send(HelloSpec::new(ProtocolVersion::SSL2, Vec::new(), Vec::new()))
        }
        PassKind::Suites(p) => p.step(shared),
        PassKind::Groups(p) => {
            if p.finished || p.remaining.is_empty() {
                return Step::Done;
            }
            let mut groups = p.remaining.clone();
            if let Some(k) = p.keep.filter(|k| !groups.contains(k)) {
                groups.push(k);
            }
            Step::Send(HelloSpec::new(p.version, p.suites.clone(), groups))
        }
        PassKind::Scsv(p) => {
            if p.sent {
                return Step::Done;
            }
            p.sent = true;
            Step::Send(p.spec.clone())
        }
    }
}

fn record_pass(pass: &mut PassKind, shared: &mut Shared, answer: Answer) {
    match pass {
        PassKind::Sslv2(p) => {
            p.result = Some(match answer {
                Answer::Sslv2(specs) if !specs.is_empty() => {
                    let specs: Vec<Codepoint> = specs.into_iter().map(Codepoint::from).collect();
                    let names: Vec<String> = specs
                        .iter()
                        .map(|c| c.name.map_or_else(|| c.id.clone(), str::to_owned))
                        .collect();
                    (true, format!("SSLv2 SERVER-HELLO with {}", names.join(", ")), specs)
                }
                Answer::Sslv2(_) => (
                    false,
                    "SSLv2 SERVER-HELLO with no shared cipher spec".to_owned(),
                    Vec::new(),
                ),
                other => {
                    p.dropped = matches!(other, Answer::Dropped(_));
                    (false, other.describe(), Vec::new())
                }
            });
        }
        PassKind::Suites(p) => p.record(shared, answer),
        PassKind::Groups(p) => match answer {
            Answer::Chose { group: Some(g), .. } if p.remaining.contains(&g) => {
                p.found.push(g);
                p.remaining.retain(|x| *x != g);
            }
            _ => p.finished = true,
        },
        PassKind::Scsv(p) => {
            p.result = match answer {
                Answer::Alert(a) if a == AlertDescription::INAPPROPRIATE_FALLBACK => Some(true),
                Answer::Chose { .. } | Answer::Fallback(_) => Some(false),
                _ => None,
            };
        }
    }
}

/// Learns what a flight shows beyond the answer: chains, DH size, features.
fn observe(shared: &mut Shared, spec: &HelloSpec, r: &ProbeResult) {
    let f = &r.flight;
    if !f.certificates.is_empty() && !shared.chains.iter().any(|(_, c)| c.first() == f.certificates.first()) {
        let version = f
            .server_hello
            .as_ref()
            .map_or(spec.version, ServerHello::selected_version);
        shared.chains.push((version, f.certificates.clone()));
    }
    if let Some(h) = &f.sslv2 {
        if !h.certificate.is_empty() && !shared.chains.iter().any(|(_, c)| c.first() == Some(&h.certificate)) {
            shared.chains.push((ProtocolVersion::SSL2, vec![h.certificate.clone()]));
        }
    }
    if let Some(ServerKeyExchange::Dh { .. }) = &f.server_key_exchange {
        if let Some(bits) = f.server_key_exchange.as_ref().and_then(ServerKeyExchange::modulus_bits) {
            shared.dh_bits = Some(shared.dh_bits.map_or(bits, |b| b.min(bits)));
        }
    }
    // The TLS 1.3 suite pass's hellos offer every group: its first retry
    // request's group is the group pass's first answer.
    if spec.version == ProtocolVersion::TLS13 && shared.first_retry_group.is_none() && spec.groups == tls13_groups() {
        shared.first_retry_group = f
            .retry_request
            .as_ref()
            .and_then(hsscan_wire::ServerHello::key_share_group);
    }
    let Some(h) = &f.server_hello else { return };
    if h.selected_version() == ProtocolVersion::TLS13 || h.selected_version() != spec.version {
        return;
    }
    let features = &mut shared.features;
    let has = |t: ExtensionType| h.extension(t).is_some();
    let or = |cur: Option<bool>, v: bool| Some(cur.unwrap_or(false) || v);
    features.secure_renegotiation = or(features.secure_renegotiation, has(ExtensionType::RENEGOTIATION_INFO));
    features.extended_master_secret = or(
        features.extended_master_secret,
        has(ExtensionType::EXTENDED_MASTER_SECRET),
    );
    features.session_ticket = or(features.session_ticket, has(ExtensionType::SESSION_TICKET));
    features.heartbeat = or(features.heartbeat, has(ExtensionType::HEARTBEAT));
    let stapled = f.certificate_status.is_some()
        || matches!(
            h.extension(ExtensionType::STATUS_REQUEST),
            Some(ServerExtension::StatusRequest)
        );
    features.ocsp_stapling = or(features.ocsp_stapling, stapled);
    // Encrypt-then-MAC only applies to CBC suites: AEAD choices say nothing.
    let cbc = catalog::suite(h.cipher_suite)
        .and_then(|s| s.properties)
        .is_some_and(|p| p.mode == "CBC");
    if cbc {
        features.encrypt_then_mac = or(features.encrypt_then_mac, has(ExtensionType::ENCRYPT_THEN_MAC));
    }
    if spec.options.deflate {
        features.compression = or(features.compression, h.compression != CompressionMethod::NULL);
    }
}

fn trace(spec: &HelloSpec, answer: &Answer) {
    if std::env::var_os("HSSCAN_TRACE").is_none() {
        return;
    }
    let first: Vec<String> = spec.suites.iter().take(3).map(|s| s.hex()).collect();
    eprintln!(
        "hsscan trace: {} offer {} suites [{} ..] -> {}",
        label(spec.version),
        spec.suites.len(),
        first.join(" "),
        answer.describe()
    );
}
