//! DANE judgements without a network: the emulator's generated chains
//! (an ECDSA intermediate with an RSA and an ECDSA leaf) against TLSA
//! answers of every DNSSEC status.

use super::*;
use crate::emulate::chain::Chains;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector, TLSA};

const HOST: &str = "mx.example.net";

fn chains() -> Chains {
    Chains::generate(HOST).unwrap()
}

fn spki_sha256(der: &[u8]) -> Vec<u8> {
    Sha256::digest(spki(der).unwrap()).to_vec()
}

fn answer(security: Security, records: Vec<TLSA>) -> Answer {
    Answer {
        security,
        rcode: if security == Security::Error {
            ResponseCode::ServFail
        } else {
            ResponseCode::NoError
        },
        records: records.into_iter().map(RData::TLSA).collect(),
        detail: (security == Security::Error).then(|| "127.0.0.1:53: SERVFAIL".to_owned()),
    }
}

fn lookup(security: Security, records: Vec<TLSA>) -> Lookup {
    Lookup {
        tlsa_name: tlsa_name(HOST, 25),
        resolver: "127.0.0.1:53".into(),
        tlsa: answer(security, records),
        host: Security::Secure,
        mx: None,
    }
}

fn ee(der: &[u8]) -> TLSA {
    TLSA::new(CertUsage::DaneEe, Selector::Spki, Matching::Sha256, spki_sha256(der))
}

fn ip() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

#[test]
fn tlsa_name_is_port_and_protocol_under_the_host() {
    assert_eq!(tlsa_name("MX.Example.NET.", 25), "_25._tcp.mx.example.net");
}

#[test]
fn secure_dane_ee_matching_the_leaf_is_valid_whatever_the_names() {
    let c = chains();
    let d = evaluate(
        &lookup(Security::Secure, vec![ee(&c.ecdsa.chain[0])]),
        "other.example",
        &[(ip(), vec![c.ecdsa.chain.clone()])],
    );
    assert_eq!(d.result, Outcome::Valid, "{d:#?}");
    assert_eq!(d.per_endpoint[0].matched, [0]);
    assert!(d.rollover.as_ref().unwrap().ready);
    assert!(findings(&d).is_empty());
}

#[test]
fn secure_records_matching_no_chain_are_tlsa_invalid() {
    let c = chains();
    let wrong = TLSA::new(CertUsage::DaneEe, Selector::Spki, Matching::Sha256, vec![0; 32]);
    let d = evaluate(
        &lookup(Security::Secure, vec![wrong]),
        HOST,
        &[(ip(), vec![c.rsa.chain.clone()])],
    );
    assert_eq!(d.result, Outcome::TlsaInvalid, "{d:#?}");
    assert_eq!(d.per_endpoint[0].result, Outcome::TlsaInvalid);
    assert_eq!(findings(&d)[0].id, "dane-tlsa-invalid");
}

#[test]
fn dane_ta_matches_the_intermediate_and_checks_the_name() {
    let c = chains();
    let ta = TLSA::new(
        CertUsage::DaneTa,
        Selector::Full,
        Matching::Sha512,
        Sha512::digest(&c.rsa.chain[1]).to_vec(),
    );
    let d = evaluate(
        &lookup(Security::Secure, vec![ta.clone()]),
        HOST,
        &[(ip(), vec![c.rsa.chain.clone()])],
    );
    assert_eq!(d.result, Outcome::Valid, "{d:#?}");
    let d = evaluate(
        &lookup(Security::Secure, vec![ta]),
        "mx.other.example",
        &[(ip(), vec![c.rsa.chain.clone()])],
    );
    assert_eq!(d.result, Outcome::TlsaInvalid, "{d:#?}");
}

#[test]
fn pkix_usages_are_unusable_for_smtp() {
    let c = chains();
    let pkix = TLSA::new(
        CertUsage::PkixEe,
        Selector::Spki,
        Matching::Sha256,
        spki_sha256(&c.rsa.chain[0]),
    );
    let d = evaluate(
        &lookup(Security::Secure, vec![pkix]),
        HOST,
        &[(ip(), vec![c.rsa.chain.clone()])],
    );
    assert!(!d.records[0].usable);
    assert_eq!(d.result, Outcome::TlsaInvalid, "{d:#?}");
}

#[test]
fn one_key_type_without_a_record_is_valid_but_not_rollover_ready() {
    let c = chains();
    let d = evaluate(
        &lookup(Security::Secure, vec![ee(&c.ecdsa.chain[0])]),
        HOST,
        &[(ip(), vec![c.ecdsa.chain.clone(), c.rsa.chain.clone()])],
    );
    assert_eq!(d.result, Outcome::Valid, "{d:#?}");
    let r = d.rollover.clone().unwrap();
    assert!(!r.ready);
    assert_eq!(r.missing, ["RSA 2048"]);
    assert_eq!(findings(&d)[0].id, "dane-rollover-not-ready");
}

#[test]
fn insecure_bogus_and_failed_lookups_are_never_valid_nor_no_tlsa_by_mistake() {
    let c = chains();
    let ips = [(ip(), vec![c.ecdsa.chain.clone()])];
    let d = evaluate(&lookup(Security::Insecure, vec![ee(&c.ecdsa.chain[0])]), HOST, &ips);
    assert_eq!((d.dnssec, d.result), (Security::Insecure, Outcome::NoTlsa));
    // Listed and matched for diagnosis, ignored for the result.
    assert_eq!(d.per_endpoint[0].matched, [0]);
    let d = evaluate(&lookup(Security::Bogus, vec![ee(&c.ecdsa.chain[0])]), HOST, &ips);
    assert_eq!((d.dnssec, d.result), (Security::Bogus, Outcome::DnssecInvalid));
    let d = evaluate(&lookup(Security::Error, vec![]), HOST, &ips);
    assert_eq!((d.dnssec, d.result), (Security::Error, Outcome::Error));
    assert!(d.detail.contains("SERVFAIL"), "{}", d.detail);
    let d = evaluate(&lookup(Security::Secure, vec![]), HOST, &ips);
    assert_eq!((d.dnssec, d.result), (Security::Secure, Outcome::NoTlsa));
}

#[test]
fn an_insecure_host_or_mx_disables_dane() {
    let c = chains();
    let ips = [(ip(), vec![c.ecdsa.chain.clone()])];
    let mut l = lookup(Security::Secure, vec![ee(&c.ecdsa.chain[0])]);
    l.host = Security::Insecure;
    assert_eq!(evaluate(&l, HOST, &ips).result, Outcome::NoTlsa);
    let mut l = lookup(Security::Secure, vec![ee(&c.ecdsa.chain[0])]);
    l.mx = Some(Security::Insecure);
    let d = evaluate(&l, HOST, &ips);
    assert_eq!(d.result, Outcome::NoTlsa);
    assert!(d.detail.contains("MX records"), "{}", d.detail);
}

#[test]
fn an_address_without_tls_fails_secure_dane() {
    let c = chains();
    let d = evaluate(
        &lookup(Security::Secure, vec![ee(&c.ecdsa.chain[0])]),
        HOST,
        &[
            (ip(), vec![c.ecdsa.chain.clone()]),
            ("192.0.2.2".parse().unwrap(), vec![]),
        ],
    );
    assert_eq!(d.result, Outcome::ValidationFailure, "{d:#?}");
}

#[test]
fn a_sender_requiring_dane_sees_every_kind_of_no_tlsa_as_dane_required_and_nothing_else() {
    let c = chains();
    let ips = [(ip(), vec![c.rsa.chain.clone()])];
    let secure_none = evaluate(&lookup(Security::Secure, vec![]), HOST, &ips);
    let insecure = evaluate(&lookup(Security::Insecure, vec![ee(&c.rsa.chain[0])]), HOST, &ips);
    let mut unsigned_mx = lookup(Security::Secure, vec![ee(&c.rsa.chain[0])]);
    unsigned_mx.mx = Some(Security::Insecure);
    let unsigned_mx = evaluate(&unsigned_mx, HOST, &ips);
    for d in [secure_none, insecure, unsigned_mx] {
        assert_eq!(d.result, Outcome::NoTlsa, "{d:#?}");
        let why = d.detail.clone();
        let r = required(d);
        assert_eq!(r.result, Outcome::DaneRequired, "{r:#?}");
        assert!(
            r.detail.starts_with(&why) && r.detail.contains("dane-only"),
            "{}",
            r.detail
        );
        assert!(r.result.fails_dane_only() && !r.result.fails_dane());
        assert_eq!(findings(&r).first().map(|f| f.id), Some("dane-required"));
    }
    // Every other result is left as it is.
    let valid = evaluate(&lookup(Security::Secure, vec![ee(&c.rsa.chain[0])]), HOST, &ips);
    let invalid = evaluate(&lookup(Security::Secure, vec![ee(&c.ecdsa.chain[0])]), HOST, &ips);
    let bogus = evaluate(&lookup(Security::Bogus, vec![]), HOST, &ips);
    let failed = evaluate(&lookup(Security::Error, vec![]), HOST, &ips);
    for d in [valid, invalid, bogus, failed] {
        assert_eq!(required(d.clone()), d);
    }
}

#[test]
fn outcome_names_are_the_json_names() {
    use Outcome::*;
    for o in [
        Valid,
        TlsaInvalid,
        DnssecInvalid,
        DaneRequired,
        NoTlsa,
        ValidationFailure,
        Error,
    ] {
        assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
    }
}

#[test]
fn chains_read_back_from_a_record_match_as_their_der_does() {
    let c = chains();
    let leaf = &c.rsa.chain[0];
    let full = TLSA::new(
        CertUsage::DaneEe,
        Selector::Full,
        Matching::Sha256,
        Sha256::digest(leaf).to_vec(),
    );
    let records = vec![ee(leaf), full, ee(&c.ecdsa.chain[0])];
    let l = lookup(Security::Secure, records);
    let fresh = evaluate(&l, HOST, &[(ip(), vec![c.rsa.chain.clone()])]);
    // What a record's certificates[].chain[] holds, read back.
    let back: Vec<Cert> = c
        .rsa
        .chain
        .iter()
        .map(|d| Cert::from_json(&serde_json::to_value(crate::certs::CertInfo::from_der(d)).unwrap()).unwrap())
        .collect();
    assert!(back.iter().all(|b| b.der.is_none()));
    let resumed = evaluate_certs(&l, HOST, &[(ip(), vec![back.clone()])]);
    assert_eq!(resumed, fresh);
    // Both RSA records match, the ECDSA one does not (the report sorts the
    // records, so their indexes follow the random keys' digests).
    let ecdsa: String = ee(&c.ecdsa.chain[0])
        .cert_data()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let want: Vec<usize> = (0..resumed.records.len())
        .filter(|i| resumed.records[*i].data != ecdsa)
        .collect();
    assert_eq!(want.len(), 2);
    assert_eq!(resumed.per_endpoint[0].matched, want);
    // SHA-512 matching cannot be judged from the digests: said so.
    let sha512 = TLSA::new(CertUsage::DaneEe, Selector::Spki, Matching::Sha512, vec![0; 64]);
    let l = lookup(Security::Secure, vec![sha512]);
    let resumed = evaluate_certs(&l, HOST, &[(ip(), vec![back])]);
    assert!(resumed.detail.contains("could not be matched"), "{}", resumed.detail);
}
