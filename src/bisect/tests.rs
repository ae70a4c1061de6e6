//! The bisection planner against the emulator's pure responder, in
//! memory: for each intolerance a profile configures, the property and its
//! exact edges within the budget; for tolerant profiles, nothing.

use super::planner::{Planner, Reply};
use super::{Bisection, Variant, MAX_CONNECTIONS};
use crate::emulate::chain::Chains;
use crate::emulate::profile::{Profile, Refusal, SHIPPED};
use crate::emulate::responder::{alert_record, Answer as Decided, Arrival, Bytes, Responder};
use crate::probe::{answer_from_bytes, ProbeResult, StreamEnd};
use hsscan_wire::{CipherSuite, Deframer, Event, ProtocolVersion, Side};

struct Server<'a> {
    responder: Responder<'a>,
    rng: Bytes,
    connections: usize,
}

impl Server<'_> {
    /// What the hello in `writes` draws: each write one read, the records
    /// and record version as the deframer saw them.
    fn answer(&mut self, writes: &[Vec<u8>]) -> ProbeResult {
        self.connections += 1;
        let mut d = Deframer::new(Side::Client);
        let mut event = None;
        for w in writes {
            if d.push(w).is_err() {
                return answer_from_bytes(&[], StreamEnd::Closed);
            }
            if let Ok(Some(e)) = d.next_event() {
                event = Some(e);
            }
        }
        let framing = d.hello_framing().unwrap_or_default();
        let arrival = Arrival {
            bytes: framing.bytes,
            records: framing.records.max(1),
            reads: writes.len(),
            record_version: Some(framing.record_version),
        };
        let decision = match event {
            Some(Event::ClientHello(h)) => self.responder.tls(&h, arrival, false, &mut self.rng),
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

fn chains() -> Chains {
    Chains::generate("mx.emulated.test").expect("test chains")
}

/// A TLS 1.0–1.3 receiver (the shipped Postfix profile's TLS) with this
/// misbehaviour.
fn receiver(misbehave: &str, ciphers: Option<&[CipherSuite]>, tls13: bool) -> Profile {
    let mut p = Profile::shipped("postfix-default").expect("shipped");
    let extra = Profile::parse(
        "x",
        &format!("description = \"x\"\n[tls]\nversions = [\"TLSv1.2\"]\n[misbehave]\n{misbehave}\n"),
    )
    .expect("misbehaviour parses");
    p.misbehave = extra.misbehave;
    if let Some(c) = ciphers {
        p.tls.ciphers = c.to_vec();
    }
    if !tls13 {
        p.tls.versions.retain(|v| *v != ProtocolVersion::TLS13);
    }
    p
}

fn sender(id: &str) -> Variant {
    let p = crate::senders::Profile::shipped(id).expect("sender profile");
    Variant::from_prepared(&p.prepare(None).expect("encodes")).expect("decodes")
}

/// What a hello negotiates with `server`, if anything.
fn negotiated(server: &mut Server<'_>, p: &crate::hellos::Prepared) -> Option<(ProtocolVersion, CipherSuite)> {
    let r = server.answer(&p.writes);
    let h = r.flight.retry_request.as_ref().or(r.flight.server_hello.as_ref())?;
    Some((h.selected_version(), h.cipher_suite))
}

/// Runs a bisection of `subject` against `profile`; `known` defaults to
/// what the quick check's hellos negotiate.
fn run(
    profile: &Profile,
    subject: Variant,
    failing: bool,
    known: Option<(ProtocolVersion, CipherSuite)>,
) -> (Bisection, usize) {
    let chains = chains();
    let mut server = Server {
        responder: Responder {
            profile,
            chains: &chains,
        },
        rng: Bytes::new(5),
        connections: 0,
    };
    let known = known
        .or_else(|| negotiated(&mut server, &crate::hellos::modern(None).expect("modern")))
        .or_else(|| negotiated(&mut server, &crate::hellos::legacy(None).expect("legacy")))
        .or_else(|| negotiated(&mut server, &crate::hellos::wide(None, Some(16)).expect("wide")))
        .expect("some hello negotiates");
    if failing {
        let r = server.answer(&subject.prepare().expect("encodes").writes);
        assert!(!r.answered(), "the subject is answered: {:?}", r.flight.server_hello);
    }
    server.connections = 0;
    let mut planner = Planner::new(subject, "the sender's hello", known, failing);
    let mut guard = 0;
    loop {
        let offers = planner.next_offers();
        if offers.is_empty() {
            break;
        }
        for o in offers {
            let hello = o.variant.prepare().expect("encodes");
            let r = server.answer(&hello.writes);
            planner.record(o.id, Reply::Answered(&r));
        }
        guard += 1;
        assert!(guard < 100, "the planner does not end");
    }
    let b = planner.finish();
    assert_eq!(b.connections as usize, server.connections);
    assert!(b.connections <= MAX_CONNECTIONS, "{b:?}");
    (b, server.connections)
}

fn expect(case: &str, b: &Bisection, property: &str, evidence: &[&str]) {
    println!("{case}: {} connections: {}", b.connections, b.summary);
    assert!(b.complete, "{case}: {b:?}");
    assert_eq!(b.intolerance.len(), 1, "{case}: {b:?}");
    let i = &b.intolerance[0];
    assert_eq!(i.property, property, "{case}: {b:?}");
    for e in evidence {
        assert!(i.evidence.contains(e), "{case}: {:?} lacks {e:?}", i.evidence);
    }
    println!("  {}: {}", i.property, i.evidence);
}

const POSTFIX: &str = "postfix-3.7-openssl-3.0-may";

#[test]
fn a_size_limit_is_found_with_its_exact_edge() {
    let subject = sender(POSTFIX);
    let l = subject.record_bytes();
    assert!(l > 512, "{l}");
    let p = receiver("max_hello_bytes = 511", None, true);
    let (b, _) = run(&p, subject, true, None);
    expect(
        "max_hello_bytes = 511",
        &b,
        "hello-length",
        &[
            "a hello of 511 bytes is answered",
            "512 bytes dropped",
            &format!("is {l} bytes"),
        ],
    );
    // A limit with no usual edge near it: plain binary search.
    let p = receiver("max_hello_bytes = 437", None, true);
    let (b, _) = run(&p, sender(POSTFIX), true, None);
    expect(
        "max_hello_bytes = 437",
        &b,
        "hello-length",
        &["437 bytes is answered", "438 bytes dropped"],
    );
}

#[test]
fn a_size_window_is_found_with_both_edges() {
    // A hello inside the window: the sender's, unpadded to 300 bytes.
    let mut subject = sender(POSTFIX);
    subject.hello.cipher_suites.truncate(10);
    subject.hello.pad_to(300).expect("pad");
    assert_eq!(subject.record_bytes(), 300);
    let p = receiver("hello_size_window = [256, 511]", None, true);
    let (b, _) = run(&p, subject, true, None);
    expect(
        "hello_size_window = [256, 511], a 300-byte hello",
        &b,
        "hello-length",
        &["those of 256 to 511 bytes dropped", "a 256–511 byte window"],
    );
    // On request with a hello outside the window: found by the stress checks.
    let p = receiver("hello_size_window = [256, 511]", None, true);
    let (b, _) = run(&p, sender(POSTFIX), false, None);
    expect(
        "hello_size_window = [256, 511], on request",
        &b,
        "hello-length",
        &["256 to 511 bytes dropped"],
    );
}

#[test]
fn a_64_suite_window_names_the_position() {
    let subject = sender(POSTFIX);
    // The server's only suite sits past the 64th in the sender's list.
    let suites: Vec<CipherSuite> = subject.hello.cipher_suites.clone();
    let theirs = suites[70];
    let p = receiver("suite_window = 64", Some(&[theirs]), false);
    let (b, _) = run(&p, subject, true, Some((ProtocolVersion::TLS12, theirs)));
    expect(
        "suite_window = 64",
        &b,
        "suite-position",
        &[
            "taken at position 64 and refused",
            "at position 65",
            "offers it at position 71",
        ],
    );
    // On request: 130 suites with the server's last.
    let p = receiver("suite_window = 128", None, true);
    let (b, _) = run(&p, sender(POSTFIX), false, None);
    expect(
        "suite_window = 128, on request",
        &b,
        "suite-position",
        &["position 128 and refused", "at position 129"],
    );
}

#[test]
fn splits_are_found_on_request() {
    let p = receiver("split_records = true", None, true);
    let (b, _) = run(&p, sender(POSTFIX), false, None);
    expect("split_records", &b, "record-split", &["answered in one record"]);
    let p = receiver("split_segments = true", None, true);
    let (b, _) = run(&p, sender(POSTFIX), false, None);
    expect("split_segments", &b, "segment-split", &["two writes"]);
}

#[test]
fn a_tls13_intolerant_receiver_names_supported_versions() {
    let p = receiver("tls13_supported_versions = true", None, true);
    let (b, _) = run(&p, sender(POSTFIX), true, None);
    expect(
        "tls13_supported_versions",
        &b,
        "extension",
        &["supported_versions (0x002b)"],
    );
}

#[test]
fn one_extension_and_unknown_extensions_are_named() {
    let p = receiver("drop_extension = \"session_ticket\"", None, true);
    let (b, _) = run(&p, sender(POSTFIX), true, None);
    expect(
        "drop_extension = session_ticket",
        &b,
        "extension",
        &["session_ticket (0x0023)"],
    );
    let p = receiver("unknown_extensions = true", None, true);
    let (b, _) = run(&p, sender(POSTFIX), false, None);
    expect(
        "unknown_extensions, on request",
        &b,
        "extension",
        &["0xfa5a (unassigned)"],
    );
}

#[test]
fn a_post_quantum_share_is_told_from_the_length() {
    let subject = sender("postfix-openssl-3.5-may");
    let p = receiver("max_key_share_bytes = 200", None, true);
    let (b, _) = run(&p, subject, true, None);
    expect(
        "max_key_share_bytes = 200",
        &b,
        "key-share-size",
        &["X25519MLKEM768 1216 bytes", "padding"],
    );
    // The same hello against a size limit: the length, not the share.
    let p = receiver("max_hello_bytes = 1024", None, true);
    let (b, _) = run(&p, sender("postfix-openssl-3.5-may"), true, None);
    expect(
        "max_hello_bytes = 1024, PQ hello",
        &b,
        "hello-length",
        &["1024 bytes is answered", "1025 bytes dropped"],
    );
}

#[test]
fn a_record_version_is_found_on_request() {
    let p = receiver("record_version = \"0x0301\"", None, true);
    let (b, _) = run(&p, sender(POSTFIX), false, None);
    expect("record_version = 0x0301", &b, "record-version", &["0x0301", "0x0303"]);
}

#[test]
fn a_version_intolerant_receiver_is_found_by_the_legacy_version() {
    // A TLS 1.0 server that drops any hello whose client_version is above
    // TLS 1.0 (the version intolerance of the TLS 1.2 transition): the
    // sender's 0x0303 hello is dropped, hsscan's TLS 1.0 hello answered.
    let mut p = receiver("max_legacy_version = \"0x0301\"", None, false);
    p.tls.versions.retain(|v| *v == ProtocolVersion::TLS10);
    let (b, used) = run(&p, sender(POSTFIX), true, None);
    expect(
        "max_legacy_version = 0x0301",
        &b,
        "legacy-version",
        &["0x0301", "0x0303"],
    );
    assert!(used <= 16, "{used} connections");
}

#[test]
fn tolerant_receivers_show_no_intolerance() {
    let mut problems = Vec::new();
    for (name, _) in SHIPPED {
        let p = Profile::shipped(name).expect("shipped");
        let m = &p.misbehave;
        if m.after_hello.is_some() || m.suite_window.is_some() || p.smtp.as_ref().is_some_and(|s| s.max_total > 0) {
            continue;
        }
        for id in [POSTFIX, "postfix-openssl-3.5-may", "postfix-openssl-1.0.2-may"] {
            let (b, used) = run(&p, sender(id), false, None);
            println!("{name} / {id}: {used} connections: {}", b.summary);
            if !b.intolerance.is_empty() {
                problems.push(format!("{name} / {id}: {:?}", b.intolerance));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
