//! `--enumerate` (SPEC §4): every protocol, every suite per protocol in the
//! server's order, server or client preference, groups, DH size, features
//! and every certificate chain, at a connection cost near the floor
//! (supported suites plus one refusal per 64 offered, per protocol).
//!
//! The decisions are the planner's ([`planner`], sans-I/O, with the suite
//! pass in [`suites`]); this module holds the result types and the small
//! async driver that sends the planner's hellos through the per-IP gate.

pub mod answer;
pub mod planner;
pub mod suites;

use crate::gate::HostGate;
use crate::probe::{Endpoint, ProbeConfig};
use futures::stream::{FuturesUnordered, StreamExt};
use hsscan_wire::catalog::{self, GroupKind};
use hsscan_wire::{CipherSuite, NamedGroup, ProtocolVersion};
use planner::{Outcome, Planner, Reply};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The most suites one hello carries when the server reads them all.
pub const WINDOW: usize = 64;

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
    /// Every protocol: `null` when it could not be settled.
    pub protocols: BTreeMap<&'static str, Option<bool>>,
    /// Suites per supported protocol (SSLv2: its three-byte cipher specs),
    /// in the server's order when `details[..].order` is `server`.
    pub ciphers: BTreeMap<&'static str, Vec<Codepoint>>,
    /// Every protocol: false when its list (or whether it is supported) may
    /// be incomplete; `unsure` says why.
    pub complete: BTreeMap<&'static str, bool>,
    pub unsure: Vec<Unsure>,
    pub server_preference: BTreeMap<&'static str, Option<bool>>,
    pub groups: Vec<NamedGroup>,
    pub features: Features,
    /// Smallest DH prime seen in a ServerKeyExchange, in bits.
    pub dh_bits: Option<usize>,
    pub details: BTreeMap<&'static str, ProtocolDetail>,
    /// What in a hello breaks this server (SPEC §8): filled by bisection.
    pub intolerance: Vec<Intolerance>,
}

impl Enumeration {
    /// Whether every protocol was settled.
    pub fn is_complete(&self) -> bool {
        self.complete.values().all(|c| *c)
    }

    /// Holds the result against what hellos on whole connections (the
    /// quick check's) negotiated: `(version, suite, which hello)`. The
    /// enumeration's own hellos close our side with the hello; a server
    /// that answered them otherwise than a whole connection would leave a
    /// negotiated suite out of its protocol's list, or the protocol out:
    /// that protocol is then not complete, and `unsure` says why.
    pub fn check_against(&mut self, seen: &[(ProtocolVersion, CipherSuite, &str)]) {
        for (v, suite, hello) in seen {
            let l = label(*v);
            let listed = self
                .ciphers
                .get(l)
                .is_some_and(|c| c.iter().any(|x| x.id == suite.hex()));
            if listed || self.complete.get(l) != Some(&true) {
                continue;
            }
            self.complete.insert(l, false);
            if self.protocols.get(l).copied().flatten() != Some(true) {
                self.protocols.insert(l, None);
            }
            self.unsure.push(Unsure {
                protocol: l,
                reason: format!(
                    "the quick check's {hello} hello negotiated {} at {l}, which the enumeration did not find",
                    suite.name().unwrap_or("a suite")
                ),
            });
        }
    }
}

/// Why a protocol's result is not settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsure {
    pub protocol: &'static str,
    pub reason: String,
}

/// A property of a hello that breaks the server (SPEC §3 `intolerance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intolerance {
    pub property: &'static str,
    pub evidence: String,
    /// `hello-length` dropped above a size: the longest hello (record
    /// bytes) answered below the drop. What a sender change must stay
    /// within; not part of the record (the evidence says it).
    #[serde(skip)]
    pub longest_answered: Option<usize>,
    /// `extension`: the extension type that breaks the hello.
    #[serde(skip)]
    pub extension: Option<u16>,
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

/// Label of a version as the JSON keys spell it: the registry's name.
pub fn label(v: ProtocolVersion) -> &'static str {
    v.name().unwrap_or("other")
}
/// Every group a TLS 1.3 hello may list.
pub fn tls13_groups() -> Vec<NamedGroup> {
    catalog::GROUPS
        .iter()
        .filter(|g| g.tls13 && g.kind != GroupKind::Grease)
        .map(|g| g.id)
        .collect()
}

/// Every elliptic curve a TLS 1.2 ECDHE exchange may use.
pub fn tls12_curves() -> Vec<NamedGroup> {
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

/// How the driver runs: the probe's timeouts, the SNI, retry backoff.
#[derive(Debug, Clone)]
pub struct Drive<'a> {
    pub probe: &'a ProbeConfig,
    pub sni: Option<&'a str>,
    /// The first retry's wait; each next one waits twice as long.
    pub backoff: Duration,
    /// What the quick check negotiated: the first hello known to work.
    pub known: Option<(ProtocolVersion, CipherSuite)>,
}

/// Enumerates one endpoint: the planner's hellos through `gate`, as many
/// at once as the planner hands out and the gate lets through.
pub async fn enumerate(gate: &HostGate, endpoint: &Endpoint, drive: &Drive<'_>) -> (Enumeration, Outcome) {
    let parallel = gate.per_host();
    // An enumeration hello is one question: our side closes with it (the
    // gate stops that for a server that drops such hellos).
    let half_closing = crate::probe::ProbeConfig {
        half_close: true,
        ..*drive.probe
    };
    let half_closing = &half_closing;
    let mut planner = Planner::new(drive.known, drive.backoff, parallel);
    let mut inflight = FuturesUnordered::new();
    // Hellos the planner handed out beyond what the host may have open at
    // once wait here, not at the gate, so that the longest pass goes first.
    let mut queue: Vec<(planner::Offer, crate::hellos::Prepared)> = Vec::new();
    let budget = crate::outcome::Failure::new(
        crate::outcome::Stage::Local,
        crate::outcome::FailureKind::BudgetSpent,
        "the --max-connections budget for this host is spent",
    );
    loop {
        let offers = planner.next_offers();
        let mut recorded = false;
        for offer in offers {
            match offer.spec.prepare(drive.sni) {
                Ok(hello) => queue.push((offer, hello)),
                Err(e) => {
                    // Our own hellos always encode; if one does not, it is a bug of ours.
                    let f = crate::outcome::Failure::new(
                        crate::outcome::Stage::Local,
                        crate::outcome::FailureKind::InternalError,
                        format!("building a hello: {e}"),
                    );
                    planner.record(offer.id, Reply::NotSent(&f));
                    recorded = true;
                }
            }
        }
        // Stable: among equals, the order the planner gave.
        queue.sort_by_key(|(o, _)| std::cmp::Reverse(o.priority));
        while inflight.len() < parallel && !queue.is_empty() {
            let (offer, hello) = queue.remove(0);
            inflight.push(async move {
                if !offer.delay.is_zero() {
                    tokio::time::sleep(offer.delay).await;
                }
                (offer.id, gate.probe(endpoint, &hello, half_closing).await)
            });
        }
        crate::wait::progress(|| {
            format!(
                "enumerating {}: {} · {} connections",
                endpoint.addr,
                planner.running(),
                gate.used()
            )
        });
        match inflight.next().await {
            Some((id, Some(r))) => planner.record(id, Reply::Answered(&r)),
            Some((id, None)) => planner.record(id, Reply::NotSent(&budget)),
            // Nothing out: finished, or a hello that never left changed the plan.
            None if recorded => continue,
            None => break,
        }
    }
    crate::wait::progress_done();
    let outcome = planner.finish();
    let enumeration = Enumeration {
        protocols: outcome.protocols.clone(),
        ciphers: outcome.ciphers.clone(),
        complete: outcome.complete.clone(),
        unsure: outcome.unsure.clone(),
        server_preference: outcome.server_preference.clone(),
        groups: outcome.groups.clone(),
        features: outcome.features.clone(),
        dh_bits: outcome.dh_bits,
        details: outcome.details.clone(),
        intolerance: Vec::new(),
    };
    (enumeration, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enumeration(tls12: &[u16]) -> Enumeration {
        let l = label(ProtocolVersion::TLS12);
        Enumeration {
            protocols: BTreeMap::from([(l, Some(true))]),
            ciphers: BTreeMap::from([(l, tls12.iter().map(|s| Codepoint::from(CipherSuite(*s))).collect())]),
            complete: BTreeMap::from([(l, true)]),
            unsure: Vec::new(),
            server_preference: BTreeMap::new(),
            groups: Vec::new(),
            features: Features::default(),
            dh_bits: None,
            details: BTreeMap::new(),
            intolerance: Vec::new(),
        }
    }

    #[test]
    fn a_suite_the_quick_check_negotiated_and_the_enumeration_missed_makes_it_unsure() {
        let mut e = enumeration(&[0xc02f, 0xc030]);
        e.check_against(&[(ProtocolVersion::TLS12, CipherSuite(0xc02f), "modern")]);
        assert!(e.is_complete() && e.unsure.is_empty());
        e.check_against(&[(ProtocolVersion::TLS12, CipherSuite(0x002f), "legacy")]);
        assert!(!e.is_complete());
        assert_eq!(e.protocols[label(ProtocolVersion::TLS12)], Some(true));
        assert!(e.unsure[0].reason.contains("legacy hello negotiated"), "{:?}", e.unsure);
        // A protocol the enumeration said no to, but a whole connection got.
        let mut e = enumeration(&[]);
        e.protocols.insert(label(ProtocolVersion::TLS12), Some(false));
        e.check_against(&[(ProtocolVersion::TLS12, CipherSuite(0x002f), "legacy")]);
        assert_eq!(e.protocols[label(ProtocolVersion::TLS12)], None);
    }
}
