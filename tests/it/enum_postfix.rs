//! `hsscan --enumerate` against Postfix smtpd with STARTTLS on a 127.0.0.x
//! address: at Debian 12 defaults, and restricted to TLS 1.2 and two
//! suites in the server's order.
//!
//! The truth comes from OpenSSL's own client: `openssl s_client -starttls
//! smtp` tells which versions Postfix negotiates, and, run as remove and
//! retry with OpenSSL's whole suite list (client order, the Postfix
//! default `tls_preempt_cipherlist = no`), which suites; `-groups` tells
//! which groups. For the restricted server the order is the configured
//! cipher string's, as `openssl ciphers -V` lists it.

use std::collections::BTreeMap;

use crate::enum_support::{self, run, Check, Truth, TOOL_LIMIT};
use crate::postfix::Postfix;
use crate::scan_support::EHLO;
use crate::support::OPENSSL;

/// (label, s_client flag, what `-brief` prints).
const VERSIONS: [(&str, &str, &str); 4] = [
    ("TLSv1.0", "-tls1", "TLSv1"),
    ("TLSv1.1", "-tls1_1", "TLSv1.1"),
    ("TLSv1.2", "-tls1_2", "TLSv1.2"),
    ("TLSv1.3", "-tls1_3", "TLSv1.3"),
];

/// Every suite OpenSSL knows, security level 0, with the legacy provider.
const EVERYTHING: &str = "ALL:COMPLEMENTOFALL:@SECLEVEL=0";

fn provider_args() -> Vec<String> {
    ["-provider", "legacy", "-provider", "default"]
        .map(String::from)
        .to_vec()
}

/// `openssl s_client -starttls smtp -brief ARGS` against Postfix.
fn s_client(pf: &Postfix, args: &[String]) -> enum_support::Output {
    let mut all: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("{}:{}", pf.ip, pf.port),
        "-starttls".into(),
        "smtp".into(),
        "-name".into(),
        EHLO.into(),
        "-brief".into(),
    ];
    all.extend(provider_args());
    all.extend(args.iter().cloned());
    run(&OPENSSL.require(), &all, &[], TOOL_LIMIT)
}

/// The version and suite name of an established `-brief` session.
fn established(out: &enum_support::Output) -> Option<(String, String)> {
    let text = out.both();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_owned()))
    };
    Some((field("Protocol version:")?, field("Ciphersuite:")?))
}

/// OpenSSL suite names to codepoints, from `openssl ciphers -V`.
fn openssl_ids(cipher_string: &str) -> Vec<(String, u16)> {
    let mut args = vec!["ciphers".to_owned()];
    args.extend(provider_args());
    args.extend(["-V".to_owned(), cipher_string.to_owned()]);
    let out = run(&OPENSSL.require(), &args, &[], TOOL_LIMIT);
    assert!(out.success, "openssl {}:\n{}", args.join(" "), out.both());
    out.stdout
        .lines()
        .filter_map(|line| {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let bytes: Vec<u8> = tokens
                .first()?
                .split(',')
                .map(|b| b.strip_prefix("0x").and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()?;
            let id = u16::from_be_bytes(<[u8; 2]>::try_from(bytes).ok()?);
            Some(((*tokens.get(2)?).to_owned(), id))
        })
        .collect()
}

/// The suites Postfix takes at one version, by remove and retry with
/// OpenSSL's client: each handshake offers every suite not yet taken.
fn suites_at(pf: &Postfix, flag: &str, printed: &str, names: &BTreeMap<String, u16>) -> Vec<u16> {
    let tls13 = flag == "-tls1_3";
    let mut left: Vec<String> = if tls13 {
        names.keys().filter(|n| n.starts_with("TLS_")).cloned().collect()
    } else {
        names.keys().filter(|n| !n.starts_with("TLS_")).cloned().collect()
    };
    let mut found = Vec::new();
    while !left.is_empty() {
        let list = left.join(":");
        let args: Vec<String> = if tls13 {
            vec![flag.into(), "-ciphersuites".into(), list]
        } else {
            vec![flag.into(), "-cipher".into(), format!("{list}:@SECLEVEL=0")]
        };
        let out = s_client(pf, &args);
        let Some((version, suite)) = established(&out) else {
            break;
        };
        assert_eq!(version, printed, "s_client {flag} negotiated {version}\n{}", out.both());
        let id = *names
            .get(&suite)
            .unwrap_or_else(|| panic!("s_client negotiated {suite}, unknown to `openssl ciphers`"));
        assert!(!found.contains(&id), "{suite} taken twice");
        found.push(id);
        left.retain(|n| *n != suite);
    }
    found
}

/// The groups Postfix accepts: TLS 1.3 groups, and the TLS 1.2 curves.
fn groups(pf: &Postfix, tls13: bool, tls12: bool) -> Vec<u16> {
    // (OpenSSL name, codepoint, TLS 1.3 group)
    const CANDIDATES: [(&str, u16, bool); 14] = [
        ("secp256r1", 23, true),
        ("secp384r1", 24, true),
        ("secp521r1", 25, true),
        ("X25519", 29, true),
        ("X448", 30, true),
        ("ffdhe2048", 256, true),
        ("ffdhe3072", 257, true),
        ("ffdhe4096", 258, true),
        ("ffdhe6144", 259, true),
        ("ffdhe8192", 260, true),
        ("secp256k1", 22, false),
        ("brainpoolP256r1", 26, false),
        ("brainpoolP384r1", 27, false),
        ("brainpoolP512r1", 28, false),
    ];
    let mut out = Vec::new();
    for (name, id, is13) in CANDIDATES {
        let ok = if is13 && tls13 {
            established(&s_client(pf, &["-tls1_3".into(), "-groups".into(), name.into()])).is_some()
        } else {
            false
        } || (!name.starts_with("ffdhe")
            && tls12
            && established(&s_client(
                pf,
                &[
                    "-tls1_2".into(),
                    "-cipher".into(),
                    "ECDHE:@SECLEVEL=0".into(),
                    "-groups".into(),
                    name.into(),
                ],
            ))
            .is_some());
        if ok {
            out.push(id);
        }
    }
    out
}

fn truth(pf: &Postfix, server_order: bool) -> Truth {
    let names: BTreeMap<String, u16> = openssl_ids(EVERYTHING).into_iter().collect();
    let mut t = Truth {
        server_order,
        groups_ordered: false,
        ..Truth::default()
    };
    for (label, flag, printed) in VERSIONS {
        let suites = suites_at(pf, flag, printed, &names);
        if !suites.is_empty() {
            t.ciphers.insert(label, suites);
        }
    }
    t.groups = groups(pf, t.ciphers.contains_key("TLSv1.3"), t.ciphers.contains_key("TLSv1.2"));
    t
}

fn scan(pf: &Postfix) -> enum_support::Scan {
    enum_support::enumerate_target(&pf.target(), &["--starttls", "smtp", "--ehlo", EHLO], &|| pf.log())
}

#[test]
fn postfix_defaults_every_suite_in_client_order() {
    let pf = Postfix::start(&[]);
    let scan = scan(&pf);
    let t = truth(&pf, false);
    assert!(
        t.ciphers.contains_key("TLSv1.2") && t.ciphers.contains_key("TLSv1.3"),
        "s_client truth: {:?}",
        t.ciphers
    );
    Check::new("postfix defaults", &scan, &t).finish_with_log(&pf.log());
}

#[test]
fn postfix_tls12_two_suites_in_server_order() {
    const CIPHERS: &str = "ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA";
    let pf = Postfix::start(&[
        ("smtpd_tls_protocols", ">=TLSv1.2, <=TLSv1.2"),
        ("smtpd_tls_ciphers", "high"),
        ("tls_high_cipherlist", CIPHERS),
        ("tls_preempt_cipherlist", "yes"),
    ]);
    let scan = scan(&pf);
    let mut t = truth(&pf, true);
    // The set comes from s_client; the server's order is the configured string's.
    // (`openssl ciphers` lists the TLS 1.3 suites too; they are not in the string.)
    let order: Vec<u16> = openssl_ids(CIPHERS)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("TLS_"))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(order, [0xc030, 0x002f]);
    let supported: Vec<&str> = t.ciphers.keys().copied().collect();
    assert_eq!(supported, ["TLSv1.2"], "s_client truth: {:?}", t.ciphers);
    let mut got = t.ciphers["TLSv1.2"].clone();
    got.sort_unstable();
    let mut want = order.clone();
    want.sort_unstable();
    assert_eq!(got, want, "s_client's set differs from the configured suites");
    t.ciphers.insert("TLSv1.2", order);
    Check::new("postfix tls1.2 two suites", &scan, &t).finish_with_log(&pf.log());
}
