//! One protocol's suite pass: remove and retry over every suite offerable
//! at that version (SPEC §4), as a state machine driven by the planner.
//!
//! Each hello offers every suite not yet found, most common first, so that
//! for a server that reads the whole list the sequence of choices is its
//! preference order. Every other hello offers the remaining suites
//! reversed: a client-preference server must then take the first supported
//! one in each order, so a choice that contradicts an earlier one proves
//! the server decides, without a hello spent on asking.
//!
//! When a hello of more than 64 suites is refused, the next offers only
//! what came after the first 64: a suite found there proves the server
//! ignores suites past the 64th (Windows 2003 Schannel). A long hello
//! dropped where a shorter one might pass is retried with 64, then 16
//! suites, to tell hello-size intolerance from "no".
//!
//! Key exchanges a server may choose and then be unable to serve (PSK and
//! SRP without credentials, anonymous, static DH, …) go last in every
//! hello. A refusal of a hello that carried them is asked again without
//! them before it ends the list; if that one is answered, a server broke on
//! one of those families, and each family is then asked on its own.

use super::answer::Answer;
use super::planner::{HelloSpec, Shared, Step};
use super::{label, tls12_curves, tls13_groups, ProtocolDetail, WINDOW};
use crate::finding::{Finding, Severity};
use crate::hellos::{self, HelloOptions};
use hsscan_wire::catalog;
use hsscan_wire::{AlertDescription, CipherSuite, NamedGroup, ProtocolVersion};

/// Whether a server may choose `s` and then fail for want of something
/// besides the suite: credentials (PSK, SRP, Kerberos, passwords), an
/// anonymous or static-DH configuration, or an exotic key exchange.
pub fn needs_more_than_a_certificate(s: CipherSuite) -> bool {
    let Some(p) = catalog::suite(s).and_then(|i| i.properties) else {
        return false;
    };
    family(p.kx, p.auth).is_some()
}

/// The family of a special key exchange, for asking each on its own.
fn family(kx: &str, auth: &str) -> Option<&'static str> {
    if kx.contains("PSK") || auth == "PSK" {
        Some("PSK")
    } else if kx.starts_with("SRP") || auth == "SRP" || auth == "password" || kx == "ECCPWD" {
        Some("SRP")
    } else if auth == "anon"
        || kx == "DH"
        || kx == "ECDH"
        || kx.starts_with("DH(")
        || matches!(kx, "KRB5" | "ECMQV" | "FORTEZZA_KEA")
        || kx.starts_with("GOST")
        || kx.starts_with("CECPQ1")
    {
        // Anonymous, static DH and exotic exchanges: asked together, as
        // none of them waits on credentials.
        Some("other")
    } else {
        None
    }
}

fn family_of(s: CipherSuite) -> Option<&'static str> {
    let p = catalog::suite(s).and_then(|i| i.properties)?;
    family(p.kx, p.auth)
}

/// Suites offerable at `v`, most common first: what OpenSSL and GnuTLS
/// implement, then the rest of the catalog; special key exchanges last.
pub fn ordered_suites(v: ProtocolVersion) -> Vec<CipherSuite> {
    let all: Vec<&catalog::SuiteInfo> = catalog::suites_for(v).collect();
    let mut common: Vec<CipherSuite> = hellos::legacy_suites(ProtocolVersion::TLS10)
        .into_iter()
        .filter(|s| all.iter().any(|a| a.id == *s))
        .collect();
    let rank = |s: &catalog::SuiteInfo| match (s.openssl_name.is_some(), s.gnutls_name.is_some()) {
        (true, true) => 0,
        (true, false) | (false, true) => 1,
        _ => 2,
    };
    let mut rest: Vec<&catalog::SuiteInfo> = all.iter().copied().filter(|s| !common.contains(&s.id)).collect();
    // Modern AEAD suites before the rest within each rank.
    rest.sort_by_key(|s| (rank(s), !s.properties.is_some_and(|p| p.aead), s.id));
    let mut out = if v == ProtocolVersion::TLS12 || v == ProtocolVersion::TLS13 {
        // At TLS 1.2 the common choices are AEAD: put them before the legacy list.
        let (aead, other): (Vec<&catalog::SuiteInfo>, Vec<&catalog::SuiteInfo>) = rest
            .into_iter()
            .partition(|s| rank(s) == 0 && s.properties.is_some_and(|p| p.aead));
        let mut out: Vec<CipherSuite> = aead.iter().map(|s| s.id).collect();
        out.append(&mut common);
        out.extend(other.iter().map(|s| s.id));
        out
    } else {
        common.extend(rest.iter().map(|s| s.id));
        common
    };
    // Stable: the special families keep their order among themselves.
    let (normal, special): (Vec<CipherSuite>, Vec<CipherSuite>) =
        out.drain(..).partition(|s| !needs_more_than_a_certificate(*s));
    out = normal;
    out.extend(special);
    out
}

/// What one finished pass found.
#[derive(Debug, Clone)]
pub struct PassResult {
    pub version: ProtocolVersion,
    pub found: Vec<CipherSuite>,
    /// Who decides: `Some(true)` the server.
    pub preference: Option<bool>,
    pub unsure: Option<String>,
    pub evidence: String,
    pub order: &'static str,
    pub connections: u32,
}

impl PassResult {
    /// Takes in what a second lane of the same pass found
    /// ([`SuitePass::split_off`]).
    pub fn merge_lane(&mut self, lane: PassResult) {
        for s in lane.found {
            if !self.found.contains(&s) {
                self.found.push(s);
            }
        }
        self.connections += lane.connections;
        if self.unsure.is_none() && lane.unsure.is_some() {
            self.unsure = lane.unsure;
            self.evidence = lane.evidence;
        }
    }

    pub fn detail(&self) -> ProtocolDetail {
        ProtocolDetail {
            supported: !self.found.is_empty(),
            evidence: self.evidence.clone(),
            order: self.order,
            connections: self.connections,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Main,
    /// The main loop is over: families, the size finding, preference.
    AfterMain,
    Families,
    Done,
}

/// The hello out, and what it was.
#[derive(Debug, Clone)]
enum Pending {
    Main {
        sent: Vec<CipherSuite>,
        offer: Vec<CipherSuite>,
        tail: Vec<CipherSuite>,
        start: usize,
        append: bool,
    },
    /// The refused suites, then the found ones reversed: settles whether
    /// the server reads past the 64th suite, and who decides.
    ReadsAll {
        start: usize,
        seen: usize,
    },
    Family,
    Preference {
        reversed: Vec<CipherSuite>,
    },
}

/// One protocol's pass.
#[derive(Debug)]
pub struct SuitePass {
    v: ProtocolVersion,
    groups: Vec<NamedGroup>,
    remaining: Vec<CipherSuite>,
    found: Vec<CipherSuite>,
    skip: usize,
    limit: Option<usize>,
    partial: bool,
    evidence: String,
    deflate_tried: bool,
    /// Set once a hello has shown who decides.
    preference: Option<Option<bool>>,
    no_append: bool,
    claims: Vec<Vec<CipherSuite>>,
    /// The special families, left out of the offers since a hello with
    /// them was refused.
    parked: Vec<CipherSuite>,
    /// The refused hello that carried them, until the next answer says
    /// whether they caused the refusal.
    refused_with_special: Option<Vec<CipherSuite>>,
    /// Proven: a hello with them was refused, the same without them answered.
    special_broke: bool,
    families: Vec<(&'static str, Vec<CipherSuite>)>,
    /// Suites of families that broke a hello at another protocol and were
    /// not answered on their own there are never offered here: how many
    /// such families were known when that was last applied.
    excluded: usize,
    families_started: bool,
    intolerance_noted: bool,
    phase: Phase,
    pending: Option<Pending>,
    /// A hello decided by the last answer, to send next.
    next: Option<HelloSpec>,
    /// An answer that ends or redirects the pass, held until the TLS 1.2
    /// pass running beside this one has finished: what to do next depends
    /// on what TLS 1.2 learnt (whether the server reads past the 64th
    /// suite, which key exchange families break its hellos, whether a TLS
    /// ≤ 1.2 version is supported at all), so the decision is the one the
    /// pass would have made had it run after TLS 1.2.
    deferred: Option<(Answer, Pending)>,
    /// Whether this pass may hand part of its suites to other lanes (see
    /// [`SuitePass::split_off`]); false once it has.
    splittable: bool,
    /// A lane split off another pass of the same protocol (its lead).
    lane: bool,
}

impl SuitePass {
    pub fn new(v: ProtocolVersion) -> Self {
        let groups = if v == ProtocolVersion::TLS13 {
            tls13_groups()
        } else {
            tls12_curves()
        };
        Self {
            v,
            groups,
            remaining: ordered_suites(v),
            found: Vec::new(),
            skip: 0,
            limit: None,
            partial: false,
            evidence: String::new(),
            deflate_tried: false,
            preference: None,
            no_append: false,
            claims: Vec::new(),
            parked: Vec::new(),
            refused_with_special: None,
            special_broke: false,
            families: Vec::new(),
            excluded: 0,
            families_started: false,
            intolerance_noted: false,
            phase: Phase::Main,
            pending: None,
            next: None,
            deferred: None,
            splittable: false,
            lane: false,
        }
    }

    /// Whether this pass is a lane split off another ([`SuitePass::split_off`]).
    pub fn is_lane(&self) -> bool {
        self.lane
    }

    /// A pass that may split into two lanes once the client is shown to
    /// decide (the planner asks for it when connections can go out side
    /// by side).
    pub fn splittable(v: ProtocolVersion) -> Self {
        Self {
            splittable: true,
            ..Self::new(v)
        }
    }

    /// Under client preference, remove and retry over disjoint parts of
    /// the suites finds the same suites, part by part, at the cost of one
    /// more refusal per part: up to `lanes` lanes, lane i taking every
    /// i-th remaining suite (so that each gets its share of the common
    /// ones, which come first), all side by side; `self` keeps the first. Only between hellos, before any
    /// window or family question has come up; the server's order is not
    /// needed (the client decides), so nothing has to be merged but the
    /// lists.
    pub fn split_off(&mut self, lanes: usize) -> Vec<SuitePass> {
        let ready = self.splittable
            && self.preference == Some(Some(false))
            && self.phase == Phase::Main
            && self.pending.is_none()
            && self.next.is_none()
            && self.deferred.is_none()
            && self.skip == 0
            && self.limit.is_none()
            && self.parked.is_empty()
            && self.refused_with_special.is_none()
            && !self.special_broke
            && self.found.len() >= SPLIT_FOUND;
        if !ready {
            return Vec::new();
        }
        let normal = self
            .remaining
            .iter()
            .filter(|s| !needs_more_than_a_certificate(**s))
            .count();
        let k = lanes.min(normal / SPLIT_AT_LEAST);
        if k < 2 {
            return Vec::new();
        }
        self.splittable = false;
        let mut parts = vec![Vec::new(); k];
        for (i, s) in self.remaining.iter().enumerate() {
            if let Some(part) = parts.get_mut(i % k) {
                part.push(*s);
            }
        }
        let mut parts = parts.into_iter();
        self.remaining = parts.next().unwrap_or_default();
        parts
            .map(|part| {
                let mut lane = Self::new(self.v);
                lane.lane = true;
                lane.remaining = part;
                lane.preference = Some(Some(false));
                lane.deflate_tried = true;
                lane.excluded = self.excluded;
                lane.evidence = self.evidence.clone();
                lane
            })
            .collect()
    }

    /// Whether the passes this one learns from have finished, so that it
    /// may decide how to go on: what the staged order gave it (TLS 1.1 and
    /// 1.0 after TLS 1.2, SSLv3 after every TLS ≤ 1.2 pass).
    fn may_decide(&self, shared: &Shared) -> bool {
        let before: &[ProtocolVersion] = match self.v {
            ProtocolVersion::TLS11 | ProtocolVersion::TLS10 => &[ProtocolVersion::TLS12],
            ProtocolVersion::SSL3 => &[ProtocolVersion::TLS12, ProtocolVersion::TLS11, ProtocolVersion::TLS10],
            _ => &[],
        };
        // A lane leaves the question whether the server reads past the
        // 64th suite to its lead, which asks it at most once.
        let window = !self.lane || shared.reads_all.is_some() || shared.leads_done.contains(&self.v);
        window && before.iter().all(|v| shared.finished.contains(v))
    }

    /// Whether this pass may still split into lanes.
    pub fn may_split(&self) -> bool {
        self.splittable
    }

    /// The protocol of this pass.
    pub fn version(&self) -> ProtocolVersion {
        self.v
    }

    /// The suites found so far, in the order found.
    pub fn found(&self) -> &[CipherSuite] {
        &self.found
    }

    fn spec(&self, suites: Vec<CipherSuite>, options: HelloOptions) -> HelloSpec {
        HelloSpec {
            version: self.v,
            suites,
            groups: self.groups.clone(),
            options,
        }
    }

    /// The next hello, or `Done`.
    pub fn step(&mut self, shared: &mut Shared) -> Step {
        if self.deferred.is_some() {
            if !self.may_decide(shared) {
                return Step::Wait;
            }
            if let Some((answer, pending)) = self.deferred.take() {
                self.take_answer(shared, answer, pending);
            }
        }
        if let Some(spec) = self.next.take() {
            return Step::Send(spec);
        }
        loop {
            match self.phase {
                Phase::Main => {
                    if self.v == ProtocolVersion::TLS13
                        && self.preference.is_none()
                        && self.found.len() >= 2
                        && shared.last_server_order.is_none()
                        && !shared.finished.contains(&ProtocolVersion::TLS12)
                    {
                        // Whether the found suites may ride along depends on
                        // who decided at TLS 1.2 (see `need`): wait for it.
                        return Step::Wait;
                    }
                    if self.splittable && self.preference.is_none() && self.found.len() >= SPLIT_FOUND && self.skip == 0
                    {
                        // Who decides, asked now rather than at the end: a
                        // client that decides lets the pass split in two.
                        if self.remaining.len() >= 2 * SPLIT_AT_LEAST {
                            let reversed: Vec<CipherSuite> = self.found.iter().rev().copied().take(WINDOW).collect();
                            self.pending = Some(Pending::Preference {
                                reversed: reversed.clone(),
                            });
                            return Step::Send(self.spec(reversed, HelloOptions::default()));
                        }
                        self.splittable = false;
                    }
                    if let Some(spec) = self.main_offer(shared) {
                        return Step::Send(spec);
                    }
                    self.phase = Phase::AfterMain;
                }
                Phase::AfterMain => {
                    if self.special_broke && !self.families_started {
                        self.families_started = true;
                        self.families = families(&self.parked);
                        self.phase = Phase::Families;
                        continue;
                    }
                    self.note_intolerance(shared);
                    if self.preference.is_none() && self.found.len() >= 2 {
                        // Server or client preference: the found suites in reverse order.
                        let reversed: Vec<CipherSuite> = self.found.iter().rev().copied().take(WINDOW).collect();
                        self.pending = Some(Pending::Preference {
                            reversed: reversed.clone(),
                        });
                        self.phase = Phase::Done;
                        return Step::Send(self.spec(reversed, HelloOptions::default()));
                    }
                    self.phase = Phase::Done;
                }
                Phase::Families => {
                    let found = &self.found;
                    for (_, f) in &mut self.families {
                        f.retain(|s| !found.contains(s));
                    }
                    self.families.retain(|(_, f)| !f.is_empty());
                    let Some((_, next)) = self.families.first().cloned() else {
                        self.phase = Phase::AfterMain;
                        continue;
                    };
                    self.pending = Some(Pending::Family);
                    return Step::Send(self.spec(next, HelloOptions::default()));
                }
                Phase::Done => return Step::Done,
            }
        }
    }

    fn main_offer(&mut self, shared: &Shared) -> Option<HelloSpec> {
        if self.excluded < shared.bad_families.len() {
            // What broke a hello at another protocol, and was refused on its
            // own there, is not asked again (passes running side by side
            // learn it as it comes).
            self.excluded = shared.bad_families.len();
            self.remaining
                .retain(|s| family_of(*s).is_none_or(|f| !shared.bad_families.contains(f)));
        }
        let start = self.skip.min(self.remaining.len());
        let tail: Vec<CipherSuite> = self.remaining.get(start..).unwrap_or(&[]).to_vec();
        let mut offer: Vec<CipherSuite> = tail.iter().copied().take(self.limit.unwrap_or(usize::MAX)).collect();
        // A server that may read only the first 64 suites gets a reversed
        // long list at most once (see the refusal below).
        let alternate =
            shared.reads_all != Some(false) && self.limit.is_none() && start == 0 && self.preference.is_none();
        let reversed = alternate && self.found.len() % 2 == 1;
        if reversed {
            // Only the first 64 are reversed, so a server that reads no
            // further sees the same suites in either order and its choice is
            // still its preference among them. The special families stay last.
            let (mut normal, special): (Vec<CipherSuite>, Vec<CipherSuite>) =
                offer.into_iter().partition(|s| !needs_more_than_a_certificate(*s));
            let head = normal.len().min(WINDOW);
            if let Some(first) = normal.get_mut(..head) {
                first.reverse();
            }
            normal.extend(special);
            offer = normal;
        }
        if offer.is_empty() {
            return None;
        }
        // Offer DEFLATE once, on the first hello likely to succeed.
        let options = HelloOptions {
            deflate: !self.deflate_tried && self.v != ProtocolVersion::TLS13 && !self.found.is_empty(),
            fallback_scsv: false,
            // Until a first suite is found, a TLS 1.3 retry request is
            // followed: the protocol counts only once a ServerHello says
            // so. Later hellos read the suite the request names.
            follow_retry: self.v == ProtocolVersion::TLS13 && self.found.is_empty(),
        };
        self.deflate_tried |= options.deflate;
        // While it is unknown who decides, the found suites ride along,
        // reversed, after the remaining ones. With alternation, wait for a
        // fifth suite: a server that decides has usually contradicted the
        // client's order by then, and a hello that carries the found suites
        // costs such a server one connection (a client-preference server
        // answers it for free). Where the last protocol showed client
        // preference, the found suites ride along from the second on.
        let need = if alternate && shared.last_server_order != Some(false) {
            5
        } else {
            2
        };
        let append = self.preference.is_none() && self.found.len() >= need && self.limit.is_none() && !self.no_append;
        let mut sent = offer.clone();
        if append {
            sent.extend(self.found.iter().rev());
        }
        self.pending = Some(Pending::Main {
            sent: sent.clone(),
            offer,
            tail,
            start,
            append,
        });
        Some(self.spec(sent, options))
    }

    /// Takes the answer to the hello out.
    pub fn record(&mut self, shared: &mut Shared, answer: Answer) {
        let Some(pending) = self.pending.take() else { return };
        // Beside a TLS 1.2 pass still under way, only a new suite found is
        // taken at once; anything that decides how the pass goes on waits
        // for TLS 1.2 to finish (see `deferred`).
        let waits = !self.may_decide(shared)
            && !matches!((&pending, &answer), (
                Pending::Main { offer, append, .. },
                Answer::Chose { suite, .. },
            ) if offer.contains(suite) && !(*append && self.found.contains(suite)));
        if waits {
            self.deferred = Some((answer, pending));
            return;
        }
        self.take_answer(shared, answer, pending);
    }

    fn take_answer(&mut self, shared: &mut Shared, answer: Answer, pending: Pending) {
        match pending {
            Pending::Main {
                sent,
                offer,
                tail,
                start,
                append,
            } => self.record_main(shared, answer, sent, offer, tail, start, append),
            Pending::ReadsAll { start, seen } => {
                match answer {
                    Answer::Chose { suite: c, .. } if self.found.contains(&c) => {
                        shared.reads_all = Some(true);
                        if self.found.len() >= 2 {
                            self.preference = if Some(&c) == self.found.first() {
                                Some(Some(true))
                            } else if Some(&c) == self.found.last() {
                                Some(Some(false))
                            } else {
                                Some(None)
                            };
                        }
                        self.phase = Phase::AfterMain;
                        return;
                    }
                    _ => shared.reads_all = Some(false),
                }
                // Offer what lies beyond the window.
                self.skip = start + seen;
                self.phase = Phase::Main;
            }
            Pending::Family => match answer {
                Answer::Chose { suite, .. } if self.families.first().is_some_and(|(_, f)| f.contains(&suite)) => {
                    if let Some((name, _)) = self.families.first() {
                        shared.good_families.insert(name);
                    }
                    self.found.push(suite);
                    self.remaining.retain(|x| *x != suite);
                    self.parked.retain(|x| *x != suite);
                }
                _ => {
                    if !self.families.is_empty() {
                        let (name, _) = self.families.remove(0);
                        if !shared.good_families.contains(name) {
                            shared.bad_families.insert(name);
                        }
                    }
                }
            },
            Pending::Preference { reversed } => {
                let p = match answer {
                    Answer::Chose { suite, .. } if Some(&suite) == self.found.first() => Some(true),
                    Answer::Chose { suite, .. } if Some(&suite) == reversed.first() => Some(false),
                    _ => None,
                };
                self.preference = Some(p);
                if self.v == ProtocolVersion::TLS12 && shared.last_server_order.is_none() {
                    shared.last_server_order = p;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_main(
        &mut self,
        shared: &mut Shared,
        answer: Answer,
        sent: Vec<CipherSuite>,
        offer: Vec<CipherSuite>,
        tail: Vec<CipherSuite>,
        start: usize,
        append: bool,
    ) {
        let v = self.v;
        if let Answer::Chose { suite, .. } = &answer {
            if sent.iter().position(|x| x == suite).is_some_and(|i| i >= WINDOW) {
                shared.reads_all = Some(true);
            }
            if let Some(refused) = self.refused_with_special.take() {
                // The same hello without the special families was answered:
                // one of them broke the refused one.
                self.special_broke = refused.contains(suite);
                shared.special_broke |= self.special_broke;
            }
        } else if !matches!(answer, Answer::Alert(_)) {
            self.refused_with_special = None;
        }
        match answer {
            Answer::Chose { suite: s, .. } if append && self.found.contains(&s) => {
                // A client-preference server takes the first found suite in
                // our order (the last found) only when no remaining suite is
                // supported: one hello says "done" and "client decides". A
                // server-preference server takes its top one.
                if Some(&s) == self.found.first() {
                    self.preference = Some(Some(true));
                } else if Some(&s) == self.found.last() {
                    self.preference = Some(Some(false));
                    if offer.len() == tail.len() || shared.reads_all == Some(true) {
                        self.phase = Phase::AfterMain;
                    } else {
                        self.skip = start + offer.len();
                    }
                } else {
                    self.preference = Some(None);
                }
            }
            Answer::Chose { suite: s, .. } if offer.contains(&s) => {
                // Under client preference every suite offered before `s` is
                // unsupported; a later find among them refutes that.
                if self.claims.iter().any(|c| c.contains(&s)) && self.preference.is_none() {
                    self.preference = Some(Some(true));
                }
                self.claims
                    .push(offer.iter().take_while(|x| **x != s).copied().collect());
                if self.found.is_empty() {
                    self.evidence = format!("ServerHello {} {}", label(v), s.name().unwrap_or("?"));
                }
                // Found past a refused window: the server did not read that far.
                if self.skip > 0 && self.limit.is_none() && !self.partial {
                    self.partial = true;
                    shared.findings.push(Finding::new(
                        "ignores-suites-past-64",
                        Severity::Medium,
                        format!("at {} the server ignores cipher suites past the 64th of a hello (as Windows 2003 Schannel does); a sender offering many suites may find no shared one", label(v)),
                        format!("{} was chosen only once the first 64 offered suites were dropped", s.name().unwrap_or("?")),
                    ));
                }
                self.found.push(s);
                self.remaining.retain(|x| *x != s);
                if !shared.supported.contains(&v) {
                    shared.supported.push(v);
                }
            }
            Answer::Chose { suite: s, .. } => {
                self.evidence = format!("the server chose {}, which was not offered", s.hex());
                self.phase = Phase::AfterMain;
            }
            Answer::Fallback(lower) => {
                if self.found.is_empty() {
                    self.evidence = format!("answered a {} hello with a {} ServerHello", label(v), label(lower));
                }
                self.phase = Phase::AfterMain;
            }
            Answer::Alert(a) if a == AlertDescription::PROTOCOL_VERSION && self.found.is_empty() => {
                self.evidence = format!("alert {}", hsscan_wire::Alert::fatal(a));
                self.phase = Phase::AfterMain;
            }
            refusal @ (Answer::Alert(_) | Answer::Dropped(_)) => {
                let dropped = matches!(refusal, Answer::Dropped(_));
                // A refusal of a hello carrying the special families is asked
                // again without them (not needed when the client is known to
                // decide: they come last, so everything before was refused).
                // Where: at TLS 1.2 (the first protocol asked, and the one
                // where a broken family shows), at a protocol the quick check
                // negotiated but whose first hello was refused, and anywhere
                // once a broken family has shown itself.
                let worth = if self.found.is_empty() {
                    shared.known_version == Some(v) || shared.special_broke
                } else {
                    v == ProtocolVersion::TLS12 || shared.special_broke
                };
                if !dropped
                    && worth
                    && self.parked.is_empty()
                    && self.preference != Some(Some(false))
                    && sent
                        .iter()
                        .any(|s| family_of(*s).is_some_and(|f| !shared.good_families.contains(f)))
                {
                    let (normal, special): (Vec<CipherSuite>, Vec<CipherSuite>) =
                        self.remaining.iter().partition(|s| !needs_more_than_a_certificate(**s));
                    self.remaining = normal;
                    self.parked = special;
                    self.refused_with_special = Some(sent);
                    if self.found.is_empty() && self.evidence.is_empty() {
                        self.evidence = refusal.describe();
                    }
                    self.phase = Phase::Main;
                    return;
                }
                self.refused_with_special = None;
                if append {
                    // Suites accepted before were refused: past a window the
                    // server does not read, or it is inconsistent. Stop
                    // appending; the explicit check after the loop decides.
                    self.no_append = true;
                    if sent.len() > WINDOW && shared.reads_all.is_none() {
                        shared.reads_all = Some(false);
                    }
                }
                if self.found.is_empty() && self.evidence.is_empty() {
                    self.evidence = refusal.describe();
                }
                // A long hello dropped where a shorter one might pass.
                if dropped && self.found.is_empty() {
                    let shorter = match self.limit {
                        None if offer.len() > WINDOW => Some(WINDOW),
                        None | Some(WINDOW) if offer.len() > 16 => Some(16),
                        _ => None,
                    };
                    match shorter {
                        Some(n) => self.limit = Some(n),
                        None => self.phase = Phase::AfterMain,
                    }
                    return;
                }
                // What the server saw (all of it, or the first 64) it refused.
                // Past the window lie only the suites of servers that read no
                // further, and those speak some other TLS ≤ 1.2 version too
                // (or the quick check saw this one): otherwise this refusal ends it.
                let seen = self.limit.unwrap_or(WINDOW);
                let may_hide = !self.found.is_empty()
                    || shared.known_version == Some(v)
                    || shared.supported.iter().any(|x| *x != ProtocolVersion::TLS13);
                if tail.len() <= seen || shared.reads_all == Some(true) || !may_hide {
                    self.phase = Phase::AfterMain;
                    return;
                }
                if shared.reads_all.is_none() && !self.found.is_empty() && self.limit.is_none() {
                    // One hello settles both questions: the refused suites,
                    // then the found ones reversed. A choice among the found
                    // proves the server reads past the 64th; which one it
                    // takes shows whether it or the client decides.
                    let mut probe = tail;
                    probe.extend(self.found.iter().rev());
                    self.pending = Some(Pending::ReadsAll { start, seen });
                    self.next = Some(self.spec(probe, HelloOptions::default()));
                    return;
                }
                // Offer what lies beyond the window.
                self.skip = start + seen;
            }
            Answer::Sslv2(_) | Answer::Unclear(_) | Answer::Budget => self.phase = Phase::AfterMain,
        }
    }

    fn note_intolerance(&mut self, shared: &mut Shared) {
        if self.intolerance_noted {
            return;
        }
        self.intolerance_noted = true;
        if let (Some(n), false) = (self.limit, self.found.is_empty()) {
            self.partial = true;
            shared.findings.push(Finding::new(
                "hello-size-intolerance",
                Severity::Medium,
                format!(
                    "at {} the server drops long hellos but answers hellos of {n} suites",
                    label(self.v)
                ),
                self.evidence.clone(),
            ));
        }
    }

    /// The pass's result. `unsure`: why the guard gave up, if it did.
    pub fn finish(mut self, shared: &mut Shared, connections: u32, unsure: Option<String>) -> PassResult {
        self.note_intolerance(shared);
        let preference = self.preference.flatten();
        let order = match preference {
            Some(true) if self.partial => "partial",
            Some(true) => "server",
            Some(false) => "client",
            None => "unknown",
        };
        let mut evidence = self.evidence;
        if let Some(why) = &unsure {
            evidence = if evidence.is_empty() {
                format!("unsure: {why}")
            } else {
                format!("{evidence}; unsure: {why}")
            };
        }
        if evidence.is_empty() {
            evidence = "no answer".to_owned();
        }
        PassResult {
            version: self.v,
            found: self.found,
            preference,
            unsure,
            evidence,
            order,
            connections,
        }
    }
}

/// A pass splits only when each lane gets at least this many suites to
/// offer, and only once it has found this many (a short list is not worth
/// the refusal each lane ends on).
const SPLIT_AT_LEAST: usize = 8;
const SPLIT_FOUND: usize = 8;

/// The parked suites, one list per family.
fn families(parked: &[CipherSuite]) -> Vec<(&'static str, Vec<CipherSuite>)> {
    let mut out: Vec<(&'static str, Vec<CipherSuite>)> = Vec::new();
    for s in parked {
        let f = family_of(*s).unwrap_or("other");
        match out.iter_mut().find(|(name, _)| *name == f) {
            Some((_, list)) => list.push(*s),
            None => out.push((f, vec![*s])),
        }
    }
    out
}
