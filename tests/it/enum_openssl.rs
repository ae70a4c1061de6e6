//! `hsscan --enumerate` against `openssl s_server` (OpenSSL 3.0), compared
//! with the truth OpenSSL itself gives at test time:
//!
//! * which protocols: an `openssl s_client -brief -tls1…` handshake per
//!   version, with the widest client settings, so only the server can
//!   refuse;
//! * which suites per protocol, and their order: `openssl ciphers -v -V -s
//!   -tls1…` on the server's cipher string (its output order is the
//!   server's preference order under `-serverpref`), keeping what the RSA
//!   test certificate can serve (`Au=RSA`, `Au=None` for the anonymous
//!   suites, `Au=any` in TLS 1.3) and dropping PSK/SRP (none configured);
//! * which groups: the `supported_groups` of `openssl s_client -trace`
//!   (the same default list, or the same `-groups` string, as the server);
//! * the DH size: the `Server Temp Key` `openssl s_client` reports.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::enum_support::{self, run, Check, Scan, Truth, TOOL_LIMIT};
use crate::support::{certs, Server, OPENSSL};

/// The versions `openssl` tools name by flag, with the JSON label and what
/// `s_client -brief` prints for it.
const VERSIONS: [(&str, &str, &str); 4] = [
    ("TLSv1.0", "-tls1", "TLSv1"),
    ("TLSv1.1", "-tls1_1", "TLSv1.1"),
    ("TLSv1.2", "-tls1_2", "TLSv1.2"),
    ("TLSv1.3", "-tls1_3", "TLSv1.3"),
];

/// The cipher string and protocol floor of the "legacy" configurations.
const ALL_SECLEVEL0: &str = "ALL:@SECLEVEL=0";

/// One `s_server` configuration.
#[derive(Clone, Default)]
pub struct Config {
    /// `-min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0' -provider legacy
    /// -provider default`; otherwise OpenSSL's defaults.
    pub all: bool,
    pub serverpref: bool,
    /// `-groups`.
    pub groups: Option<&'static str>,
    /// More arguments (`-no_ticket`, `-dhparam FILE`, …).
    pub extra: Vec<String>,
}

impl Config {
    /// The cipher string the server uses, for `openssl ciphers`.
    fn cipher_string(&self) -> &'static str {
        if self.all {
            ALL_SECLEVEL0
        } else {
            "DEFAULT"
        }
    }

    fn provider_args(&self) -> Vec<String> {
        if self.all {
            ["-provider", "legacy", "-provider", "default"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        }
    }

    pub fn start(&self) -> Server {
        let mut args: Vec<String> = Vec::new();
        if self.all {
            args.extend(["-min_protocol", "TLSv1", "-cipher", ALL_SECLEVEL0].map(String::from));
            args.extend(self.provider_args());
        }
        if self.serverpref {
            args.push("-serverpref".into());
        }
        if let Some(g) = self.groups {
            args.extend(["-groups".to_owned(), g.to_owned()]);
        }
        args.extend(self.extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::openssl_s_server("openssl-s_server-enum", &args)
    }
}

/// One line of `openssl ciphers -v -V`.
struct OsslSuite {
    id: u16,
    name: String,
    kx: String,
}

/// The suites `openssl ciphers -v -V -s FLAG STRING` lists, in its order,
/// that this server can negotiate: RSA certificate, no PSK, no SRP.
fn openssl_ciphers(flag: &str, cfg: &Config) -> Vec<OsslSuite> {
    let mut args = vec!["ciphers".to_owned()];
    args.extend(cfg.provider_args());
    args.extend(["-v", "-V", "-s", flag, cfg.cipher_string()].map(String::from));
    let out = run(&OPENSSL.require(), &args, &[], TOOL_LIMIT);
    assert!(out.success, "openssl {} failed:\n{}", args.join(" "), out.both());
    let mut suites = Vec::new();
    for line in out.stdout.lines() {
        // `0xC0,0x30 - ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=… Mac=AEAD`
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(bytes) = tokens.first() else { continue };
        let id = bytes
            .split(',')
            .map(|b| b.strip_prefix("0x").and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_be_bytes)
            .unwrap_or_else(|| panic!("unexpected `openssl ciphers -V` line: {line:?}"));
        let field = |k: &str| tokens.iter().find_map(|t| t.strip_prefix(k)).unwrap_or("").to_owned();
        let (au, kx) = (field("Au="), field("Kx="));
        let name = tokens.get(2).copied().unwrap_or("").to_owned();
        if matches!(au.as_str(), "RSA" | "None" | "any") && !kx.contains("PSK") && !kx.contains("SRP") {
            suites.push(OsslSuite { id, name, kx });
        }
    }
    suites
}

/// `openssl s_client ARGS` against the server; returns what it printed.
fn s_client(server: &Server, args: &[&str]) -> enum_support::Output {
    let mut all: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{}", server.port),
    ];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    run(&OPENSSL.require(), &all, &[], TOOL_LIMIT)
}

/// Whether a full `s_client` handshake at `flag` succeeds with the widest
/// client settings (every suite, security level 0, legacy provider).
fn handshakes(server: &Server, flag: &str, printed: &str) -> bool {
    let out = s_client(
        server,
        &[
            "-brief",
            flag,
            "-cipher",
            ALL_SECLEVEL0,
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    let want = format!("Protocol version: {printed}");
    out.success && out.both().lines().any(|l| l.trim() == want)
}

/// Whether this `openssl` can speak SSLv3 at all (`s_client -ssl3`).
/// Debian's OpenSSL 3.0 cannot: it has no `-ssl3` option.
fn openssl_has_ssl3() -> bool {
    let out = run(
        &OPENSSL.require(),
        &["s_client".into(), "-help".into()],
        &[],
        TOOL_LIMIT,
    );
    out.both().lines().any(|l| l.split_whitespace().next() == Some("-ssl3"))
}

/// The `supported_groups` list `s_client -trace` sends: OpenSSL's default
/// list, or the `-groups` list, as codepoints in order.
fn s_client_groups(server: &Server, groups: Option<&str>) -> Vec<u16> {
    let mut args = vec!["-trace"];
    if let Some(g) = groups {
        args.extend(["-groups", g]);
    }
    let out = s_client(server, &args);
    let mut ids = Vec::new();
    let mut inside = false;
    for line in out.stdout.lines() {
        let l = line.trim();
        if l.starts_with("extension_type=supported_groups(10)") {
            inside = true;
            continue;
        }
        if inside {
            // `secp256r1 (P-256) (23)`; the list ends at the next extension.
            let id = l
                .strip_suffix(')')
                .and_then(|s| s.rsplit_once('('))
                .and_then(|(_, n)| n.parse::<u16>().ok());
            match id {
                Some(id) if !l.starts_with("extension_type=") => ids.push(id),
                _ => break,
            }
        }
    }
    assert!(
        !ids.is_empty(),
        "no supported_groups in `openssl s_client -trace` output:\n{}",
        out.both()
    );
    ids
}

/// The DH prime size `s_client` reports for one TLS 1.2 DH suite.
fn s_client_dh_bits(server: &Server, name: &str) -> u64 {
    let cipher = format!("{name}:@SECLEVEL=0");
    let out = s_client(
        server,
        &[
            "-brief",
            "-tls1_2",
            "-cipher",
            &cipher,
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    // `Server Temp Key: DH, 2048 bits`
    out.both()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Server Temp Key: DH, ")
                .and_then(|r| r.strip_suffix(" bits"))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no DH temp key from s_client -cipher {cipher}:\n{}", out.both()))
}

/// The truth of a running server of configuration `cfg`.
pub fn truth(server: &Server, cfg: &Config) -> Truth {
    let mut t = Truth {
        server_order: cfg.serverpref,
        groups_ordered: cfg.serverpref,
        ..Truth::default()
    };
    assert!(
        !openssl_has_ssl3(),
        "this openssl has `s_client -ssl3`: the SSLv3 truth would need deriving (OpenSSL 3.0 on Debian 12 has none)"
    );
    for (label, flag, printed) in VERSIONS {
        if handshakes(server, flag, printed) {
            let suites: Vec<u16> = openssl_ciphers(flag, cfg).iter().map(|s| s.id).collect();
            assert!(
                !suites.is_empty(),
                "s_client negotiated {label} but `openssl ciphers` lists nothing"
            );
            t.ciphers.insert(label, suites);
        }
    }
    t.groups = s_client_groups(server, cfg.groups);
    t
}

/// The smallest DH prime over every DH suite of the server at TLS 1.2. Its
/// size depends on the suite (OpenSSL's automatic choice follows the
/// certificate key, or for anonymous suites the cipher strength), not on
/// the version.
fn dh_truth(server: &Server, cfg: &Config) -> u64 {
    openssl_ciphers("-tls1_2", cfg)
        .iter()
        .filter(|s| s.kx == "DH")
        .map(|s| s_client_dh_bits(server, &s.name))
        .min()
        .expect("the server has DH suites")
}

fn scan_and_truth(cfg: &Config) -> (Server, Scan, Truth) {
    let mut server = cfg.start();
    let scan = enum_support::enumerate(&mut server);
    let t = truth(&server, cfg);
    (server, scan, t)
}

/// A DH parameter file with the RFC 7919 ffdhe2048 group.
fn ffdhe2048() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = certs().join("enum-ffdhe2048.pem");
        let args = [
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            &file.display().to_string(),
        ]
        .map(String::from);
        let out = run(&OPENSSL.require(), &args, &[], TOOL_LIMIT);
        assert!(out.success, "openssl {} failed:\n{}", args.join(" "), out.both());
        file
    })
}

/// A DER OCSP response, "good", for the RSA leaf, signed by the
/// intermediate CA that issued it (`openssl ocsp` as a one-shot responder).
fn ocsp_response() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = certs();
        let p = |f: &str| dir.join(f).display().to_string();
        let openssl = OPENSSL.require();
        let ossl = |args: &[String]| {
            let out = run(&openssl, args, &[], TOOL_LIMIT);
            assert!(out.success, "openssl {} failed:\n{}", args.join(" "), out.both());
            out.stdout
        };
        let serial = ossl(&["x509", "-in", &p("rsa.pem"), "-noout", "-serial"].map(String::from));
        let serial = serial.trim().strip_prefix("serial=").expect("serial=HEX").to_owned();
        // index.txt of `openssl ca`: status V(alid), expiry (not checked
        // for a valid entry), no revocation date, serial, file, subject.
        std::fs::write(
            dir.join("enum-ocsp-index.txt"),
            format!("V\t491231235959Z\t\t{serial}\tunknown\t/CN=localhost\n"),
        )
        .expect("write OCSP index");
        ossl(
            &[
                "ocsp",
                "-issuer",
                &p("int.pem"),
                "-cert",
                &p("rsa.pem"),
                "-no_nonce",
                "-reqout",
                &p("enum-ocsp-req.der"),
            ]
            .map(String::from),
        );
        ossl(
            &[
                "ocsp",
                "-index",
                &p("enum-ocsp-index.txt"),
                "-rsigner",
                &p("int.pem"),
                "-rkey",
                &p("int.key"),
                "-CA",
                &p("int.pem"),
                "-reqin",
                &p("enum-ocsp-req.der"),
                "-respout",
                &p("enum-ocsp-resp.der"),
                "-ndays",
                "2",
            ]
            .map(String::from),
        );
        let text = ossl(&["ocsp", "-respin", &p("enum-ocsp-resp.der"), "-resp_text", "-noverify"].map(String::from));
        assert!(
            text.contains("OCSP Response Status: successful") && text.contains("Cert Status: good"),
            "unexpected OCSP response:\n{text}"
        );
        dir.join("enum-ocsp-resp.der")
    })
}

/// Defaults (no `-cipher`, TLS 1.2 floor at security level 1: OpenSSL 3.0
/// refuses the SHA-1 signatures TLS 1.0/1.1 need): TLS 1.2 and 1.3 only,
/// the suites of 'DEFAULT', the client's order, OpenSSL's default groups,
/// and the DH size OpenSSL picks on its own.
#[test]
fn openssl_defaults_tls12_tls13_client_order() {
    let cfg = Config::default();
    let (server, scan, t) = scan_and_truth(&cfg);
    let supported: Vec<&str> = t.ciphers.keys().copied().collect();
    assert_eq!(
        supported,
        ["TLSv1.2", "TLSv1.3"],
        "s_client truth: an OpenSSL 3.0 s_server at its defaults does TLS 1.2 and 1.3 only"
    );
    let dh = dh_truth(&server, &cfg);
    Check::new("openssl defaults", &scan, &t).dh_bits(dh).finish(&server);
}

/// `-min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0'` with the legacy
/// provider: all four TLS versions, about 100 (protocol, suite) pairs, the
/// client's order, and the features an s_server has by default.
#[test]
fn openssl_all_seclevel0_four_versions() {
    let cfg = Config {
        all: true,
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    assert_eq!(t.ciphers.len(), 4, "s_client truth: TLS 1.0 to 1.3");
    let dh = dh_truth(&server, &cfg);
    Check::new("openssl ALL:@SECLEVEL=0", &scan, &t)
        .dh_bits(dh)
        .feature("secure_renegotiation", true)
        .feature("extended_master_secret", true)
        .feature("encrypt_then_mac", true)
        .feature("session_ticket", true)
        .feature("fallback_scsv", true)
        .feature("ocsp_stapling", false)
        .feature("compression", false)
        .feature("heartbeat", false)
        .finish(&server);
}

/// The same with `-serverpref`: every protocol's suites in exactly the
/// `openssl ciphers` order, and the groups in the server's order.
#[test]
fn openssl_all_seclevel0_serverpref_order() {
    let cfg = Config {
        all: true,
        serverpref: true,
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    assert_eq!(t.ciphers.len(), 4, "s_client truth: TLS 1.0 to 1.3");
    Check::new("openssl ALL:@SECLEVEL=0 -serverpref", &scan, &t).finish(&server);
}

/// `-groups P-384:X25519`, the client deciding: exactly those two groups.
#[test]
fn openssl_explicit_groups_client_order() {
    let cfg = Config {
        groups: Some("P-384:X25519"),
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    assert_eq!(t.groups, [0x0018, 0x001d], "s_client -groups P-384:X25519 -trace");
    Check::new("openssl -groups P-384:X25519", &scan, &t).finish(&server);
}

/// `-groups P-384:X25519 -serverpref`: those two groups in that order.
#[test]
fn openssl_explicit_groups_server_order() {
    let cfg = Config {
        groups: Some("P-384:X25519"),
        serverpref: true,
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    assert_eq!(t.groups, [0x0018, 0x001d], "s_client -groups P-384:X25519 -trace");
    Check::new("openssl -groups P-384:X25519 -serverpref", &scan, &t).finish(&server);
}

/// `-dhparam` with the ffdhe2048 group: every DH suite, the anonymous ones
/// included (which OpenSSL would otherwise give 1024 bits), uses it.
#[test]
fn openssl_dhparam_ffdhe2048() {
    let cfg = Config {
        all: true,
        extra: vec!["-dhparam".into(), ffdhe2048().display().to_string()],
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    let dh = dh_truth(&server, &cfg);
    assert_eq!(dh, 2048, "s_client truth for -dhparam ffdhe2048");
    Check::new("openssl -dhparam ffdhe2048", &scan, &t)
        .dh_bits(dh)
        .finish(&server);
}

/// `-no_ticket`: no session ticket extension.
#[test]
fn openssl_no_ticket() {
    let cfg = Config {
        all: true,
        extra: vec!["-no_ticket".into()],
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    Check::new("openssl -no_ticket", &scan, &t)
        .feature("session_ticket", false)
        .feature("secure_renegotiation", true)
        .feature("extended_master_secret", true)
        .finish(&server);
}

/// `-status_file` with an OCSP response: the server staples it.
#[test]
fn openssl_status_file_ocsp_stapling() {
    let cfg = Config {
        all: true,
        extra: vec!["-status_file".into(), ocsp_response().display().to_string()],
        ..Config::default()
    };
    let (server, scan, t) = scan_and_truth(&cfg);
    Check::new("openssl -status_file", &scan, &t)
        .feature("ocsp_stapling", true)
        .feature("session_ticket", true)
        .finish(&server);
}
