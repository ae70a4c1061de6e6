//! Live scans of servers whose Certificate message is over the deframer's
//! buffering cap (a 340 KB message) or holds hundreds of certificates (a
//! 300-certificate chain): `openssl s_server` on loopback sends them, and
//! the scan reports every certificate, with no `cert-chain-incomplete`
//! finding and no wrong failure. The certificates are made here with rcgen.

use crate::scan_support::hsscan;
use crate::support::{certs, Server, OPENSSL};
use serde_json::Value;
use std::path::PathBuf;

/// Writes `name.pem` (a self-signed leaf for `sans`) and `name.key` in the
/// test certificate folder; returns their paths.
fn leaf(name: &str, sans: Vec<String>) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(sans)
        .expect("params")
        .self_signed(&key)
        .expect("sign");
    let (pem, key_path) = (certs().join(format!("{name}.pem")), certs().join(format!("{name}.key")));
    std::fs::write(&pem, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (pem, key_path)
}

/// A TLS 1.2 `s_server` presenting `cert` and, when given, `chain`.
fn s_server(name: &'static str, cert: PathBuf, key: PathBuf, chain: Option<PathBuf>) -> Server {
    Server::start(name, OPENSSL, move |port| {
        let mut a: Vec<String> = vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-tls1_2".into(),
            "-cert".into(),
            cert.display().to_string(),
            "-key".into(),
            key.display().to_string(),
        ];
        if let Some(c) = &chain {
            a.extend(["-cert_chain".into(), c.display().to_string()]);
        }
        a
    })
}

fn scan(server: &mut Server) -> Value {
    drop(server.connect());
    let run = hsscan(&["--json", &format!("127.0.0.1:{}", server.port)]);
    let r = run.record();
    assert_eq!(r["status"], "negotiated", "{}\n{}", run.describe(), server.log());
    r
}

fn finding_ids(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn a_340_kb_certificate_message_is_read_whole_in_a_live_scan() {
    // 13 000 names of 24 bytes: a leaf of about 340 KB, in one message.
    let sans = (0..13_000).map(|i| format!("n{i:05}.big.test.example")).collect();
    let (cert, key) = leaf("big-leaf", sans);
    let der_len = std::fs::read_to_string(&cert).expect("pem").len() * 3 / 4;
    assert!(der_len > 300_000, "{der_len}");
    let mut server = s_server("openssl-s_server-340kb", cert, key, None);
    let r = scan(&mut server);
    let chain = &r["certificates"][0]["chain"];
    assert_eq!(chain.as_array().map(Vec::len), Some(1), "{r:#}");
    assert!(chain[0]["san"].as_array().is_some_and(|s| s.len() == 13_000));
    assert!(!finding_ids(&r).iter().any(|f| f == "cert-chain-incomplete"), "{r:#}");
}

#[test]
fn a_300_certificate_chain_is_read_whole_in_a_live_scan() {
    let (cert, key) = leaf("chain-leaf", vec!["mx.test.example".to_owned()]);
    let mut pem = String::new();
    let ca_key = rcgen::KeyPair::generate().expect("key");
    for i in 0..300 {
        let c = rcgen::CertificateParams::new(vec![format!("c{i}.chain.test.example")])
            .expect("params")
            .self_signed(&ca_key)
            .expect("sign");
        pem.push_str(&c.pem());
    }
    let chain = certs().join("chain-300.pem");
    std::fs::write(&chain, pem).expect("write chain");
    let mut server = s_server("openssl-s_server-300", cert, key, Some(chain));
    let r = scan(&mut server);
    let n = r["certificates"][0]["chain"].as_array().map(Vec::len);
    assert_eq!(n, Some(301), "{}", server.log());
    assert!(!finding_ids(&r).iter().any(|f| f == "cert-chain-incomplete"), "{r:#}");
}
