//! The planner against the emulator's pure responder, in memory: every
//! shipped profile enumerated to its configured truth, and servers that
//! turn hostile after N hellos never reported short as exact.

use crate::emulate::chain::Chains;
use crate::emulate::profile::{Profile, Refusal, SHIPPED};
use crate::emulate::responder::{alert_record, Answer as Decided, Arrival, Bytes, Responder};
use crate::enumerate::planner::{Outcome, Planner, Reply, PROTOCOLS};
use crate::enumerate::{label, tls12_curves, tls13_groups};
use crate::probe::{answer_from_bytes, ProbeResult, StreamEnd};
use hsscan_wire::catalog::{self, GroupKind};
use hsscan_wire::{CipherSuite, Deframer, Event, NamedGroup, ProtocolVersion, Side};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a server misbehaves from its `from`-th connection on, for `len`.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    Reset,
    Garbage,
    Silence,
    RateLimit,
}

struct Server<'a> {
    responder: Responder<'a>,
    rng: Bytes,
    hostile: Option<(Hostile, usize, usize)>,
    connections: usize,
}

impl Server<'_> {
    /// The probe result the planner's hello `writes` would draw.
    fn answer(&mut self, writes: &[Vec<u8>]) -> ProbeResult {
        let n = self.connections;
        self.connections += 1;
        if let Some((how, from, len)) = self.hostile {
            if n >= from && n - from < len {
                return match how {
                    Hostile::Reset => answer_from_bytes(&[], StreamEnd::Reset),
                    Hostile::Garbage => answer_from_bytes(b"\x00\x01garbage that is no TLS\xff\xfe", StreamEnd::Closed),
                    Hostile::Silence => answer_from_bytes(&[], StreamEnd::Open),
                    Hostile::RateLimit => {
                        answer_from_bytes(b"421 4.7.0 mx Error: too many connections\r\n", StreamEnd::Closed)
                    }
                };
            }
        }
        let bytes: Vec<u8> = writes.concat();
        let mut d = Deframer::new(Side::Client);
        if d.push(&bytes).is_err() {
            return answer_from_bytes(&[], StreamEnd::Closed);
        }
        let arrival = Arrival {
            bytes: bytes.len(),
            records: 1,
            reads: writes.len(),
            record_version: None,
        };
        let decision = match d.next_event() {
            Ok(Some(Event::ClientHello(h))) => self.responder.tls(&h, arrival, false, &mut self.rng),
            Ok(Some(Event::Sslv2ClientHello(h))) => self.responder.sslv2(&h, arrival, &mut self.rng),
            _ => return answer_from_bytes(&[], StreamEnd::Closed),
        };
        match decision.answer {
            Decided::Flight { bytes, .. } => answer_from_bytes(&bytes, StreamEnd::Closed),
            Decided::Refuse(Refusal::Alert(a)) => {
                answer_from_bytes(&alert_record(ProtocolVersion::TLS10, a), StreamEnd::Closed)
            }
            Decided::Refuse(Refusal::Close) => answer_from_bytes(&[], StreamEnd::Closed),
            Decided::Refuse(Refusal::Reset) => answer_from_bytes(&[], StreamEnd::Reset),
            Decided::Refuse(Refusal::Silence) => answer_from_bytes(&[], StreamEnd::Open),
        }
    }
}

/// Runs the planner to the end against `server` with up to `parallel`
/// hellos out at once, answered in a scrambled order (as connections of
/// different lengths finish), the longest pass's hellos first as the
/// driver sends them.
fn enumerate(server: &mut Server<'_>, known: Option<(ProtocolVersion, CipherSuite)>, parallel: usize) -> Outcome {
    let mut planner = Planner::new(known, Duration::ZERO, parallel);
    let mut queue: Vec<crate::enumerate::planner::Offer> = Vec::new();
    let mut out: Vec<(u32, ProbeResult)> = Vec::new();
    let mut turn: u64 = 0x2545_f491_4f6c_dd1d;
    let mut guard = 0;
    loop {
        queue.extend(planner.next_offers());
        queue.sort_by_key(|o| std::cmp::Reverse(o.priority));
        while out.len() < parallel && !queue.is_empty() {
            let offer = queue.remove(0);
            let hello = offer.spec.prepare(None).expect("our hellos encode");
            out.push((offer.id, server.answer(&hello.writes)));
        }
        if out.is_empty() {
            break;
        }
        // xorshift: which of the connections out finishes first.
        turn ^= turn << 13;
        turn ^= turn >> 7;
        turn ^= turn << 17;
        let (id, r) = out.remove((turn % out.len() as u64) as usize);
        planner.record(id, Reply::Answered(&r));
        guard += 1;
        assert!(guard < 4000, "the planner does not end");
    }
    assert!(
        planner.is_done(),
        "the planner stopped handing out hellos before its end"
    );
    planner.finish()
}

/// The connections the driver may have open at once in these tests.
const PARALLEL: [usize; 3] = [1, 2, 4];

/// What a profile says the server negotiates.
struct Truth {
    ciphers: BTreeMap<&'static str, Vec<CipherSuite>>,
    server_order: bool,
    groups: Vec<NamedGroup>,
}

fn truth(p: &Profile) -> Truth {
    let tls = &p.tls;
    let mut ciphers = BTreeMap::new();
    let ec = |g: &NamedGroup| {
        catalog::group(*g).is_some_and(|i| {
            matches!(
                i.kind,
                GroupKind::EcChar2
                    | GroupKind::EcPrime
                    | GroupKind::EcBrainpool
                    | GroupKind::Montgomery
                    | GroupKind::Sm2
            )
        })
    };
    let has_curve = tls.groups.iter().any(ec);
    if p.misbehave.after_hello.is_none() {
        for v in &tls.versions {
            if *v == ProtocolVersion::SSL2 {
                if !tls.sslv2_ciphers.is_empty() {
                    ciphers.insert("SSLv2", Vec::new());
                }
                continue;
            }
            let suites: Vec<CipherSuite> = tls
                .ciphers
                .iter()
                .copied()
                .filter(|s| {
                    let info = catalog::suite(*s);
                    if *v == ProtocolVersion::TLS13 {
                        info.is_some_and(|i| i.valid_in(*v)) && tls.groups.iter().any(|g| tls13_groups().contains(g))
                    } else {
                        let ecdhe = info
                            .and_then(|i| i.properties)
                            .is_some_and(|p| p.kx.starts_with("ECDH"));
                        info.is_some_and(|i| i.offerable_in(*v)) && (!ecdhe || has_curve)
                    }
                })
                .collect();
            if !suites.is_empty() {
                ciphers.insert(label(*v), suites);
            }
        }
    }
    let mut groups = Vec::new();
    if ciphers.contains_key("TLSv1.3") {
        groups.extend(tls.groups.iter().copied().filter(|g| tls13_groups().contains(g)));
    }
    let ecdhe12 = ciphers
        .iter()
        .filter(|(l, _)| **l != "TLSv1.3" && **l != "SSLv2")
        .flat_map(|(_, s)| s.iter())
        .any(|s| {
            catalog::suite(*s)
                .and_then(|i| i.properties)
                .is_some_and(|p| p.kx == "ECDHE")
        });
    if ecdhe12 {
        for g in tls.groups.iter().copied().filter(|g| tls12_curves().contains(g)) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    Truth {
        ciphers,
        server_order: tls.server_preference,
        groups,
    }
}

/// Every difference between `got` and `want`, protocol by protocol. With
/// `partial_ok`, a protocol reported incomplete (and named in `unsure`)
/// may differ; one reported complete may not.
fn differences(got: &Outcome, want: &Truth, partial_ok: bool) -> Vec<String> {
    let mut out = Vec::new();
    for v in PROTOCOLS {
        let l = label(v);
        let complete = got.complete.get(l).copied().unwrap_or(false);
        let named = got.unsure.iter().any(|u| u.protocol == l);
        if !complete {
            if !named {
                out.push(format!("{l}: incomplete, but not named in unsure"));
            }
            if !partial_ok {
                out.push(format!("{l}: incomplete: {:?}", got.unsure));
            }
            continue;
        }
        let want_suites = want.ciphers.get(l);
        let supported = got.protocols.get(l).copied().flatten();
        if supported != Some(want_suites.is_some()) {
            out.push(format!("{l}: supported {supported:?}, truth {}", want_suites.is_some()));
            continue;
        }
        if v == ProtocolVersion::SSL2 {
            continue;
        }
        let got_suites: Vec<String> = got.ciphers.get(l).into_iter().flatten().map(|c| c.id.clone()).collect();
        let want_suites: Vec<String> = want_suites.into_iter().flatten().map(|s| s.hex()).collect();
        // Across a 64-suite window the order is only known within chunks.
        let partial = got.details.get(l).is_some_and(|d| d.order == "partial");
        let same = if want.server_order && !partial {
            got_suites == want_suites
        } else {
            let (mut a, mut b) = (got_suites.clone(), want_suites.clone());
            a.sort();
            b.sort();
            a == b
        };
        if !same {
            out.push(format!("{l}: suites {got_suites:?}, truth {want_suites:?}"));
        }
        if want.server_order && got.server_preference.get(l).copied().flatten() == Some(false) && want_suites.len() > 1
        {
            out.push(format!("{l}: reported client order, truth server order"));
        }
    }
    let groups_settled = !got.unsure.iter().any(|u| u.reason.contains("group"));
    if groups_settled && !partial_ok {
        let mut a: Vec<u16> = got.groups.iter().map(|g| g.0).collect();
        let mut b: Vec<u16> = want.groups.iter().map(|g| g.0).collect();
        a.sort_unstable();
        b.sort_unstable();
        if a != b {
            out.push(format!("groups {a:04x?}, truth {b:04x?}"));
        }
    }
    out
}

fn chains() -> Chains {
    Chains::generate("mx.emulated.test").expect("test chains")
}

fn known(t: &Truth) -> Option<(ProtocolVersion, CipherSuite)> {
    ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0", "SSLv3"]
        .iter()
        .find_map(|l| {
            let v = PROTOCOLS.iter().copied().find(|v| label(*v) == *l)?;
            t.ciphers.get(l).and_then(|s| s.first()).map(|s| (v, *s))
        })
}

#[test]
fn every_shipped_profile_is_enumerated_to_its_configuration() {
    let chains = chains();
    let mut problems = Vec::new();
    for (name, parallel) in SHIPPED.iter().flat_map(|(n, _)| PARALLEL.map(|p| (*n, p))) {
        let profile = Profile::shipped(name).expect("shipped profile");
        let want = truth(&profile);
        let mut server = Server {
            responder: Responder {
                profile: &profile,
                chains: &chains,
            },
            rng: Bytes::new(7),
            hostile: None,
            connections: 0,
        };
        let got = enumerate(&mut server, known(&want), parallel);
        for d in differences(&got, &want, false) {
            problems.push(format!("{name} (parallel {parallel}): {d}"));
        }
        let pairs: usize = want.ciphers.values().map(Vec::len).sum();
        // A long TLS 1.2 list under client preference splits into one lane
        // per connection at once: one refusal per extra lane, and the
        // hello that shows the client decides.
        let tls12 = want.ciphers.get("TLSv1.2").map_or(0, Vec::len);
        let lanes = if parallel > 1 && !want.server_order && tls12 >= 8 {
            parallel
        } else {
            0
        };
        let bound = pairs + PROTOCOLS.len() + want.groups.len() + 8 + lanes;
        if server.connections > bound {
            problems.push(format!(
                "{name} (parallel {parallel}): {} connections, bound {bound}",
                server.connections
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn hostile_run(name: &str, how: Hostile, from: usize, len: usize, parallel: usize) -> (Outcome, Truth, usize) {
    let chains = chains();
    let profile = Profile::shipped(name).expect("shipped profile");
    let want = truth(&profile);
    let mut server = Server {
        responder: Responder {
            profile: &profile,
            chains: &chains,
        },
        rng: Bytes::new(11),
        hostile: Some((how, from, len)),
        connections: 0,
    };
    let got = enumerate(&mut server, known(&want), parallel);
    (got, want, server.connections)
}

#[test]
fn a_server_turning_hostile_is_never_reported_short_as_exact() {
    let mut problems = Vec::new();
    for name in ["postfix-default", "exchange2010", "exchange2016"] {
        for how in [Hostile::Reset, Hostile::Garbage, Hostile::Silence, Hostile::RateLimit] {
            for (n, parallel) in [3, 5, 15, 40].into_iter().flat_map(|n| PARALLEL.map(|p| (n, p))) {
                let (got, want, used) = hostile_run(name, how, n, usize::MAX, parallel);
                for d in differences(&got, &want, true) {
                    problems.push(format!(
                        "{name} {how:?} after {n} (parallel {parallel}, {used} connections): {d}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_server_hostile_for_two_connections_is_enumerated_exactly_after_retries() {
    let mut problems = Vec::new();
    for name in ["postfix-default", "exchange2010"] {
        for how in [Hostile::Reset, Hostile::Garbage, Hostile::Silence, Hostile::RateLimit] {
            for (n, parallel) in [3, 5, 15, 40].into_iter().flat_map(|n| PARALLEL.map(|p| (n, p))) {
                let (got, want, used) = hostile_run(name, how, n, 2, parallel);
                for d in differences(&got, &want, false) {
                    problems.push(format!(
                        "{name} {how:?} at {n} for 2 (parallel {parallel}, {used} connections): {d}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_progress_line_names_the_passes_under_way() {
    let known = Some((ProtocolVersion::TLS12, CipherSuite(0xc02f)));
    let mut staged = Planner::new(known, Duration::ZERO, 1);
    let _ = staged.next_offers();
    assert_eq!(staged.running(), "SSLv2, TLSv1.2");
    let mut side_by_side = Planner::new(known, Duration::ZERO, 2);
    let _ = side_by_side.next_offers();
    assert_eq!(
        side_by_side.running(),
        "SSLv2, TLSv1.2, TLSv1.3, TLSv1.1, TLSv1.0, SSLv3"
    );
}
