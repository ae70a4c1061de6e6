//! The bisection planner (STYLE §10): a synchronous state machine that says
//! which hello goes out next and takes what came back. It owns no socket
//! and no clock; [`super::bisect`] drives it.
//!
//! It starts from the *subject* (a sender's exact hello, or the modern
//! hello) and the *base*: the smallest hello carrying what some hello of
//! the scan negotiated (one version, one suite). When the subject is
//! dropped, the planner moves one property at a time from the subject
//! onto the base, each check padded to the subject's own length once that
//! length is known to pass, so that only the property moved can break it:
//!
//! 1. `hello-length`: the base padded to the subject's length;
//! 2. `suite-count` / `suite-position`: the subject's number of suites,
//!    the server's own at the subject's position (then first);
//! 3. `key-share-size`: the subject's key shares (then the same bytes as
//!    padding);
//! 4. `extension`: the subject's extensions, halved until one is left;
//! 5. `record-version`, `legacy-version`, `record-split`, `segment-split`:
//!    the subject's values, when they differ from the base's.
//!
//! The first check that breaks the base names the property; its edges are
//! then found by binary search, the usual edges (64 and 128 suites, 256,
//! 512 and 1024 bytes) tried first. When the subject is answered (on
//! request, `--bisect`), the same checks stress the base instead: a hello
//! in the 256–511 byte window and one of a post-quantum size, 130 suites,
//! a post-quantum key share, an unknown extension, two records, two TCP
//! writes and record version 0x0303.
//!
//! Only a drop (reset, close, silence) breaks a check: an alert is an
//! answer, the server read the hello. The suite checks are the exception:
//! a server that reads only the first 64 suites refuses with an alert.

use super::{Bisection, Variant, MAX_CONNECTIONS};
use crate::enumerate::Intolerance;
use crate::outcome::Stage;
use crate::probe::ProbeResult;
use hsscan_wire::catalog;
use hsscan_wire::{CipherSuite, ClientExtension, ClientHello, EcPointFormat, NamedGroup, ProtocolVersion};

/// Identifies an offer until its reply is recorded.
pub type OfferId = u32;

/// A hello that may go out now.
#[derive(Debug, Clone)]
pub struct Offer {
    pub id: OfferId,
    pub variant: Variant,
}

/// What came of an offer.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    Answered(&'a ProbeResult),
    /// It never left (the budget, or a hello that did not encode).
    NotSent(&'a str),
}

/// The property of a hello that breaks a server (SPEC §3 `intolerance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    SuitePosition,
    SuiteCount,
    HelloLength,
    KeyShareSize,
    RecordSplit,
    SegmentSplit,
    Extension,
    RecordVersion,
    LegacyVersion,
}

impl Property {
    pub fn as_str(self) -> &'static str {
        match self {
            Property::SuitePosition => "suite-position",
            Property::SuiteCount => "suite-count",
            Property::HelloLength => "hello-length",
            Property::KeyShareSize => "key-share-size",
            Property::RecordSplit => "record-split",
            Property::SegmentSplit => "segment-split",
            Property::Extension => "extension",
            Property::RecordVersion => "record-version",
            Property::LegacyVersion => "legacy-version",
        }
    }
}

/// Retries of a hello whose answer said nothing (a 421, a failed connect).
const RETRIES: u32 = 1;

/// Hello lengths where receivers break (first value past the edge): the
/// F5 window of RFC 7685 (256–511), and 1 KiB.
const LENGTH_EDGES: [usize; 6] = [256, 512, 1024, 1500, 2048, 4096];
/// Larger lengths tried for the upper edge of a length window.
const LENGTH_UPPER: [usize; 4] = [512, 1024, 2048, 4096];
/// Suite counts and positions where receivers break: Windows 2003
/// Schannel reads 64 suites, some devices 128.
const SUITE_EDGES: [usize; 3] = [65, 129, 257];
/// The stress checks on request: a hello inside the F5 window, one the
/// size of OpenSSL 3.5's post-quantum hello, a suite list past 128.
const PROBE_SHORT: usize = 300;
const PROBE_LONG: usize = 1600;
const PROBE_SUITES: usize = 130;
/// X25519MLKEM768: the post-quantum hybrid OpenSSL 3.5 shares by default.
const PQ_GROUP: NamedGroup = NamedGroup(0x11ec);
/// An extension type no registry assigns: a tolerant server ignores it.
const UNKNOWN_EXTENSION: u16 = 0xfa5a;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A ServerHello or HelloRetryRequest.
    Answered,
    /// An alert (or another clean refusal at the handshake).
    Refused,
    /// Reset, closed or silent after the hello.
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Length(usize),
    Suites,
    KeyShare,
    /// The subject's extensions (indices into `items`).
    Extensions(Vec<usize>),
    RecordVersion(ProtocolVersion),
    LegacyVersion(ProtocolVersion),
    RecordSplit(usize),
    SegmentSplit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Subject,
    Base,
    Check(Check),
    /// The suites check failed: the same count, the server's suite first.
    SuiteFirst,
    /// The key share check failed: the same length with padding instead.
    ShareControl,
    /// A point of the edge search.
    Edge(usize),
}

/// A search for the edge between a passing and a failing value.
#[derive(Debug, Clone)]
struct Search {
    property: Property,
    /// The value nearest the edge known to pass, and to fail.
    pass: usize,
    fail: usize,
    hints: &'static [usize],
    tried: Vec<usize>,
    /// Hello length: the lower edge found, then looking for an upper one.
    upper: Upper,
    /// How the failing values failed (for the evidence).
    how: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upper {
    /// Searching the first edge.
    Lower,
    /// The lower edge is (pass, fail); a larger length is being tried.
    Probing {
        lower: (usize, usize),
        at: usize,
    },
    /// Searching the upper edge of a window whose lower edge is known.
    Window {
        lower: (usize, usize),
    },
    Done,
}

/// A step of the extension search: the items still suspected.
#[derive(Debug, Clone)]
struct ExtSearch {
    suspects: Vec<usize>,
}

pub struct Planner {
    subject: Variant,
    subject_failing: bool,
    label: String,
    version: ProtocolVersion,
    suite: CipherSuite,
    base: Variant,
    /// The length every check is padded to once it is known to pass.
    pad: Option<usize>,
    /// Extensions of the subject that differ from the base's.
    items: Vec<ClientExtension>,
    checks: std::collections::VecDeque<Check>,
    pending: Option<(OfferId, Variant, Purpose, u32)>,
    search: Option<Search>,
    ext: Option<ExtSearch>,
    next_id: OfferId,
    connections: u32,
    budget: u32,
    found: Vec<Intolerance>,
    summary: Option<String>,
    complete: bool,
    done: bool,
    /// The suites check: how many suites, and where the server's goes.
    suites_shape: (usize, usize),
    /// The key shares the key share check adds.
    extra_shares: Vec<hsscan_wire::KeyShareEntry>,
    subject_sent: bool,
    base_sent: bool,
    /// The subject was answered: the checks stress the base instead.
    probing: bool,
    /// A hello to send before anything else (a retry, or the follow-up
    /// of a failed check), with its attempt number.
    queued: Option<(Variant, Purpose, u32)>,
}

fn name_suite(s: CipherSuite) -> String {
    s.name().map_or_else(|| s.hex(), str::to_owned)
}

fn name_ext(e: &ClientExtension) -> String {
    let t = e.typ();
    match t.name() {
        Some(n) => format!("{n} ({:#06x})", t.0),
        None => format!("{:#06x} (unassigned)", t.0),
    }
}

/// Suites no registry assigns (never GREASE): a server skips them, but a
/// server with a window counts them.
fn fillers(n: usize) -> Vec<CipherSuite> {
    (0x7a00u16..=0x7fff)
        .map(CipherSuite)
        .filter(|s| {
            let [hi, lo] = s.0.to_be_bytes();
            catalog::suite(*s).is_none() && !(hi == lo && lo & 0x0f == 0x0a) && !s.is_signal()
        })
        .take(n)
        .collect()
}

/// The smallest hello carrying `suite` at `version`.
fn base_hello(subject: &ClientHello, version: ProtocolVersion, suite: CipherSuite) -> ClientHello {
    let tls13 = version == ProtocolVersion::TLS13;
    let legacy = if tls13 { ProtocolVersion::TLS12 } else { version };
    let mut h = ClientHello::new(legacy, [0; 32], vec![suite]);
    let mut ext = Vec::new();
    if let Some(sni) = subject.extension(hsscan_wire::ExtensionType::SERVER_NAME) {
        ext.push(sni.clone());
    }
    ext.push(ClientExtension::SupportedGroups(vec![
        NamedGroup::X25519,
        NamedGroup::SECP256R1,
        NamedGroup::SECP384R1,
        NamedGroup::SECP521R1,
    ]));
    ext.push(ClientExtension::EcPointFormats(vec![EcPointFormat::UNCOMPRESSED]));
    if version == ProtocolVersion::TLS12 || tls13 {
        ext.push(ClientExtension::SignatureAlgorithms(
            hsscan_wire::client_hello::DEFAULT_SIGNATURE_SCHEMES.to_vec(),
        ));
    }
    if tls13 {
        ext.push(ClientExtension::SupportedVersions(vec![ProtocolVersion::TLS13]));
        ext.push(ClientExtension::KeyShare(hsscan_wire::client_hello::key_shares(&[
            NamedGroup::X25519,
        ])));
    }
    h.extensions = Some(ext);
    h
}

fn share_len(h: &ClientHello) -> usize {
    match h.extension(hsscan_wire::ExtensionType::KEY_SHARE) {
        Some(ClientExtension::KeyShare(s)) => s.iter().map(|e| e.key_exchange.len() + 4).sum(),
        _ => 0,
    }
}

fn seen(r: &ProbeResult) -> Result<(Seen, String), String> {
    if r.answered() {
        return Ok((Seen::Answered, "answered".to_owned()));
    }
    match r.failure.as_ref() {
        Some(f) if f.stage == Stage::Handshake && f.kind.is_drop_after_hello() => {
            Ok((Seen::Dropped, f.kind.to_string()))
        }
        Some(f) if f.stage == Stage::Handshake && !f.is_inconclusive() => {
            let how = r
                .flight
                .alerts
                .last()
                .map_or_else(|| f.kind.to_string(), |a| format!("alert {}", a.description));
            Ok((Seen::Refused, how))
        }
        Some(f) => Err(format!("{} at {}: {}", f.kind, f.stage, f.detail)),
        None => Err("no answer and no failure".to_owned()),
    }
}

impl Planner {
    /// A bisection of `subject` (described by `label`, e.g. "the hello of
    /// Postfix 3.7 …"), where `known` is what some hello negotiated.
    /// `subject_failing`: the subject was already seen dropped (twice, by
    /// the sender recheck) and is not sent again.
    pub fn new(
        subject: Variant,
        label: impl Into<String>,
        known: (ProtocolVersion, CipherSuite),
        subject_failing: bool,
    ) -> Self {
        let (version, suite) = known;
        let record_version = if version == ProtocolVersion::SSL3 {
            ProtocolVersion::SSL3
        } else {
            ProtocolVersion::TLS10
        };
        let base = Variant::new(base_hello(&subject.hello, version, suite), record_version);
        Self {
            subject,
            subject_failing,
            label: label.into(),
            version,
            suite,
            base,
            pad: None,
            items: Vec::new(),
            checks: Default::default(),
            pending: None,
            search: None,
            ext: None,
            next_id: 0,
            connections: 0,
            budget: MAX_CONNECTIONS,
            found: Vec::new(),
            summary: None,
            complete: true,
            done: false,
            suites_shape: (0, 0),
            extra_shares: Vec::new(),
            subject_sent: false,
            base_sent: false,
            probing: false,
            queued: None,
        }
    }

    /// At most `n` connections (never more than [`MAX_CONNECTIONS`]).
    pub fn with_budget(mut self, n: u32) -> Self {
        self.budget = n.min(MAX_CONNECTIONS);
        self
    }

    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// The hellos that may go out now: one at a time, each decides the next.
    pub fn next_offers(&mut self) -> Vec<Offer> {
        if self.done || self.pending.is_some() {
            return Vec::new();
        }
        let (variant, purpose, attempt) = match self.queued.take() {
            Some(q) => q,
            None => match self.next_step() {
                Some((v, p)) => (v, p, 0),
                None => {
                    self.finish_none();
                    return Vec::new();
                }
            },
        };
        if self.connections >= self.budget {
            self.stop_short(format!("the bisection budget ({} connections) is spent", self.budget));
            return Vec::new();
        }
        let id = self.next_id;
        self.next_id += 1;
        self.connections += 1;
        self.pending = Some((id, variant.clone(), purpose, attempt));
        vec![Offer { id, variant }]
    }

    /// What came back for `id`.
    pub fn record(&mut self, id: OfferId, reply: Reply<'_>) {
        let Some((pid, variant, purpose, attempt)) = self.pending.take() else {
            return;
        };
        if pid != id {
            self.pending = Some((pid, variant, purpose, attempt));
            return;
        }
        let r = match reply {
            Reply::Answered(r) => r,
            Reply::NotSent(why) => {
                self.stop_short(format!("a hello was not sent: {why}"));
                return;
            }
        };
        match seen(r) {
            Ok((s, how)) => self.learn(purpose, &variant, s, how),
            Err(_) if attempt < RETRIES => self.queued = Some((variant, purpose, attempt + 1)),
            Err(why) => self.stop_short(format!("an answer said nothing about the hello: {why}")),
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The result.
    pub fn finish(mut self) -> Bisection {
        if !self.done {
            self.stop_short("the bisection was stopped".to_owned());
        }
        Bisection {
            intolerance: self.found,
            summary: self.summary.unwrap_or_default(),
            complete: self.complete,
            connections: self.connections,
        }
    }

    fn base_len(&self) -> usize {
        self.base.record_bytes()
    }

    fn stop_short(&mut self, why: String) {
        self.complete = false;
        self.done = true;
        self.pending = None;
        self.queued = None;
        let partial = self.search.as_ref().map(|s| self.evidence(s, true));
        if let (Some(s), Some(e)) = (self.search.as_ref(), partial) {
            self.found.push(Intolerance {
                property: s.property.as_str(),
                evidence: format!("{e} (edge not settled: {why})"),
                longest_answered: None,
                extension: None,
            });
        }
        self.summary = Some(format!(
            "the bisection of {} stopped after {} connections: {why}",
            self.label, self.connections
        ));
    }

    fn finish_none(&mut self) {
        self.done = true;
        if self.summary.is_some() {
            return;
        }
        self.summary = Some(if self.probing {
            format!(
                "bisection found no intolerance: {} is answered, and so are the base hello in the 256–511 byte window and at {PROBE_LONG} bytes, with {PROBE_SUITES} suites, a post-quantum key share, an unknown extension, split over two records, in two TCP writes and with record version 0x0303 ({} connections)",
                self.label, self.connections
            )
        } else {
            format!(
                "no single property of {} explains the drop: the base hello is answered with each property of it moved over alone ({} connections)",
                self.label, self.connections
            )
        });
    }

    fn found(&mut self, property: Property, evidence: String) {
        self.summary = Some(format!(
            "{}: {} ({} connections)",
            self.label,
            property.as_str(),
            self.connections
        ));
        self.found.push(Intolerance {
            property: property.as_str(),
            evidence,
            longest_answered: None,
            extension: None,
        });
        self.done = true;
        self.search = None;
    }

    /// A hello length above which every hello tried was dropped:
    /// `longest` bytes is the longest answered.
    fn found_length_limit(&mut self, evidence: String, longest: usize) {
        self.found(Property::HelloLength, evidence);
        if let Some(f) = self.found.last_mut() {
            f.longest_answered = Some(longest);
        }
    }

    /// `v` padded to `n` bytes when it is shorter (else as it is).
    fn padded(v: &Variant, n: Option<usize>) -> Variant {
        let mut out = v.clone();
        if let Some(n) = n {
            if n >= out.record_bytes() + 4 {
                let _ = out.hello.pad_to(n);
            }
        }
        out
    }

    /// The base with `count` suites, the server's at `position` (1-based),
    /// the others unassigned codepoints.
    fn suites_variant(&self, count: usize, position: usize) -> Variant {
        let mut suites = fillers(count.saturating_sub(1));
        suites.insert(position.saturating_sub(1).min(suites.len()), self.suite);
        let mut v = self.base.clone();
        v.hello.cipher_suites = suites;
        Self::padded(&v, self.pad)
    }

    fn share_variant(&self) -> Variant {
        let mut v = self.base.clone();
        let ext = v.hello.extensions.get_or_insert_with(Vec::new);
        let mut had = false;
        for e in ext.iter_mut() {
            match e {
                ClientExtension::KeyShare(s) => {
                    s.extend(self.extra_shares.iter().cloned());
                    had = true;
                }
                ClientExtension::SupportedGroups(g) => {
                    for s in &self.extra_shares {
                        if !g.contains(&s.group) {
                            g.push(s.group);
                        }
                    }
                }
                _ => {}
            }
        }
        if !had {
            ext.push(ClientExtension::KeyShare(self.extra_shares.clone()));
        }
        Self::padded(&v, self.pad)
    }

    fn ext_variant(&self, set: &[usize]) -> Variant {
        let mut v = self.base.clone();
        let ext = v.hello.extensions.get_or_insert_with(Vec::new);
        for i in set {
            let Some(item) = self.items.get(*i) else { continue };
            match ext.iter_mut().find(|e| e.typ() == item.typ()) {
                Some(e) => *e = item.clone(),
                None => ext.push(item.clone()),
            }
        }
        Self::padded(&v, self.pad)
    }

    fn check_variant(&self, c: &Check) -> Variant {
        match c {
            Check::Length(n) => Self::padded(&self.base, Some(*n)),
            Check::Suites => self.suites_variant(self.suites_shape.0, self.suites_shape.1),
            Check::KeyShare => self.share_variant(),
            Check::Extensions(set) => self.ext_variant(set),
            Check::RecordVersion(rv) => {
                let mut v = Self::padded(&self.base, self.pad);
                v.record_version = *rv;
                v
            }
            Check::LegacyVersion(lv) => {
                let mut v = self.base.clone();
                v.hello.legacy_version = *lv;
                Self::padded(&v, self.pad)
            }
            Check::RecordSplit(n) => {
                let mut v = Self::padded(&self.base, self.pad);
                v.record_size = Some(*n);
                v
            }
            Check::SegmentSplit => {
                let mut v = Self::padded(&self.base, self.pad);
                v.two_writes = true;
                v
            }
        }
    }

    fn edge_variant(&self, property: Property, x: usize) -> Variant {
        match property {
            Property::HelloLength => Self::padded(&self.base, Some(x)),
            Property::SuitePosition => self.suites_variant(self.suites_shape.0, x),
            _ => self.suites_variant(x, 1),
        }
    }

    /// Sets up the checks once the subject's fate is known.
    fn plan(&mut self, probing: bool) {
        self.probing = probing;
        let m = self.base_len();
        let mut checks = Vec::new();
        if probing {
            if PROBE_SHORT >= m + 4 {
                checks.push(Check::Length(PROBE_SHORT));
            }
            checks.push(Check::Length(PROBE_LONG));
            self.suites_shape = (PROBE_SUITES, PROBE_SUITES);
            checks.push(Check::Suites);
            self.extra_shares = hsscan_wire::client_hello::key_shares(&[PQ_GROUP]);
            checks.push(Check::KeyShare);
            self.items = vec![ClientExtension::Raw {
                typ: hsscan_wire::ExtensionType(UNKNOWN_EXTENSION),
                data: vec![0; 4],
            }];
            checks.push(Check::Extensions(vec![0]));
            let message = self.base.hello.to_bytes().map_or(0, |b| b.len());
            checks.push(Check::RecordSplit(message.max(2).div_ceil(2)));
            checks.push(Check::SegmentSplit);
            checks.push(Check::RecordVersion(ProtocolVersion::TLS12));
        } else {
            let s = &self.subject;
            let l = s.record_bytes();
            if l >= m + 4 {
                checks.push(Check::Length(l));
            }
            let suites = &s.hello.cipher_suites;
            if suites.len() > 1 {
                let position = suites
                    .iter()
                    .position(|x| *x == self.suite)
                    .map_or(suites.len() + 1, |i| i + 1);
                self.suites_shape = (suites.len().max(position), position);
                checks.push(Check::Suites);
            }
            if share_len(&s.hello) > share_len(&self.base.hello) {
                let base_groups: Vec<NamedGroup> =
                    match self.base.hello.extension(hsscan_wire::ExtensionType::KEY_SHARE) {
                        Some(ClientExtension::KeyShare(x)) => x.iter().map(|e| e.group).collect(),
                        _ => Vec::new(),
                    };
                if let Some(ClientExtension::KeyShare(x)) = s.hello.extension(hsscan_wire::ExtensionType::KEY_SHARE) {
                    self.extra_shares = x.iter().filter(|e| !base_groups.contains(&e.group)).cloned().collect();
                }
                if !self.extra_shares.is_empty() {
                    checks.push(Check::KeyShare);
                }
            }
            self.items = s
                .hello
                .extensions
                .iter()
                .flatten()
                .filter(|e| !matches!(e, ClientExtension::Padding(_) | ClientExtension::KeyShare(_)))
                .filter(|e| self.base.hello.extension(e.typ()) != Some(*e))
                .cloned()
                .collect();
            if !self.items.is_empty() {
                checks.push(Check::Extensions((0..self.items.len()).collect()));
            }
            if s.record_version != self.base.record_version {
                checks.push(Check::RecordVersion(s.record_version));
            }
            if s.hello.legacy_version != self.base.hello.legacy_version {
                checks.push(Check::LegacyVersion(s.hello.legacy_version));
            }
            if let Some(n) = s.record_size {
                checks.push(Check::RecordSplit(n));
            }
            if s.two_writes {
                checks.push(Check::SegmentSplit);
            }
        }
        self.checks = checks.into();
    }

    fn next_step(&mut self) -> Option<(Variant, Purpose)> {
        if !self.subject_failing && !self.subject_sent {
            self.subject_sent = true;
            return Some((self.subject.clone(), Purpose::Subject));
        }
        if !self.base_sent {
            if self.subject_failing && self.checks.is_empty() && !self.subject_sent {
                self.subject_sent = true;
                self.plan(false);
            }
            self.base_sent = true;
            return Some((self.base.clone(), Purpose::Base));
        }
        if self.search.is_some() {
            return self.search_step();
        }
        if let Some(e) = &self.ext {
            let set = if e.suspects.len() > 1 {
                e.suspects.get(..e.suspects.len() / 2).unwrap_or_default().to_vec()
            } else {
                e.suspects.clone()
            };
            if set.is_empty() {
                return None;
            }
            let c = Check::Extensions(set);
            return Some((self.check_variant(&c), Purpose::Check(c)));
        }
        let c = self.checks.pop_front()?;
        Some((self.check_variant(&c), Purpose::Check(c)))
    }

    fn search_step(&mut self) -> Option<(Variant, Purpose)> {
        loop {
            let s = self.search.as_ref()?;
            if let Upper::Probing { at, .. } = s.upper {
                if !s.tried.contains(&at) {
                    return Some((self.edge_variant(s.property, at), Purpose::Edge(at)));
                }
            }
            if let Some(x) = self.point(s) {
                return Some((self.edge_variant(s.property, x), Purpose::Edge(x)));
            }
            // The edge is settled.
            let mut s = self.search.take()?;
            match (s.property, s.upper) {
                (Property::HelloLength, Upper::Lower) => {
                    let lower = (s.pass, s.fail);
                    let top = s.tried.iter().copied().chain([s.fail]).filter(|x| *x >= s.fail).max();
                    let top = top.unwrap_or(s.fail).max(self.subject.record_bytes());
                    match LENGTH_UPPER.iter().copied().find(|u| *u > top) {
                        Some(at) => {
                            s.upper = Upper::Probing { lower, at };
                            self.search = Some(s);
                        }
                        None => {
                            s.upper = Upper::Done;
                            let e = self.evidence(&s, false);
                            self.found_length_limit(e, s.pass);
                            return None;
                        }
                    }
                }
                _ => {
                    let e = self.evidence(&s, false);
                    self.found(s.property, e);
                    return None;
                }
            }
        }
    }

    /// The next value to try between the passing and the failing one.
    fn point(&self, s: &Search) -> Option<usize> {
        if let Upper::Probing { .. } | Upper::Done = s.upper {
            return None;
        }
        let (lo, hi) = (s.pass.min(s.fail), s.pass.max(s.fail));
        if hi - lo <= 1 {
            return None;
        }
        let floor = if s.property == Property::HelloLength {
            self.base_len() + 4
        } else {
            1
        };
        let ok = |x: usize| x > lo && x < hi && x >= floor && !s.tried.contains(&x);
        if s.hints.contains(&hi) && ok(hi - 1) {
            return Some(hi - 1);
        }
        let mid = lo + (hi - lo) / 2;
        if let Some(h) = s
            .hints
            .iter()
            .copied()
            .filter(|h| ok(*h))
            .min_by_key(|h| h.abs_diff(mid))
        {
            return Some(h);
        }
        if s.hints.contains(&lo) && ok(lo + 1) {
            return Some(lo + 1);
        }
        [mid, floor].into_iter().find(|x| ok(*x))
    }

    fn start_search(&mut self, property: Property, pass: usize, fail: usize, how: String) {
        let hints: &'static [usize] = match property {
            Property::HelloLength => &LENGTH_EDGES,
            _ => &SUITE_EDGES,
        };
        self.search = Some(Search {
            property,
            pass,
            fail,
            hints,
            tried: vec![pass, fail],
            upper: Upper::Lower,
            how,
        });
    }

    /// Whether `s` breaks a hello checked for `p`: for the suites any
    /// refusal, for the rest only a drop.
    fn breaks(suites: bool, s: Seen) -> bool {
        if suites {
            s != Seen::Answered
        } else {
            s == Seen::Dropped
        }
    }

    fn learn(&mut self, purpose: Purpose, variant: &Variant, s: Seen, how: String) {
        let size = variant.record_bytes();
        match purpose {
            Purpose::Subject => {
                let dropped = s != Seen::Answered;
                self.subject_failing = dropped;
                self.plan(!dropped);
            }
            Purpose::Base => {
                if s != Seen::Answered {
                    self.done = true;
                    self.complete = false;
                    self.summary = Some(format!(
                        "no single property of {} explains the failure: even the smallest hello with {} at {} is not answered ({how}), though a hello of the scan negotiated it ({} connections)",
                        self.label,
                        name_suite(self.suite),
                        crate::enumerate::label(self.version),
                        self.connections
                    ));
                }
            }
            Purpose::Check(c) => {
                let suites = c == Check::Suites;
                if !Self::breaks(suites, s) {
                    if let Check::Length(n) = c {
                        // Lengths up to here are answered: pad the rest to it.
                        if self.pad.is_none_or(|p| n > p) {
                            self.pad = Some(n);
                        }
                    }
                    if let (Check::Extensions(set), Some(e)) = (&c, self.ext.as_mut()) {
                        e.suspects.retain(|i| !set.contains(i));
                        if e.suspects.is_empty() {
                            self.ext = None;
                            self.checks.clear();
                        }
                    }
                    return;
                }
                match c {
                    Check::Length(n) => self.start_search(Property::HelloLength, self.base_len(), n, how),
                    Check::Suites => {
                        let (count, position) = self.suites_shape;
                        if position == 1 {
                            self.start_search(Property::SuiteCount, 1, count, how);
                        } else {
                            self.queued = Some((self.suites_variant(count, 1), Purpose::SuiteFirst, 0));
                            self.search = Some(Search {
                                property: Property::SuitePosition,
                                pass: 1,
                                fail: position,
                                hints: &SUITE_EDGES,
                                tried: vec![1, position],
                                upper: Upper::Done,
                                how,
                            });
                        }
                    }
                    Check::KeyShare => {
                        if self.pad == Some(size) {
                            let e = self.share_evidence(
                                size,
                                &how,
                                "the same length with padding instead of the share (checked before) is answered",
                            );
                            self.found(Property::KeyShareSize, e);
                        } else {
                            let control = Self::padded(&self.base, Some(size));
                            self.queued = Some((control, Purpose::ShareControl, 0));
                            self.search = Some(Search {
                                property: Property::KeyShareSize,
                                pass: 0,
                                fail: size,
                                hints: &LENGTH_EDGES,
                                tried: Vec::new(),
                                upper: Upper::Done,
                                how,
                            });
                        }
                    }
                    Check::Extensions(set) => {
                        if set.len() == 1 {
                            let item = set
                                .first()
                                .and_then(|i| self.items.get(*i))
                                .map_or_else(String::new, name_ext);
                            let e =
                                format!(
                                "a hello that is answered is dropped ({how}) once extension {item} is added{}; {} {}",
                                self.pad.map_or_else(String::new, |p| format!(" (both hellos {p} bytes)")),
                                self.label,
                                if self.probing { "is answered without it" } else { "sends it" }
                            );
                            let typ = set.first().and_then(|i| self.items.get(*i)).map(|x| x.typ().0);
                            self.found(Property::Extension, e);
                            if let Some(f) = self.found.last_mut() {
                                f.extension = typ;
                            }
                        } else {
                            self.ext = Some(ExtSearch { suspects: set });
                        }
                    }
                    Check::RecordVersion(rv) => {
                        let e = format!(
                            "the same hello is answered in a record of version {} and dropped ({how}) in one of version {}",
                            self.base.record_version.hex(),
                            rv.hex()
                        );
                        self.found(Property::RecordVersion, e);
                    }
                    Check::LegacyVersion(lv) => {
                        let e = format!(
                            "the same hello is answered with legacy_version {} and dropped ({how}) with {}",
                            self.base.hello.legacy_version.hex(),
                            lv.hex()
                        );
                        self.found(Property::LegacyVersion, e);
                    }
                    Check::RecordSplit(n) => {
                        let e = format!(
                            "the same {size}-byte hello is answered in one record and dropped ({how}) split over records of {n} bytes"
                        );
                        self.found(Property::RecordSplit, e);
                    }
                    Check::SegmentSplit => {
                        let e = format!(
                            "the same {size}-byte hello is answered in one TCP write and dropped ({how}) in two writes with a pause between them"
                        );
                        self.found(Property::SegmentSplit, e);
                    }
                }
            }
            Purpose::SuiteFirst => {
                let Some(mut search) = self.search.take() else { return };
                if s == Seen::Answered {
                    search.upper = Upper::Lower;
                    self.search = Some(search);
                } else {
                    let (count, _) = self.suites_shape;
                    self.start_search(Property::SuiteCount, 1, count, how);
                }
            }
            Purpose::ShareControl => {
                let how_share = self.search.take().map(|x| x.how).unwrap_or_default();
                if Self::breaks(false, s) {
                    self.start_search(Property::HelloLength, self.base_len(), size, how);
                } else {
                    let e = self.share_evidence(
                        size,
                        &how_share,
                        "the same hello with padding of the same length instead is answered",
                    );
                    self.found(Property::KeyShareSize, e);
                }
            }
            Purpose::Edge(x) => {
                let Some(search) = self.search.as_mut() else { return };
                search.tried.push(x);
                let suites = matches!(search.property, Property::SuitePosition | Property::SuiteCount);
                let broke = Self::breaks(suites, s);
                if broke {
                    search.how = how;
                }
                match search.upper {
                    Upper::Probing { lower, at } if at == x => {
                        if broke {
                            search.fail = search.fail.max(x);
                            search.upper = Upper::Done;
                            search.pass = lower.0;
                            search.fail = lower.1;
                            let mut done = search.clone();
                            done.tried.push(x);
                            let e = format!(
                                "{}; dropped at every length tried above, up to {x} bytes",
                                self.evidence(&done, false)
                            );
                            self.found_length_limit(e, done.pass);
                        } else {
                            let top = search.tried.iter().copied().filter(|t| *t < x && *t >= lower.1).max();
                            search.upper = Upper::Window { lower };
                            search.fail = top.unwrap_or(lower.1).max(lower.1);
                            search.pass = x;
                            // The subject's own length failed: it is the top known failure.
                            let l = self.subject.record_bytes();
                            if !self.probing && l > search.fail && l < x {
                                search.fail = l;
                            }
                        }
                    }
                    _ => {
                        if broke {
                            search.fail = x;
                        } else {
                            search.pass = x;
                        }
                    }
                }
            }
        }
    }

    fn share_evidence(&self, size: usize, how: &str, control: &str) -> String {
        let shares: Vec<String> = self
            .extra_shares
            .iter()
            .map(|e| {
                format!(
                    "{} {} bytes",
                    e.group.name().map_or_else(|| e.group.hex(), str::to_owned),
                    e.key_exchange.len()
                )
            })
            .collect();
        let total: usize = self.extra_shares.iter().map(|e| e.key_exchange.len() + 4).sum();
        format!(
            "a hello of {size} bytes carrying a key share of {total} more bytes ({}) is dropped ({how}); {control}; the base's X25519 share alone (32 bytes) is answered",
            shares.join(", ")
        )
    }

    /// The evidence of a search as far as it went.
    fn evidence(&self, s: &Search, partial: bool) -> String {
        let how = &s.how;
        let label = &self.label;
        let approx = if partial { "at least " } else { "" };
        match (s.property, s.upper) {
            (Property::HelloLength, Upper::Window { lower }) if !partial || s.pass.abs_diff(s.fail) <= 1 => format!(
                "hellos of {} bytes and of {} bytes are answered, those of {} to {} bytes dropped ({how}): a {}–{} byte window; {label} is {} bytes",
                lower.0,
                s.pass,
                lower.1,
                s.fail,
                lower.1,
                s.fail,
                self.subject.record_bytes()
            ),
            (Property::HelloLength, Upper::Window { lower }) => format!(
                "hellos of {} bytes and of {} bytes are answered, one of {} bytes dropped ({how}): a window from {} bytes to somewhere below {}; {label} is {} bytes",
                lower.0,
                s.pass,
                s.fail,
                lower.1,
                s.pass,
                self.subject.record_bytes()
            ),
            (Property::HelloLength, _) => format!(
                "a hello of {} bytes is answered, one of {approx}{} bytes dropped ({how}); {label} is {} bytes",
                s.pass,
                s.fail,
                self.subject.record_bytes()
            ),
            (Property::SuitePosition, _) => {
                let (count, position) = self.suites_shape;
                format!(
                    "among {count} offered suites, the server's {} is taken at position {} and refused ({how}) at position {}: the server reads only the first {} suites; {label} offers it at position {position}{}",
                    name_suite(self.suite),
                    s.pass,
                    s.fail,
                    s.pass,
                    if position > self.subject.hello.cipher_suites.len() { " (that is, not at all: it would come last)" } else { "" }
                )
            }
            (Property::SuiteCount, _) => format!(
                "a hello with {} suites is answered, one with {approx}{} suites refused ({how}), the server's {} first in both; {label} offers {}",
                s.pass,
                s.fail,
                name_suite(self.suite),
                self.subject.suite_count()
            ),
            (p, _) => format!("{}: dropped ({how}) at {} bytes", p.as_str(), s.fail),
        }
    }
}
