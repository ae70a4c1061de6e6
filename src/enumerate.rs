//! `--enumerate` (SPEC §4): every protocol, every suite per protocol in the
//! server's order, server or client preference, groups, DH size, features
//! and every certificate chain, at a connection cost near the floor
//! (supported suites plus one refusal per 64 offered, per protocol).
//!
//! Suites are found by remove and retry. Each hello offers every suite not
//! yet found, most common first, so that for a server that reads the whole
//! list the sequence of choices is its global preference order. When a
//! hello of more than 64 suites is refused, the next offers only what came
//! after the first 64: a suite found there proves the server ignores suites
//! past the 64th (Windows 2003 Schannel), and the order across that
//! boundary is then reported as partial rather than guessed. A long hello
//! answered with a reset or silence instead of an alert is retried shorter
//! (64, then 16 suites per hello) to tell hello-size intolerance from "no".

use crate::finding::{Finding, Severity};
use crate::hellos::{self, HelloOptions, Prepared};
use crate::probe::{Endpoint, ProbeResult};
use crate::report::CertificateReport;
use crate::scan::{HostGate, ScanConfig};
use hsscan_wire::catalog::{self, GroupKind};
use hsscan_wire::{
    AlertDescription, CipherSuite, CompressionMethod, ExtensionType, NamedGroup, ProtocolVersion, ServerExtension,
    ServerKeyExchange,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most suites one hello carries when the server reads them all.
const WINDOW: usize = 64;

/// How one protocol fared.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolDetail {
    pub supported: bool,
    /// Why it is (not) supported: the ServerHello, the alert, the fallback.
    pub evidence: String,
    /// `server`, `client`, `partial` (server order known only within
    /// chunks) or `unknown`.
    pub order: &'static str,
    /// Connections this protocol cost.
    pub connections: u32,
}

/// `enumeration` of SPEC §3.
#[derive(Debug, Clone, Serialize)]
pub struct Enumeration {
    pub protocols: BTreeMap<&'static str, bool>,
    /// Suites per protocol (SSLv2: its three-byte cipher specs), in the
    /// server's order when `details[..].order` is `server`.
    pub ciphers: BTreeMap<&'static str, Vec<Codepoint>>,
    pub server_preference: BTreeMap<&'static str, Option<bool>>,
    pub groups: Vec<NamedGroup>,
    pub features: Features,
    /// Smallest DH prime seen in a ServerKeyExchange, in bits.
    pub dh_bits: Option<usize>,
    pub details: BTreeMap<&'static str, ProtocolDetail>,
    /// False when the connection budget ran out: the results are a lower bound.
    pub complete: bool,
}

/// A codepoint as SPEC §3 writes it: `{"id": "0x002f", "name": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Codepoint {
    pub id: String,
    pub name: Option<&'static str>,
}

impl From<CipherSuite> for Codepoint {
    fn from(s: CipherSuite) -> Self {
        Self {
            id: s.hex(),
            name: s.name(),
        }
    }
}

impl From<hsscan_wire::Sslv2CipherSpec> for Codepoint {
    fn from(s: hsscan_wire::Sslv2CipherSpec) -> Self {
        Self {
            id: s.hex(),
            name: s.name(),
        }
    }
}

/// `features` of SPEC §3: `null` when nothing seen could tell.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Features {
    pub secure_renegotiation: Option<bool>,
    pub extended_master_secret: Option<bool>,
    pub encrypt_then_mac: Option<bool>,
    pub ocsp_stapling: Option<bool>,
    pub session_ticket: Option<bool>,
    pub compression: Option<bool>,
    pub heartbeat: Option<bool>,
    pub fallback_scsv: Option<bool>,
}

/// Label of a version as the JSON keys spell it.
pub fn label(v: ProtocolVersion) -> &'static str {
    match v.0 {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1.0",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        _ => "other",
    }
}

/// What one hello drew.
enum Answer {
    /// A ServerHello at the offered version choosing this suite (or a HelloRetryRequest).
    Chose(CipherSuite),
    /// A ServerHello at a lower version.
    Fallback(ProtocolVersion),
    /// An alert.
    Alert(AlertDescription),
    /// A reset, a close or silence: possibly intolerance.
    Dropped(&'static str),
    /// The connection budget is spent.
    Budget,
}

/// Suites offerable at `v`, most common first: what OpenSSL and GnuTLS
/// implement, then the rest of the catalog.
fn ordered_suites(v: ProtocolVersion) -> Vec<CipherSuite> {
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
    if v == ProtocolVersion::TLS12 || v == ProtocolVersion::TLS13 {
        // At TLS 1.2 the common choices are AEAD: put them before the legacy list.
        let (aead, other): (Vec<&catalog::SuiteInfo>, Vec<&catalog::SuiteInfo>) = rest
            .into_iter()
            .partition(|s| rank(s) == 0 && s.properties.is_some_and(|p| p.aead));
        let mut out: Vec<CipherSuite> = aead.iter().map(|s| s.id).collect();
        out.append(&mut common);
        out.extend(other.iter().map(|s| s.id));
        return out;
    }
    common.extend(rest.iter().map(|s| s.id));
    common
}

/// Every group a TLS 1.3 hello may list.
fn tls13_groups() -> Vec<NamedGroup> {
    catalog::GROUPS
        .iter()
        .filter(|g| g.tls13 && g.kind != GroupKind::Grease)
        .map(|g| g.id)
        .collect()
}

/// Every elliptic curve a TLS 1.2 ECDHE exchange may use.
fn tls12_curves() -> Vec<NamedGroup> {
    catalog::GROUPS
        .iter()
        .filter(|g| {
            matches!(
                g.kind,
                GroupKind::EcPrime | GroupKind::EcChar2 | GroupKind::EcBrainpool | GroupKind::Montgomery
            )
        })
        .filter(|g| !(0x001f..=0x0021).contains(&g.id.0))
        .map(|g| g.id)
        .collect()
}

struct Run<'a> {
    gate: &'a HostGate,
    endpoint: &'a Endpoint,
    cfg: &'a ScanConfig,
    sni: Option<String>,
    chains: Vec<Vec<Vec<u8>>>,
    features: Features,
    dh_bits: Option<usize>,
    findings: Vec<Finding>,
    complete: bool,
    /// Whether the server reads suites past the 64th: proven by a choice
    /// made past that position, disproven by one found only beyond it.
    reads_all: Option<bool>,
    /// Who decided at the last protocol where that was settled (true: the
    /// server). Only a hint for spending hellos, never reported.
    last_server_order: Option<bool>,
    /// The group of the first HelloRetryRequest to a TLS 1.3 hello that
    /// offered every group: the group pass's first answer, already known.
    first_retry_group: Option<NamedGroup>,
}

impl Run<'_> {
    async fn send(&mut self, hello: &Prepared) -> Option<ProbeResult> {
        let r = self.gate.probe(self.endpoint, hello, &self.cfg.probe).await;
        if r.is_none() {
            self.complete = false;
        }
        r
    }

    /// Learns what a flight shows beyond the chosen suite.
    fn observe(&mut self, r: &ProbeResult, offered_deflate: bool) {
        let f = &r.flight;
        if !f.certificates.is_empty() && !self.chains.iter().any(|c| c.first() == f.certificates.first()) {
            self.chains.push(f.certificates.clone());
        }
        if let Some(ServerKeyExchange::Dh { .. }) = &f.server_key_exchange {
            if let Some(bits) = f.server_key_exchange.as_ref().and_then(ServerKeyExchange::modulus_bits) {
                self.dh_bits = Some(self.dh_bits.map_or(bits, |b| b.min(bits)));
            }
        }
        let Some(h) = &f.server_hello else { return };
        if h.selected_version() == ProtocolVersion::TLS13 {
            return;
        }
        let has = |t: ExtensionType| h.extension(t).is_some();
        let or = |cur: Option<bool>, v: bool| Some(cur.unwrap_or(false) || v);
        self.features.secure_renegotiation = or(
            self.features.secure_renegotiation,
            has(ExtensionType::RENEGOTIATION_INFO),
        );
        self.features.extended_master_secret = or(
            self.features.extended_master_secret,
            has(ExtensionType::EXTENDED_MASTER_SECRET),
        );
        self.features.session_ticket = or(self.features.session_ticket, has(ExtensionType::SESSION_TICKET));
        self.features.heartbeat = or(self.features.heartbeat, has(ExtensionType::HEARTBEAT));
        let stapled = f.certificate_status.is_some()
            || matches!(
                h.extension(ExtensionType::STATUS_REQUEST),
                Some(ServerExtension::StatusRequest)
            );
        self.features.ocsp_stapling = or(self.features.ocsp_stapling, stapled);
        // Encrypt-then-MAC only applies to CBC suites: AEAD choices say nothing.
        let cbc = catalog::suite(h.cipher_suite)
            .and_then(|s| s.properties)
            .is_some_and(|p| p.mode == "CBC");
        if cbc {
            self.features.encrypt_then_mac = or(self.features.encrypt_then_mac, has(ExtensionType::ENCRYPT_THEN_MAC));
        }
        if offered_deflate {
            self.features.compression = or(self.features.compression, h.compression != CompressionMethod::NULL);
        }
    }

    async fn ask(
        &mut self,
        v: ProtocolVersion,
        offer: &[CipherSuite],
        groups: &[NamedGroup],
        options: &HelloOptions,
    ) -> Answer {
        let hello = match hellos::for_version_with(v, offer, groups, &[], self.sni.as_deref(), options) {
            Ok(h) => h,
            // Our own hellos always encode; if one does not, stop rather than misread it.
            Err(_) => {
                self.complete = false;
                return Answer::Budget;
            }
        };
        let Some(r) = self.send(&hello).await else {
            return Answer::Budget;
        };
        self.observe(&r, options.deflate);
        // (The TLS 1.3 suite pass, the only TLS 1.3 asker, offers every group.)
        if v == ProtocolVersion::TLS13 && self.first_retry_group.is_none() {
            self.first_retry_group = r
                .flight
                .retry_request
                .as_ref()
                .and_then(hsscan_wire::ServerHello::key_share_group);
        }
        let answer = classify(&r, v);
        if std::env::var_os("HSSCAN_TRACE").is_some() {
            let first: Vec<String> = offer.iter().take(3).map(|s| s.hex()).collect();
            eprintln!(
                "hsscan trace: {} offer {} suites [{} ..] -> {}",
                label(v),
                offer.len(),
                first.join(" "),
                answer.describe()
            );
        }
        answer
    }

    /// Remove and retry over the suites offerable at `v`.
    async fn protocol(&mut self, v: ProtocolVersion) -> (ProtocolDetail, Vec<CipherSuite>, Option<bool>) {
        let before = self.gate.used();
        let groups = if v == ProtocolVersion::TLS13 {
            tls13_groups()
        } else {
            tls12_curves()
        };
        let mut remaining = ordered_suites(v);
        let mut found: Vec<CipherSuite> = Vec::new();
        let mut skip = 0usize;
        let mut limit: Option<usize> = None;
        let mut partial = false;
        let mut evidence = String::new();
        let mut deflate_tried = false;
        // Set once a hello has shown who decides.
        let mut preference: Option<Option<bool>> = None;
        let mut no_append = false;
        let mut claims: Vec<Vec<CipherSuite>> = Vec::new();
        let mut forward_only = false;
        loop {
            let start = skip.min(remaining.len());
            let tail: Vec<CipherSuite> = remaining.get(start..).unwrap_or(&[]).to_vec();
            let mut offer: Vec<CipherSuite> = tail.iter().copied().take(limit.unwrap_or(usize::MAX)).collect();
            // Every other hello offers the remaining suites reversed: a
            // client-preference server must then take the first supported one
            // in each order, so any choice that contradicts an earlier one
            // proves the server decides, without a hello spent on asking. A
            // server that may read only the first 64 suites gets a reversed
            // long list at most once (see the refusal below).
            let alternate =
                self.reads_all != Some(false) && limit.is_none() && start == 0 && preference.is_none() && !forward_only;
            let reversed = alternate && found.len() % 2 == 1;
            if reversed {
                offer.reverse();
            }
            if offer.is_empty() {
                break;
            }
            // Offer DEFLATE once, on the first hello likely to succeed.
            let options = HelloOptions {
                deflate: !deflate_tried && v != ProtocolVersion::TLS13 && !found.is_empty(),
                fallback_scsv: false,
            };
            deflate_tried |= options.deflate;
            // While it is unknown who decides, the found suites ride along,
            // reversed, after the remaining ones.
            // With alternation, wait for a fifth suite: a server that decides
            // has usually contradicted the client's order by then, and a
            // hello that carries the found suites costs such a server one
            // connection (a client-preference server answers it for free).
            // Where the last protocol showed client preference, the found
            // suites ride along from the second on: that costs such a server
            // nothing and settles small sets without an extra hello.
            let need = if alternate && self.last_server_order != Some(false) {
                5
            } else {
                2
            };
            let append = preference.is_none() && found.len() >= need && limit.is_none() && !no_append;
            let mut sent = offer.clone();
            if append {
                sent.extend(found.iter().rev());
            }
            let answer = self.ask(v, &sent, &groups, &options).await;
            if let Answer::Chose(s) = &answer {
                if sent.iter().position(|x| x == s).is_some_and(|i| i >= WINDOW) {
                    self.reads_all = Some(true);
                }
            }
            match answer {
                Answer::Chose(s) if append && found.contains(&s) => {
                    // A client-preference server takes the first found suite
                    // in our order (the last found) only when no remaining
                    // suite is supported: one hello says "done" and "client
                    // decides". A server-preference server takes its top one.
                    if Some(&s) == found.first() {
                        preference = Some(Some(true));
                        continue;
                    }
                    if Some(&s) == found.last() {
                        preference = Some(Some(false));
                        if offer.len() == tail.len() || self.reads_all == Some(true) {
                            break;
                        }
                        skip = start + offer.len();
                        continue;
                    }
                    preference = Some(None);
                    continue;
                }
                Answer::Chose(s) if offer.contains(&s) => {
                    // Under client preference every suite offered before `s` is
                    // unsupported; a later find among them refutes that.
                    if claims.iter().any(|c: &Vec<CipherSuite>| c.contains(&s)) && preference.is_none() {
                        preference = Some(Some(true));
                    }
                    claims.push(offer.iter().take_while(|x| **x != s).copied().collect());
                    if found.is_empty() {
                        evidence = format!("ServerHello {} {}", label(v), s.name().unwrap_or("?"));
                    }
                    // Found past a refused window: the server did not read that far.
                    if skip > 0 && limit.is_none() && !partial {
                        partial = true;
                        self.findings.push(Finding::new(
                            "ignores-suites-past-64",
                            Severity::Medium,
                            format!("at {} the server ignores cipher suites past the 64th of a hello (as Windows 2003 Schannel does); a sender offering many suites may find no shared one", label(v)),
                            format!("{} was chosen only once the first 64 offered suites were dropped", s.name().unwrap_or("?")),
                        ));
                    }
                    found.push(s);
                    remaining.retain(|x| *x != s);
                }
                Answer::Chose(s) => {
                    evidence = format!("the server chose {}, which was not offered", s.hex());
                    break;
                }
                Answer::Fallback(lower) => {
                    if found.is_empty() {
                        evidence = format!("answered a {} hello with a {} ServerHello", label(v), label(lower));
                    }
                    break;
                }
                Answer::Alert(a) if a == AlertDescription::PROTOCOL_VERSION && found.is_empty() => {
                    evidence = format!("alert {}", hsscan_wire::Alert::fatal(a));
                    break;
                }
                refusal @ (Answer::Alert(_) | Answer::Dropped(_)) => {
                    let dropped = matches!(refusal, Answer::Dropped(_));
                    if append {
                        // Suites accepted before were refused: past a window the
                        // server does not read, or it is inconsistent. Stop
                        // appending; the explicit check after the loop decides.
                        no_append = true;
                        if sent.len() > WINDOW && self.reads_all.is_none() {
                            self.reads_all = Some(false);
                        }
                    }
                    if found.is_empty() && evidence.is_empty() {
                        evidence = match refusal {
                            Answer::Alert(a) => format!("alert {}", hsscan_wire::Alert::fatal(a)),
                            Answer::Dropped(how) => how.to_owned(),
                            _ => String::new(),
                        };
                    }
                    // A reversed long list refused by a server not known to read
                    // past the 64th suite proves nothing about the rest: ask
                    // again in forward order, and never reverse again.
                    if reversed && offer.len() > WINDOW && self.reads_all != Some(true) {
                        forward_only = true;
                        continue;
                    }
                    // A long hello dropped where a shorter one might pass.
                    if dropped && found.is_empty() {
                        let shorter = match limit {
                            None if offer.len() > WINDOW => Some(WINDOW),
                            None | Some(WINDOW) if offer.len() > 16 => Some(16),
                            _ => None,
                        };
                        match shorter {
                            Some(n) => {
                                limit = Some(n);
                                continue;
                            }
                            None => break,
                        }
                    }
                    // What the server saw (all of it, or the first 64) it refused.
                    let seen = limit.unwrap_or(WINDOW);
                    if tail.len() <= seen || self.reads_all == Some(true) {
                        break;
                    }
                    if self.reads_all.is_none() && !found.is_empty() && limit.is_none() {
                        // One hello settles both questions: the refused suites, then
                        // the found ones reversed. A choice among the found proves
                        // the server reads past the 64th; which one it takes shows
                        // whether it or the client decides.
                        let mut probe = tail.clone();
                        probe.extend(found.iter().rev());
                        match self.ask(v, &probe, &groups, &HelloOptions::default()).await {
                            Answer::Chose(c) if found.contains(&c) => {
                                self.reads_all = Some(true);
                                if found.len() >= 2 {
                                    preference = if Some(&c) == found.first() {
                                        Some(Some(true))
                                    } else if Some(&c) == found.last() {
                                        Some(Some(false))
                                    } else {
                                        Some(None)
                                    };
                                }
                                break;
                            }
                            Answer::Budget => break,
                            _ => self.reads_all = Some(false),
                        }
                    }
                    // Offer what lies beyond the window.
                    skip = start + seen;
                    continue;
                }
                Answer::Budget => break,
            }
        }
        if let (Some(n), false) = (limit, found.is_empty()) {
            partial = true;
            self.findings.push(Finding::new(
                "hello-size-intolerance",
                Severity::Medium,
                format!(
                    "at {} the server drops long hellos but answers hellos of {n} suites",
                    label(v)
                ),
                evidence.clone(),
            ));
        }
        // Server or client preference: the found suites in reverse order.
        let preference = if let Some(p) = preference {
            p
        } else if found.len() >= 2 {
            let reversed: Vec<CipherSuite> = found.iter().rev().copied().take(WINDOW).collect();
            match self.ask(v, &reversed, &groups, &HelloOptions::default()).await {
                Answer::Chose(s) if Some(&s) == found.first() => Some(true),
                Answer::Chose(s) if Some(&s) == reversed.first() => Some(false),
                _ => None,
            }
        } else {
            None
        };
        if preference.is_some() {
            self.last_server_order = preference;
        }
        let order = match preference {
            Some(true) if partial => "partial",
            Some(true) => "server",
            Some(false) => "client",
            None => "unknown",
        };
        if evidence.is_empty() {
            evidence = "no answer".to_owned();
        }
        let detail = ProtocolDetail {
            supported: !found.is_empty(),
            evidence,
            order,
            connections: self.gate.used() - before,
        };
        (detail, found, preference)
    }

    async fn sslv2(&mut self) -> (ProtocolDetail, Vec<Codepoint>) {
        let before = self.gate.used();
        let detail = |supported, evidence: String, used| ProtocolDetail {
            supported,
            evidence,
            order: "unknown",
            connections: used,
        };
        let Ok(hello) = hellos::sslv2() else {
            return (detail(false, "the hello could not be encoded".into(), 0), vec![]);
        };
        let Some(r) = self.send(&hello).await else {
            return (detail(false, "connection budget spent".into(), 0), vec![]);
        };
        let used = self.gate.used() - before;
        match &r.flight.sslv2 {
            // The SERVER-HELLO lists every spec the server shares with us: one connection.
            Some(h) if !h.cipher_specs.is_empty() => {
                if !h.certificate.is_empty() {
                    self.chains.push(vec![h.certificate.clone()]);
                }
                let specs: Vec<Codepoint> = h.cipher_specs.iter().map(|s| Codepoint::from(*s)).collect();
                let names: Vec<String> = specs
                    .iter()
                    .map(|c| c.name.map_or_else(|| c.id.clone(), str::to_owned))
                    .collect();
                (
                    detail(true, format!("SSLv2 SERVER-HELLO with {}", names.join(", ")), used),
                    specs,
                )
            }
            Some(_) => (
                detail(false, "SSLv2 SERVER-HELLO with no shared cipher spec".into(), used),
                vec![],
            ),
            None => {
                let why = r
                    .failure
                    .as_ref()
                    .map_or_else(|| "no SSLv2 answer".to_owned(), |f| format!("{}: {}", f.kind, f.detail));
                (detail(false, why, used), vec![])
            }
        }
    }

    /// Groups by HelloRetryRequest (TLS 1.3) or ServerKeyExchange (TLS 1.2).
    async fn groups(&mut self, v: ProtocolVersion, suites: &[CipherSuite], known: &[NamedGroup]) -> Vec<NamedGroup> {
        let mut remaining = if v == ProtocolVersion::TLS13 {
            tls13_groups()
        } else {
            tls12_curves()
        };
        remaining.retain(|g| !known.contains(g));
        let mut found = Vec::new();
        // The suite pass already asked the first question with every group.
        if v == ProtocolVersion::TLS13 {
            if let Some(g) = self.first_retry_group.filter(|g| remaining.contains(g)) {
                found.push(g);
                remaining.retain(|x| *x != g);
            }
        }
        while !remaining.is_empty() {
            let Ok(hello) = hellos::for_version(v, suites, &remaining, &[], self.sni.as_deref()) else {
                break;
            };
            let Some(r) = self.send(&hello).await else { break };
            self.observe(&r, false);
            let group = match v {
                ProtocolVersion::TLS13 => r
                    .flight
                    .retry_request
                    .as_ref()
                    .and_then(hsscan_wire::ServerHello::key_share_group),
                _ => r.flight.server_key_exchange.as_ref().and_then(ServerKeyExchange::group),
            };
            match group {
                Some(g) if remaining.contains(&g) => {
                    found.push(g);
                    remaining.retain(|x| *x != g);
                }
                _ => break,
            }
        }
        found
    }

    /// TLS_FALLBACK_SCSV: a hello below the best version, flagged as a fallback.
    async fn fallback_scsv(&mut self, lower: ProtocolVersion, suites: &[CipherSuite]) -> Option<bool> {
        let options = HelloOptions {
            deflate: false,
            fallback_scsv: true,
        };
        match self.ask(lower, suites, &tls12_curves(), &options).await {
            Answer::Alert(a) if a == AlertDescription::INAPPROPRIATE_FALLBACK => Some(true),
            Answer::Chose(_) | Answer::Fallback(_) => Some(false),
            _ => None,
        }
    }
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Chose(s) => format!("chose {}", s.name().map_or_else(|| s.hex(), str::to_owned)),
            Answer::Fallback(v) => format!("fell back to {}", label(*v)),
            Answer::Alert(a) => format!("alert {}", hsscan_wire::Alert::fatal(*a)),
            Answer::Dropped(how) => (*how).to_owned(),
            Answer::Budget => "budget spent".to_owned(),
        }
    }
}

fn classify(r: &ProbeResult, v: ProtocolVersion) -> Answer {
    let f = &r.flight;
    if let Some(h) = &f.retry_request {
        return Answer::Chose(h.cipher_suite);
    }
    if let Some(h) = &f.server_hello {
        let got = h.selected_version();
        return if got == v {
            Answer::Chose(h.cipher_suite)
        } else {
            Answer::Fallback(got)
        };
    }
    if let Some(a) = f.alerts.last() {
        return Answer::Alert(a.description);
    }
    use crate::outcome::FailureKind;
    match r.failure.as_ref().map(|f| f.kind) {
        Some(FailureKind::ResetAfterHello) => Answer::Dropped("connection reset after the hello"),
        Some(FailureKind::TimeoutAfterHello) => Answer::Dropped("no answer to the hello"),
        Some(FailureKind::ClosedAfterHello) => Answer::Dropped("connection closed after the hello"),
        Some(FailureKind::RateLimited) => Answer::Budget,
        _ => Answer::Dropped("no TLS answer"),
    }
}

/// Enumerates one endpoint. Returns the enumeration, extra findings and
/// the certificate chains seen (one per key type the suites drew).
pub async fn enumerate(
    gate: &HostGate,
    endpoint: &Endpoint,
    cfg: &ScanConfig,
    sni: Option<String>,
    host: Option<&str>,
) -> (Enumeration, Vec<Finding>, Vec<CertificateReport>) {
    let mut run = Run {
        gate,
        endpoint,
        cfg,
        sni,
        chains: Vec::new(),
        features: Features::default(),
        dh_bits: None,
        findings: Vec::new(),
        complete: true,
        reads_all: None,
        last_server_order: None,
        first_retry_group: None,
    };
    let mut protocols = BTreeMap::new();
    let mut ciphers = BTreeMap::new();
    let mut preference = BTreeMap::new();
    let mut details = BTreeMap::new();

    let (d2, specs) = run.sslv2().await;
    protocols.insert("SSLv2", d2.supported);
    if d2.supported {
        ciphers.insert("SSLv2", specs);
        preference.insert("SSLv2", None);
    }
    details.insert("SSLv2", d2);

    let mut supported: Vec<(ProtocolVersion, Vec<CipherSuite>)> = Vec::new();
    // TLS 1.2 first: the protocol most servers have settles early whether
    // the server reads past the 64th suite, which makes later refusals final.
    for v in [
        ProtocolVersion::TLS12,
        ProtocolVersion::TLS13,
        ProtocolVersion::TLS11,
        ProtocolVersion::TLS10,
        ProtocolVersion::SSL3,
    ] {
        let (detail, found, pref) = run.protocol(v).await;
        let l = label(v);
        protocols.insert(l, detail.supported);
        if detail.supported {
            ciphers.insert(l, found.iter().map(|s| Codepoint::from(*s)).collect());
            preference.insert(l, pref);
            supported.push((v, found));
        }
        details.insert(l, detail);
    }

    let mut groups = Vec::new();
    if let Some((_, s13)) = supported.iter().find(|(v, _)| *v == ProtocolVersion::TLS13) {
        let first: Vec<CipherSuite> = s13.iter().take(1).copied().collect();
        groups = run.groups(ProtocolVersion::TLS13, &first, &[]).await;
    }
    supported.sort_by_key(|(v, _)| catalog::version_rank(*v));
    let tls12ish = supported.iter().rev().find(|(v, _)| *v != ProtocolVersion::TLS13);
    if let Some((v, suites)) = tls12ish {
        // Curves the TLS 1.3 pass found need no second look; the TLS 1.2 pass
        // looks for the ones TLS 1.3 does not use (secp256k1, brainpool, …).
        let known = groups.clone();
        let ecdhe: Vec<CipherSuite> = suites
            .iter()
            .copied()
            .filter(|s| {
                catalog::suite(*s)
                    .and_then(|i| i.properties)
                    .is_some_and(|p| p.kx == "ECDHE")
            })
            .take(WINDOW)
            .collect();
        if !ecdhe.is_empty() {
            for g in run.groups(*v, &ecdhe, &known).await {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
    }
    // Fallback SCSV needs two TLS ≤ 1.2 versions (or 1.3 and 1.2).
    let versions: Vec<ProtocolVersion> = supported.iter().map(|(v, _)| *v).collect();
    if versions.len() >= 2 {
        if let Some((lower, suites)) = supported.iter().rev().nth(1) {
            let offer: Vec<CipherSuite> = suites.iter().take(WINDOW).copied().collect();
            run.features.fallback_scsv = run.fallback_scsv(*lower, &offer).await;
        }
    }

    let certificates: Vec<CertificateReport> = run
        .chains
        .iter()
        .map(|c| crate::scan::certificate_report(c, host, cfg))
        .collect();
    let enumeration = Enumeration {
        protocols,
        ciphers,
        server_preference: preference,
        groups,
        features: run.features.clone(),
        dh_bits: run.dh_bits,
        details,
        complete: run.complete,
    };
    (enumeration, run.findings, certificates)
}
