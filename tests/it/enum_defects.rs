//! `hsscan --enumerate` against real servers configured the way that once
//! made it wrong: a single unusual group, one old protocol, one rare suite
//! family, PSK and SRP suites enabled without credentials, an ECDSA-only
//! certificate with five groups.
//!
//! The truth never comes from hsscan. It is probed from the server with
//! OpenSSL's own client, one handshake per candidate:
//!
//! * protocols: an `openssl s_client -brief` handshake per version with the
//!   widest client settings (every suite at security level 0, every group),
//!   so that only the server can refuse;
//! * suites: every suite the server's configuration lists (`openssl ciphers
//!   -V -s` on its cipher string, `gnutls-cli --priority … --list` for
//!   gnutls-serv) offered alone, at each supported version; a suite is true
//!   when that handshake is established at that version;
//! * groups: every group offered alone, in TLS 1.3 (`-tls1_3 -groups G`)
//!   and as an ECDHE curve (`-cipher ECDHE -groups G`) at the highest
//!   supported version up to TLS 1.2.
//!
//! The servers keep the client's order (no `-serverpref`), so suites and
//! groups are compared as sets; the connection bound is the usual one.

use std::collections::BTreeMap;

use crate::enum_gnutls::GNUTLS_CLI;
use crate::enum_support::{self, run, Check, Output, Truth, PROTOCOLS, TOOL_LIMIT};
use crate::support::{certs, Server, GNUTLS_SERV, OPENSSL};

/// (label, `s_client` flag, what `-brief` prints).
const VERSIONS: [(&str, &str, &str); 4] = [
    ("TLSv1.0", "-tls1", "TLSv1"),
    ("TLSv1.1", "-tls1_1", "TLSv1.1"),
    ("TLSv1.2", "-tls1_2", "TLSv1.2"),
    ("TLSv1.3", "-tls1_3", "TLSv1.3"),
];

/// Every group OpenSSL 3.0's client can offer in TLS 1.3.
const TLS13_GROUPS: &str = "X25519:P-256:X448:P-521:P-384:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192";

/// Every curve OpenSSL 3.0's client can offer for ECDHE up to TLS 1.2.
const ECDHE_CURVES: &str = "X25519:P-256:X448:P-521:P-384:secp256k1:brainpoolP256r1:brainpoolP384r1:brainpoolP512r1";

/// (OpenSSL name, codepoint, usable in TLS 1.3, usable as an ECDHE curve).
const GROUPS: [(&str, u16, bool, bool); 14] = [
    ("secp256r1", 0x0017, true, true),
    ("secp384r1", 0x0018, true, true),
    ("secp521r1", 0x0019, true, true),
    ("X25519", 0x001d, true, true),
    ("X448", 0x001e, true, true),
    ("ffdhe2048", 0x0100, true, false),
    ("ffdhe3072", 0x0101, true, false),
    ("ffdhe4096", 0x0102, true, false),
    ("ffdhe6144", 0x0103, true, false),
    ("ffdhe8192", 0x0104, true, false),
    ("secp256k1", 0x0016, false, true),
    ("brainpoolP256r1", 0x001a, false, true),
    ("brainpoolP384r1", 0x001b, false, true),
    ("brainpoolP512r1", 0x001c, false, true),
];

/// PSK and SRP credentials for the client side of a probe, so that the
/// client really offers a PSK or SRP suite and only the server decides.
const CLIENT_PSK_SRP: [&str; 8] = [
    "-psk_identity",
    "probe",
    "-psk",
    "0123456789abcdef",
    "-srpuser",
    "probe",
    "-srppass",
    "pass:probe",
];

/// `openssl s_client -connect 127.0.0.1:PORT -brief ARGS`.
fn s_client(port: u16, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
        "-brief".into(),
    ];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    run(&OPENSSL.require(), &all, &[], TOOL_LIMIT)
}

/// The version and suite an `s_client -brief` handshake established.
fn established(out: &Output) -> Option<(String, String)> {
    let text = out.both();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_owned()))
    };
    Some((field("Protocol version:")?, field("Ciphersuite:")?))
}

/// Whether a handshake at `flag` with the widest client settings is
/// established at that version.
fn version_handshakes(port: u16, flag: &str, printed: &str) -> bool {
    let args: Vec<&str> = if flag == "-tls1_3" {
        vec![flag, "-groups", TLS13_GROUPS]
    } else {
        vec![flag, "-cipher", "ALL:@SECLEVEL=0", "-groups", ECDHE_CURVES]
    };
    established(&s_client(port, &args)).is_some_and(|(v, _)| v == printed)
}

/// Whether the suite OpenSSL calls `name`, offered alone at `flag`, is
/// established at that version.
fn suite_handshakes(port: u16, flag: &str, printed: &str, name: &str, psk_srp: bool) -> bool {
    let cipher = format!("{name}:@SECLEVEL=0");
    let mut args: Vec<&str> = if flag == "-tls1_3" {
        vec![flag, "-ciphersuites", name, "-groups", TLS13_GROUPS]
    } else {
        vec![flag, "-cipher", &cipher, "-groups", ECDHE_CURVES]
    };
    if psk_srp {
        args.extend(CLIENT_PSK_SRP);
    }
    established(&s_client(port, &args)).is_some_and(|(v, s)| v == printed && s == name)
}

/// One line of `openssl ciphers -V`: codepoint and OpenSSL name.
fn openssl_ciphers(args: &[&str]) -> Vec<(u16, String)> {
    let mut all = vec!["ciphers".to_owned(), "-V".to_owned()];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    let out = run(&OPENSSL.require(), &all, &[], TOOL_LIMIT);
    assert!(out.success, "openssl {} failed:\n{}", all.join(" "), out.both());
    out.stdout
        .lines()
        .filter_map(|line| {
            // `0xC0,0x30 - ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA …`
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let bytes: Vec<u8> = tokens
                .first()?
                .split(',')
                .map(|b| b.strip_prefix("0x").and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()?;
            let id = u16::from_be_bytes(<[u8; 2]>::try_from(bytes).ok()?);
            Some((id, (*tokens.get(2)?).to_owned()))
        })
        .collect()
}

/// Whether this `openssl` can speak SSLv3 at all (`s_client -ssl3`); the
/// SSLv2/SSLv3 truth below relies on its absence, as in enum_openssl.rs.
fn assert_no_ssl3() {
    let out = run(
        &OPENSSL.require(),
        &["s_client".into(), "-help".into()],
        &[],
        TOOL_LIMIT,
    );
    assert!(
        !out.both().lines().any(|l| l.split_whitespace().next() == Some("-ssl3")),
        "this openssl has `s_client -ssl3`: the SSLv3 truth would need probing (OpenSSL 3.0 on Debian 12 has none)"
    );
}

/// The groups the server accepts, each offered alone: in TLS 1.3 when it
/// does TLS 1.3, as ECDHE curves at `ecdhe_flag` (the highest version up
/// to TLS 1.2 it does) when given.
fn probe_groups(port: u16, tls13: bool, ecdhe_flag: Option<(&str, &str)>) -> Vec<u16> {
    let mut ids = Vec::new();
    for (name, id, in13, curve) in GROUPS {
        let ok13 = in13
            && tls13
            && established(&s_client(port, &["-tls1_3", "-groups", name])).is_some_and(|(v, _)| v == "TLSv1.3");
        let ok12 = || {
            ecdhe_flag.is_some_and(|(flag, printed)| {
                curve
                    && established(&s_client(
                        port,
                        &[flag, "-cipher", "ECDHE:@SECLEVEL=0", "-groups", name],
                    ))
                    .is_some_and(|(v, _)| v == printed)
            })
        };
        if ok13 || ok12() {
            ids.push(id);
        }
    }
    ids
}

/// The highest supported version up to TLS 1.2, as (flag, printed).
fn ecdhe_version(t: &Truth) -> Option<(&'static str, &'static str)> {
    VERSIONS
        .iter()
        .rev()
        .find(|(label, flag, _)| *flag != "-tls1_3" && t.ciphers.contains_key(label))
        .map(|(_, flag, printed)| (*flag, *printed))
}

/// The truth of an `openssl s_server` whose `-cipher` string is
/// `cipher_string` (OpenSSL's `DEFAULT` when it has none).
fn openssl_truth(port: u16, cipher_string: &str) -> Truth {
    assert_no_ssl3();
    let mut t = Truth::default();
    for (label, flag, printed) in VERSIONS {
        if !version_handshakes(port, flag, printed) {
            continue;
        }
        let candidates = openssl_ciphers(&["-s", flag, cipher_string]);
        let suites: Vec<u16> = candidates
            .iter()
            .filter(|(_, name)| suite_handshakes(port, flag, printed, name, false))
            .map(|(id, _)| *id)
            .collect();
        assert!(
            !suites.is_empty(),
            "s_client negotiated {label}, yet none of `openssl ciphers -s {flag} {cipher_string}` does alone: {candidates:?}"
        );
        t.ciphers.insert(label, suites);
    }
    t.groups = probe_groups(port, t.ciphers.contains_key("TLSv1.3"), ecdhe_version(&t));
    t
}

/// Which certificate an `s_server` serves.
#[derive(Clone, Copy)]
enum Key {
    /// support::certs()'s RSA-2048 leaf and its intermediate.
    Rsa,
    /// support::certs()'s ECDSA P-256 leaf and the same intermediate.
    Ecdsa,
}

/// `openssl s_server` with `key`'s chain and `args`.
fn s_server(name: &'static str, key: Key, args: &[&str]) -> Server {
    match key {
        Key::Rsa => crate::support::openssl_s_server(name, args),
        Key::Ecdsa => {
            let dir = certs();
            let path = move |f: &str| dir.join(f).display().to_string();
            let extra: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            Server::start(name, OPENSSL, move |port| {
                let mut all: Vec<String> = vec![
                    "s_server".into(),
                    "-accept".into(),
                    format!("127.0.0.1:{port}"),
                    "-cert".into(),
                    path("ecdsa.pem"),
                    "-cert_chain".into(),
                    path("int.pem"),
                    "-key".into(),
                    path("ecdsa.key"),
                ];
                all.extend(extra.iter().cloned());
                all
            })
        }
    }
}

/// Starts the server, enumerates it, probes its truth; returns all three.
fn openssl_case(key: Key, args: &[&str], cipher_string: &str) -> (Server, enum_support::Scan, Truth) {
    let mut server = s_server("openssl-s_server-defect", key, args);
    let scan = enum_support::enumerate(&mut server);
    let t = openssl_truth(server.port, cipher_string);
    (server, scan, t)
}

/// The supported protocols of a truth, lowest first.
fn supported(t: &Truth) -> Vec<&'static str> {
    PROTOCOLS.into_iter().filter(|p| t.ciphers.contains_key(p)).collect()
}

// --- a. One unusual group: the hellos must follow the HelloRetryRequest ---

/// `-groups P-521`: TLS 1.3 only after a HelloRetryRequest for secp521r1,
/// TLS 1.2 ECDHE only on that curve.
#[test]
fn defect_openssl_only_group_p521() {
    let (server, scan, t) = openssl_case(Key::Rsa, &["-groups", "P-521"], "DEFAULT");
    assert_eq!(supported(&t), ["TLSv1.2", "TLSv1.3"], "s_client truth: {:?}", t.ciphers);
    assert_eq!(
        t.groups,
        [0x0019],
        "s_client truth: -groups P-521 accepts secp521r1 alone"
    );
    Check::new("openssl -groups P-521", &scan, &t)
        .negotiated()
        .modern_result()
        .exit_code()
        .finish(&server);
}

/// `-groups ffdhe2048`: TLS 1.3 only with ffdhe2048 (after a
/// HelloRetryRequest), and at TLS 1.2 no curve at all, so no ECDHE suite:
/// DHE and RSA key exchange only.
#[test]
fn defect_openssl_only_group_ffdhe2048() {
    let (server, scan, t) = openssl_case(Key::Rsa, &["-groups", "ffdhe2048"], "DEFAULT");
    assert_eq!(supported(&t), ["TLSv1.2", "TLSv1.3"], "s_client truth: {:?}", t.ciphers);
    assert_eq!(
        t.groups,
        [0x0100],
        "s_client truth: -groups ffdhe2048 accepts ffdhe2048 alone"
    );
    let ecdhe: Vec<(u16, String)> = openssl_ciphers(&["-s", "-tls1_2", "ECDHE"]);
    assert!(
        !t.ciphers["TLSv1.2"].iter().any(|id| ecdhe.iter().any(|(e, _)| e == id)),
        "s_client truth: no ECDHE suite without a curve: {:?}",
        t.ciphers["TLSv1.2"]
    );
    Check::new("openssl -groups ffdhe2048", &scan, &t)
        .negotiated()
        .modern_result()
        .exit_code()
        .finish(&server);
}

/// `-tls1_3 -groups P-384`: TLS 1.3 alone, its three default suites, one
/// group reached through a HelloRetryRequest.
#[test]
fn defect_openssl_tls13_only_group_p384() {
    let (server, scan, t) = openssl_case(Key::Rsa, &["-tls1_3", "-groups", "P-384"], "DEFAULT");
    assert_eq!(supported(&t), ["TLSv1.3"], "s_client truth: {:?}", t.ciphers);
    assert_eq!(
        t.groups,
        [0x0018],
        "s_client truth: -groups P-384 accepts secp384r1 alone"
    );
    Check::new("openssl -tls1_3 -groups P-384", &scan, &t)
        .negotiated()
        .modern_result()
        .exit_code()
        .finish(&server);
}

// --- b. One old protocol ---

/// `-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'` (OpenSSL 3.0 signs TLS 1.1's
/// MD5+SHA-1 only at security level 0): TLS 1.1 alone. The groups are the
/// ECDHE curves at TLS 1.1, the only version with ECDHE here.
#[test]
fn defect_openssl_tls11_only() {
    const CIPHERS: &str = "DEFAULT:@SECLEVEL=0";
    let (server, scan, t) = openssl_case(Key::Rsa, &["-tls1_1", "-cipher", CIPHERS], CIPHERS);
    assert_eq!(supported(&t), ["TLSv1.1"], "s_client truth: {:?}", t.ciphers);
    Check::new("openssl -tls1_1", &scan, &t)
        .negotiated()
        .exit_code()
        .finish(&server);
}

// --- c. One rare suite family at TLS 1.2 ---

/// `-tls1_2 -cipher ARIAGCM`: the ARIA-GCM suites an RSA key can serve
/// (ECDHE, DHE and RSA key exchange, 128 and 256 bits).
#[test]
fn defect_openssl_tls12_aria_gcm_only() {
    let (server, scan, t) = openssl_case(Key::Rsa, &["-tls1_2", "-cipher", "ARIAGCM"], "ARIAGCM");
    assert_eq!(supported(&t), ["TLSv1.2"], "s_client truth: {:?}", t.ciphers);
    Check::new("openssl -tls1_2 -cipher ARIAGCM", &scan, &t)
        .negotiated()
        .exit_code()
        .finish(&server);
}

/// `-tls1_2 -cipher DHE-RSA-AES256-CCM`: one suite. No `-dhparam` is
/// needed: OpenSSL 3.0's s_server uses automatic DH parameters by default
/// ("Using default temp DH parameters", 2048 bits for this key). No ECDHE
/// suite, so no group at all.
#[test]
fn defect_openssl_tls12_dhe_rsa_aes256_ccm_only() {
    const SUITE: &str = "DHE-RSA-AES256-CCM";
    let (server, scan, t) = openssl_case(Key::Rsa, &["-tls1_2", "-cipher", SUITE], SUITE);
    assert_eq!(supported(&t), ["TLSv1.2"], "s_client truth: {:?}", t.ciphers);
    assert_eq!(t.ciphers["TLSv1.2"], [0xc09f], "s_client truth: {SUITE} alone");
    assert!(
        t.groups.is_empty(),
        "s_client truth: no ECDHE, no group: {:?}",
        t.groups
    );
    Check::new("openssl -tls1_2 -cipher DHE-RSA-AES256-CCM", &scan, &t)
        .negotiated()
        .exit_code()
        .finish(&server);
}

/// `-tls1_2 -cipher ECDHE-RSA-CAMELLIA256-SHA384`: one suite, on every
/// curve of OpenSSL's default list.
#[test]
fn defect_openssl_tls12_ecdhe_rsa_camellia256_sha384_only() {
    const SUITE: &str = "ECDHE-RSA-CAMELLIA256-SHA384";
    let (server, scan, t) = openssl_case(Key::Rsa, &["-tls1_2", "-cipher", SUITE], SUITE);
    assert_eq!(supported(&t), ["TLSv1.2"], "s_client truth: {:?}", t.ciphers);
    assert_eq!(t.ciphers["TLSv1.2"], [0xc077], "s_client truth: {SUITE} alone");
    Check::new("openssl -tls1_2 -cipher ECDHE-RSA-CAMELLIA256-SHA384", &scan, &t)
        .negotiated()
        .exit_code()
        .finish(&server);
}

// --- d. PSK and SRP enabled, no credentials ---

/// PSK, DHE-PSK, ECDHE-PSK, SRP, SRP-RSA and SRP-DSS key exchanges on top
/// of NORMAL (GnuTLS 3.7: enabling SRP drops TLS 1.3 from the priority).
const PSK_SRP: &str = "NORMAL:+PSK:+DHE-PSK:+ECDHE-PSK:+SRP:+SRP-RSA:+SRP-DSS";

/// `gnutls-serv` with [`PSK_SRP`], the RSA chain only, and neither
/// `--pskpasswd` nor `--srppasswd`.
fn gnutls_serv_psk_srp() -> Server {
    let dir = certs();
    let path = move |f: &str| dir.join(f).display().to_string();
    Server::start("gnutls-serv-psk-srp", GNUTLS_SERV, move |port| {
        vec![
            "-p".into(),
            port.to_string(),
            "--echo".into(),
            "-a".into(),
            "--priority".into(),
            PSK_SRP.into(),
            "--x509certfile".into(),
            path("rsa-chain.pem"),
            "--x509keyfile".into(),
            path("rsa.key"),
        ]
    })
}

/// What the server answers when the client's first suite it has enabled is
/// one it has no credentials for: `s_client -msg` lines from the server.
fn first_suite_answer(port: u16, ciphers: &str) -> String {
    let cipher = format!("{ciphers}:@SECLEVEL=0");
    let mut args = vec!["-tls1_2", "-msg", "-cipher", cipher.as_str()];
    args.extend(CLIENT_PSK_SRP);
    let out = s_client(port, &args);
    out.both()
        .lines()
        .filter(|l| l.starts_with("<<< ") && !l.contains("RecordHeader"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// What gnutls-serv 3.7.9 does when it would pick a PSK or SRP suite it has
/// no credentials for (found with `openssl s_client -msg`, and asserted
/// below so that a GnuTLS that changes it is noticed): it takes the
/// client's first suite it has enabled and, when that is a PSK, ECDHE-PSK
/// or SRP (SRP-SHA) suite, aborts the handshake with a fatal
/// `handshake_failure(40)` alert — "Insufficient credentials for that
/// request" in its log — even when later suites of the same hello are
/// ones it can serve. DHE-PSK and SRP-RSA suites are skipped instead
/// ("No supported cipher suites have been found" when offered alone). So a
/// hello listing PSK or SRP suites first is refused exactly like a hello
/// with no shared suite.
///
/// Truth: every suite `gnutls-cli --list` prints for the priority, offered
/// alone with `openssl s_client` at every version the server does, kept
/// when the handshake is established.
#[test]
fn defect_gnutls_psk_srp_enabled_without_credentials() {
    let mut server = gnutls_serv_psk_srp();
    let scan = enum_support::enumerate(&mut server);
    let port = server.port;

    for first in ["PSK-AES128-CBC-SHA", "ECDHE-PSK-AES128-CBC-SHA", "SRP-AES-128-CBC-SHA"] {
        let answer = first_suite_answer(port, &format!("{first}:AES128-SHA"));
        assert!(
            answer.contains("fatal handshake_failure") && !answer.contains("ServerHello"),
            "premise: gnutls-serv refuses a hello of {first} then AES128-SHA with handshake_failure; it answered: {answer}\n{}",
            server.log()
        );
    }
    let answer = first_suite_answer(port, "AES128-SHA");
    assert!(
        answer.contains("ServerHello"),
        "premise: gnutls-serv takes AES128-SHA alone; it answered: {answer}\n{}",
        server.log()
    );

    let t = gnutls_truth(port, PSK_SRP);
    assert_eq!(
        supported(&t),
        ["TLSv1.0", "TLSv1.1", "TLSv1.2"],
        "s_client truth: {:?}",
        t.ciphers
    );
    let names: BTreeMap<u16, String> = openssl_ciphers(&["ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
        .into_iter()
        .collect();
    for (proto, suites) in &t.ciphers {
        for id in suites {
            let name = names.get(id).map_or("?", String::as_str);
            assert!(
                !name.contains("PSK") && !name.contains("SRP"),
                "s_client truth: {proto} {name} established without PSK/SRP credentials?"
            );
        }
    }
    // Beyond the floor, the broken families cost at TLS 1.2: the refused
    // hello asked again without them (1), then each family on its own
    // (PSK, SRP, the rest: 3). TLS 1.1 and 1.0 run beside TLS 1.2 and meet
    // the broken families themselves before TLS 1.2 has named them: the
    // same at each (4 + 4; their results wait for TLS 1.2's, so they are
    // exact), and TLS 1.2's lanes (2).
    Check::allowing("gnutls PSK/SRP without credentials", &scan, &t, 12)
        .negotiated()
        .exit_code()
        .finish(&server);
}

/// The truth of a gnutls-serv running `priority` with the RSA chain.
fn gnutls_truth(port: u16, priority: &str) -> Truth {
    assert_no_ssl3();
    let args = ["--priority", priority, "--list"].map(String::from);
    let out = run(&GNUTLS_CLI.require(), &args, &[], TOOL_LIMIT);
    assert!(out.success, "gnutls-cli {} failed:\n{}", args.join(" "), out.both());
    let names: BTreeMap<u16, String> = openssl_ciphers(&["ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
        .into_iter()
        .collect();
    // (codepoint, gnutls name, lowest version) of each listed suite:
    // `TLS_ECDHE_RSA_AES_128_GCM_SHA256  \t0xc0, 0x2f\tTLS1.2`
    let mut listed: Vec<(u16, String, String)> = Vec::new();
    for line in out.stdout.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let [name, hi, lo, min] = tokens[..] else { continue };
        let byte = |b: &str| {
            b.trim_end_matches(',')
                .strip_prefix("0x")
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        let (Some(hi), Some(lo)) = (byte(hi), byte(lo)) else {
            continue;
        };
        listed.push((u16::from_be_bytes([hi, lo]), name.to_owned(), min.to_owned()));
    }
    assert!(!listed.is_empty(), "no suites in gnutls-cli --list:\n{}", out.stdout);
    let rank = |v: &str| ["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"].iter().position(|g| *g == v);
    let mut t = Truth::default();
    for (i, (label, flag, printed)) in VERSIONS.iter().enumerate() {
        if !version_handshakes(port, flag, printed) {
            continue;
        }
        let mut suites = Vec::new();
        for (id, gnutls_name, min) in &listed {
            let min = rank(min).unwrap_or_else(|| panic!("unknown lowest version {min:?} of {gnutls_name}"));
            let tls13 = min == 3;
            let usable = if *flag == "-tls1_3" { tls13 } else { !tls13 && i >= min };
            if !usable {
                continue;
            }
            let name = names
                .get(id)
                .unwrap_or_else(|| panic!("OpenSSL has no name for {gnutls_name} (0x{id:04x}): cannot probe it"));
            let psk_srp = name.contains("PSK") || name.contains("SRP");
            if suite_handshakes(port, flag, printed, name, psk_srp) {
                suites.push(*id);
            }
        }
        assert!(
            !suites.is_empty(),
            "s_client negotiated {label} but no listed suite alone"
        );
        t.ciphers.insert(label, suites);
    }
    t.groups = probe_groups(port, t.ciphers.contains_key("TLSv1.3"), ecdhe_version(&t));
    t
}

// --- e. ECDSA only, five groups ---

/// An ECDSA P-256 leaf only, `-groups X25519:X448:P-256:P-384:P-521`,
/// OpenSSL's default protocols (TLS 1.2 and 1.3): every one of the five
/// groups, and only ECDHE-ECDSA suites at TLS 1.2.
#[test]
fn defect_openssl_ecdsa_only_five_groups() {
    let (server, scan, t) = openssl_case(Key::Ecdsa, &["-groups", "X25519:X448:P-256:P-384:P-521"], "DEFAULT");
    assert_eq!(supported(&t), ["TLSv1.2", "TLSv1.3"], "s_client truth: {:?}", t.ciphers);
    let mut groups = t.groups.clone();
    groups.sort_unstable();
    assert_eq!(
        groups,
        [0x0017, 0x0018, 0x0019, 0x001d, 0x001e],
        "s_client truth: the five groups"
    );
    Check::new("openssl ECDSA -groups X25519:X448:P-256:P-384:P-521", &scan, &t)
        .negotiated()
        .modern_result()
        .exit_code()
        .finish(&server);
}
