//! `hsscan emulate` against real clients: `openssl s_client -trace` and
//! `gnutls-cli -d 4` see the version, suite and preference order each
//! shipped profile configures, and the alert it sends on a mismatch. The
//! SSLv2, SSLv3 and export profiles, which no client here can speak, are
//! checked with hellos built by hsscan-wire.
//!
//! The truth is the profile file itself (`src/emulate/profiles/*.toml`,
//! read here with the toml crate) and what the client says it offered
//! (its own trace), never the emulator's log.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hsscan_wire::server_key_exchange::bit_len;
use hsscan_wire::{
    catalog, AlertDescription, CipherSuite, ClientHello, Event, ProtocolVersion, ServerKeyExchange, Sslv2ClientHello,
};

use crate::enum_support::{run, TOOL_LIMIT};
use crate::support::{random, End, Server, Tool, OPENSSL};

const GNUTLS_CLI: Tool = Tool {
    program: "gnutls-cli",
    install: "install the Debian package `gnutls-bin` (apt-get install gnutls-bin)",
};

/// `hsscan emulate --profile NAME --listen 127.0.0.1:PORT --json …`, ready.
pub fn emulator(profile: &str, extra: &[&str]) -> Server {
    let mut args: Vec<String> = ["emulate", "--profile", profile, "--json"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    emulator_with(args)
}

/// The emulator with these arguments (plus `--listen`), ready.
pub fn emulator_with(args: Vec<String>) -> Server {
    let server = Server::start_program(
        "hsscan-emulate",
        PathBuf::from(env!("CARGO_BIN_EXE_hsscan")),
        move |port| {
            let mut a = args.clone();
            a.extend(["--listen".to_owned(), format!("127.0.0.1:{port}")]);
            a
        },
    );
    // Wait for its start line rather than connecting: a probe connection
    // would count as one of the emulator's.
    let start = Instant::now();
    while !server.log().contains("hsscan emulate: profile") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the emulator did not start\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Writes a profile file for `--config` into this test run's directory.
pub fn profile_file(name: &str, toml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hsscan-it-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).expect("write profile");
    path
}

/// The emulator playing a profile file written here.
pub fn emulator_config(name: &str, toml: &str) -> Server {
    emulator_with(vec![
        "emulate".into(),
        "--config".into(),
        profile_file(name, toml).display().to_string(),
    ])
}

/// A shipped profile file, as configured.
struct Profile {
    versions: Vec<String>,
    ciphers: Vec<CipherSuite>,
    sslv2: Vec<String>,
    server_preference: bool,
}

fn profile(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/emulate/profiles/{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let strings = |key: &str| -> Vec<String> {
        v["tls"]
            .get(key)
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    Profile {
        versions: strings("versions"),
        ciphers: strings("ciphers")
            .iter()
            .map(|n| {
                catalog::suite_by_name(n)
                    .unwrap_or_else(|| panic!("{name}: unknown suite {n}"))
                    .id
            })
            .collect(),
        sslv2: strings("sslv2_ciphers"),
        server_preference: v["tls"].get("preference").and_then(|p| p.as_str()) != Some("client"),
    }
}

/// Whether a suite name can be negotiated at TLS 1.0/1.1: no AEAD, no
/// SHA-2 record MAC, not a TLS 1.3 suite (RFC 5246 §A.5, RFC 8446 §B.4).
fn pre_tls12(s: CipherSuite) -> bool {
    let n = s.name().unwrap_or("");
    let aead_or_sha2 =
        ["GCM", "CHACHA", "CCM"].iter().any(|m| n.contains(m)) || n.ends_with("SHA256") || n.ends_with("SHA384");
    !(aead_or_sha2 || n.starts_with("TLS_AES"))
}

/// The suite the profile must choose among `offered`.
fn expected(p: &Profile, offered: &[CipherSuite], usable: impl Fn(CipherSuite) -> bool) -> CipherSuite {
    let ours: Vec<CipherSuite> = p.ciphers.iter().copied().filter(|s| usable(*s)).collect();
    let pick = if p.server_preference {
        ours.iter().copied().find(|s| offered.contains(s))
    } else {
        offered.iter().copied().find(|s| ours.contains(s))
    };
    pick.unwrap_or_else(|| panic!("no common suite between the profile and the offer {offered:?}"))
}

/// What `openssl s_client -trace` shows of one exchange.
#[derive(Debug, Default)]
pub struct Trace {
    pub offered: Vec<CipherSuite>,
    pub server_version: Option<String>,
    pub chosen: Option<CipherSuite>,
    /// A fatal alert the server sent.
    pub alert: Option<String>,
    /// Everything s_client printed, stdout then stderr.
    pub text: String,
}

/// `{0xC0, 0x2C}` → 0xc02c.
fn pair(s: &str) -> Option<CipherSuite> {
    let inner = s.split('{').nth(1)?.split('}').next()?;
    let mut it = inner
        .split(',')
        .map(|h| u8::from_str_radix(h.trim().trim_start_matches("0x"), 16));
    let (a, b) = (it.next()?.ok()?, it.next()?.ok()?);
    Some(CipherSuite(u16::from_be_bytes([a, b])))
}

/// `openssl s_client -trace` against 127.0.0.1:`port` (after SMTP
/// STARTTLS when `smtp`), with `args` added.
pub fn s_client(port: u16, smtp: bool, args: &[&str]) -> Trace {
    let mut a: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
        "-trace".into(),
        "-noservername".into(),
    ];
    if smtp {
        a.extend([
            "-starttls".into(),
            "smtp".into(),
            "-name".into(),
            "client.test.example".into(),
        ]);
    }
    a.extend(args.iter().map(|s| (*s).to_owned()));
    let out = run(&OPENSSL.require(), &a, &[], TOOL_LIMIT);
    let text = out.both();
    let mut t = Trace::default();
    let mut in_client_suites = false;
    let mut in_server_hello = false;
    let mut received = false;
    for line in text.lines() {
        let l = line.trim();
        match l {
            "Sent Record" => received = false,
            "Received Record" => received = true,
            _ => {}
        }
        if l.starts_with("cipher_suites (len=") {
            in_client_suites = true;
            continue;
        }
        if in_client_suites {
            match pair(l).filter(|_| l.starts_with('{')) {
                Some(s) => {
                    t.offered.push(s);
                    continue;
                }
                None => in_client_suites = false,
            }
        }
        if l.starts_with("ServerHello,") {
            in_server_hello = true;
        }
        if in_server_hello {
            if let Some(v) = l.strip_prefix("server_version=") {
                t.server_version = Some(v.to_owned());
            }
            if l.starts_with("cipher_suite {") {
                t.chosen = pair(l);
                in_server_hello = false;
            }
        }
        if let Some(rest) = l.strip_prefix("Level=fatal(2), description=").filter(|_| received) {
            t.alert = Some(rest.to_owned());
        }
    }
    t.text = text;
    t
}

#[track_caller]
fn assert_chosen(t: &Trace, em: &Server, want: CipherSuite, version: &str) {
    assert_eq!(t.chosen, Some(want), "expected {want:?}\n{}\n{}", t.text, em.log());
    // TLS 1.3 ServerHellos say 0x303 and put the version in supported_versions.
    let shown = t.server_version.as_deref().unwrap_or("");
    assert!(
        shown.contains(version),
        "server_version {shown}, want {version}\n{}",
        t.text
    );
}

#[test]
fn exchange2016_tls12_takes_the_first_profile_suite_the_client_offers() {
    let p = profile("exchange2016");
    assert!(p.server_preference);
    let em = emulator("exchange2016", &[]);
    let t = s_client(em.port, true, &["-tls1_2"]);
    assert!(t.offered.len() > 10, "{}", t.text);
    assert_chosen(&t, &em, expected(&p, &t.offered, |_| true), "TLS 1.2");
}

#[test]
fn exchange2016_tls10_and_a_tls13_only_hello() {
    let p = profile("exchange2016");
    assert!(p.versions.contains(&"TLSv1.0".to_owned()) && !p.versions.contains(&"TLSv1.3".to_owned()));
    let em = emulator("exchange2016", &[]);
    let t = s_client(em.port, true, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert_chosen(&t, &em, expected(&p, &t.offered, pre_tls12), "TLS 1.0");
    // A server without TLS 1.3 reads legacy_version (TLS 1.2) and finds
    // none of the TLS 1.3-only suites: handshake_failure, as Schannel does.
    let t = s_client(em.port, true, &["-tls1_3"]);
    assert_eq!(t.chosen, None, "{}", t.text);
    assert_eq!(
        t.alert.as_deref(),
        Some("handshake failure(40)"),
        "{}\n{}",
        t.text,
        em.log()
    );
}

#[test]
fn exchange2019_tls13_in_server_order() {
    let p = profile("exchange2019");
    let em = emulator("exchange2019", &[]);
    // The client puts TLS_AES_128_GCM_SHA256 first; the profile's order wins.
    let t = s_client(
        em.port,
        true,
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        ],
    );
    assert_eq!(t.offered.first(), Some(&CipherSuite(0x1301)), "{}", t.text);
    assert_chosen(&t, &em, expected(&p, &t.offered, |_| true), "TLS 1.2");
    assert_eq!(t.chosen, Some(CipherSuite(0x1302)));
    let sv = t.text.contains("TLS 1.3 (772)");
    assert!(sv, "no supported_versions = TLS 1.3 in the ServerHello\n{}", t.text);
}

#[test]
fn postfix_default_follows_the_client_order() {
    let p = profile("postfix-default");
    assert!(!p.server_preference);
    let em = emulator("postfix-default", &[]);
    let t = s_client(
        em.port,
        true,
        &["-tls1_2", "-cipher", "AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384"],
    );
    assert_eq!(t.offered.first(), Some(&CipherSuite(0x002f)), "{}", t.text);
    assert_chosen(&t, &em, CipherSuite(0x002f), "TLS 1.2");
    let t = s_client(
        em.port,
        true,
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        ],
    );
    assert_eq!(t.chosen, Some(CipherSuite(0x1301)), "{}\n{}", t.text, em.log());
}

#[test]
fn tls13_only_refuses_tls12() {
    let em = emulator("tls13-only", &[]);
    let t = s_client(em.port, true, &["-tls1_2"]);
    assert_eq!(t.chosen, None, "{}", t.text);
    assert_eq!(
        t.alert.as_deref(),
        Some("protocol version(70)"),
        "{}\n{}",
        t.text,
        em.log()
    );
    let t = s_client(em.port, true, &["-tls1_3"]);
    assert_eq!(t.chosen, Some(CipherSuite(0x1302)), "{}\n{}", t.text, em.log());
}

#[test]
fn exchange2010_answers_tls10_even_to_a_tls12_client() {
    let p = profile("exchange2010");
    let em = emulator("exchange2010", &[]);
    let t = s_client(em.port, true, &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert_chosen(&t, &em, expected(&p, &t.offered, pre_tls12), "TLS 1.0");
    // A TLS 1.2-only client is answered at TLS 1.0 (2008 R2 has 1.2
    // disabled), which that client then refuses itself.
    let t = s_client(em.port, true, &["-tls1_2"]);
    assert_chosen(&t, &em, expected(&p, &t.offered, pre_tls12), "TLS 1.0");
    assert!(t.text.contains("protocol version"), "{}", t.text);
}

#[test]
fn lb_drop_after_hello_closes_after_the_client_hello() {
    let em = emulator("lb-drop-after-hello", &[]);
    let t = s_client(em.port, true, &[]);
    assert!(t.offered.len() > 10, "s_client sent no hello\n{}", t.text);
    assert_eq!(t.chosen, None, "{}", t.text);
    assert_eq!(t.alert, None, "{}", t.text);
}

#[test]
fn gnutls_cli_sees_the_exchange2016_order() {
    let p = profile("exchange2016");
    let em = emulator("exchange2016", &["--front", "tls"]);
    let priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
    let cli = GNUTLS_CLI.require();
    // What the client offers, in its order: `--list` prints each suite with its code.
    let list = run(
        &cli,
        &["--list".into(), "--priority".into(), priority.into()],
        &[],
        TOOL_LIMIT,
    )
    .both();
    let offered: Vec<CipherSuite> = list
        .lines()
        .filter_map(|l| {
            let hex = l.split('\t').nth(1)?;
            let mut it = hex
                .split(',')
                .map(|h| u8::from_str_radix(h.trim().trim_start_matches("0x"), 16));
            Some(CipherSuite(u16::from_be_bytes([it.next()?.ok()?, it.next()?.ok()?])))
        })
        .collect();
    assert!(offered.len() > 10, "{list}");
    let want = expected(&p, &offered, |_| true);
    let out = run(
        &cli,
        &[
            "--insecure".into(),
            "-p".into(),
            em.port.to_string(),
            "127.0.0.1".into(),
            "-d".into(),
            "4".into(),
            "--priority".into(),
            priority.into(),
        ],
        &[],
        TOOL_LIMIT,
    )
    .both();
    let chosen = out
        .lines()
        .find_map(|l| l.split("Selected cipher suite: ").nth(1))
        .unwrap_or_else(|| panic!("no suite selected\n{out}\n{}", em.log()))
        .trim()
        .to_owned();
    let info = catalog::suite(want).expect("catalog row");
    let name = info.gnutls_name.unwrap_or(info.name);
    let gnutls = format!("GNUTLS_{}", name.strip_prefix("TLS_").unwrap_or(name));
    assert_eq!(chosen, gnutls, "{out}");
    assert!(out.contains("Server's version: 3.3"), "{out}");
}

/// A hello offering `suites` at `v` (no SNI).
fn hello(v: ProtocolVersion, suites: Vec<CipherSuite>) -> ClientHello {
    ClientHello::typical(v, v, random(7), suites, None)
}

fn record_version(v: ProtocolVersion) -> ProtocolVersion {
    if v == ProtocolVersion::SSL3 {
        v
    } else {
        ProtocolVersion::TLS10
    }
}

#[test]
fn sslv2_profile_answers_sslv2_and_sslv3() {
    let p = profile("sslv2");
    let mut em = emulator("sslv2", &["--front", "tls"]);
    let flight = em.exchange(&[Sslv2ClientHello::sslv2([3; 16]).to_record().expect("encode")]);
    let sh = flight
        .events
        .iter()
        .find_map(|e| match e {
            Event::Sslv2ServerHello(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SSLv2 SERVER-HELLO: {}\n{}", flight.describe(), em.log()));
    let specs: Vec<String> = sh
        .cipher_specs
        .iter()
        .map(|s| catalog::sslv2_spec(*s).expect("known spec").name.to_owned())
        .collect();
    assert_eq!(specs, p.sslv2);
    assert!(!sh.certificate.is_empty());
    // The same server speaks SSLv3, in its own order.
    let all: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::SSL3).map(|s| s.id).collect();
    let f = em.hello(&hello(ProtocolVersion::SSL3, all.clone()), ProtocolVersion::SSL3);
    let sh = f.expect_server_hello();
    assert_eq!(sh.legacy_version, ProtocolVersion::SSL3);
    assert_eq!(sh.cipher_suite, expected(&p, &all, |_| true));
}

#[test]
fn exchange2007_sslv3_and_the_64_suite_window() {
    let p = profile("exchange2007");
    let mut em = emulator("exchange2007", &["--front", "tls"]);
    let all: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::SSL3).map(|s| s.id).collect();
    let f = em.hello(&hello(ProtocolVersion::SSL3, all.clone()), ProtocolVersion::SSL3);
    let sh = f.expect_server_hello();
    assert_eq!(sh.legacy_version, ProtocolVersion::SSL3, "{}", f.describe());
    assert_eq!(sh.cipher_suite, expected(&p, &all, |_| true));
    assert_eq!(sh.cipher_suite, CipherSuite(0x0004));
    // 69 suites the profile lacks, then RC4-MD5 at position 70: not read.
    let filler: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS12)
        .map(|s| s.id)
        .filter(|s| !p.ciphers.contains(s))
        .take(69)
        .collect();
    assert_eq!(filler.len(), 69);
    let mut late = filler.clone();
    late.push(CipherSuite(0x0004));
    let f = em.hello(&hello(ProtocolVersion::TLS10, late), ProtocolVersion::TLS10);
    assert_eq!(f.server_hello(), None, "{}", f.describe());
    assert_eq!(
        f.alert().map(|a| a.description),
        Some(AlertDescription::HANDSHAKE_FAILURE),
        "{}",
        f.describe()
    );
    // The same suite at position 60 is read.
    let mut early = filler;
    early.insert(59, CipherSuite(0x0004));
    let f = em.hello(&hello(ProtocolVersion::TLS10, early), ProtocolVersion::TLS10);
    assert_eq!(
        f.expect_server_hello().cipher_suite,
        CipherSuite(0x0004),
        "{}",
        f.describe()
    );
}

#[test]
fn export_grade_sends_a_512_bit_export_key() {
    let p = profile("export-grade");
    let mut em = emulator("export-grade", &["--front", "tls"]);
    let all: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS10).map(|s| s.id).collect();
    let f = em.hello(
        &hello(ProtocolVersion::TLS10, all.clone()),
        record_version(ProtocolVersion::TLS10),
    );
    let sh = f.expect_server_hello();
    let want = expected(&p, &all, |_| true);
    assert_eq!(sh.cipher_suite, want);
    assert_eq!(want.name(), Some("TLS_RSA_EXPORT_WITH_RC4_40_MD5"));
    let ske = f
        .events
        .iter()
        .find_map(|e| match e {
            Event::ServerKeyExchange(k) => Some(k.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ServerKeyExchange: {}", f.describe()));
    match ske {
        ServerKeyExchange::RsaExport { modulus, .. } => assert_eq!(bit_len(&modulus), 512),
        other => panic!("{other:?}"),
    }
    assert!(
        f.events.iter().any(|e| matches!(e, Event::ServerHelloDone)),
        "{}",
        f.describe()
    );
}

/// Connects and reads the first reply line.
pub fn banner(addr: SocketAddr) -> (TcpStream, String) {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut line = String::new();
    BufReader::new(s.try_clone().expect("clone"))
        .read_line(&mut line)
        .expect("banner");
    (s, line.trim_end().to_owned())
}

/// `n` SMTP connections to `addr`, held open after a `220` banner: the
/// rate-limited profile then answers every further one with 421.
pub fn hold_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let (s, line) = banner(addr);
            assert!(line.starts_with("220 "), "{line}");
            s
        })
        .collect()
}

#[test]
fn rate_limited_answers_421_past_two_connections() {
    let em = emulator("rate-limited", &["--exit-after", "3"]);
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, em.port));
    let (mut a, ba) = banner(local);
    let (b, bb) = banner(local);
    let (_c, bc) = banner(local);
    assert!(ba.starts_with("220 ") && bb.starts_with("220 "), "{ba} / {bb}");
    assert_eq!(
        bc,
        "421 4.7.0 mx.emulated.test Error: too many connections from 127.0.0.1"
    );
    a.write_all(b"QUIT\r\n").expect("QUIT");
    drop(b);
    drop(a);
    // The summary line on exit counts them.
    let start = Instant::now();
    while !em.log().contains("\"record\":\"summary\"") {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", em.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        em.log().contains(
            "{\"connections\":3,\"max_concurrent\":3,\"max_concurrent_per_address\":3,\"record\":\"summary\"}"
        ),
        "{}",
        em.log()
    );
    assert!(
        em.log()
            .contains("hsscan emulate: 3 connections, at most 3 at once (3 on one address)"),
        "{}",
        em.log()
    );
}

#[test]
fn reset_profile_resets_after_the_hello() {
    let mut em = emulator_config("emulate-reset", "description = \"resets every hello\"\n[tls]\nversions = [\"TLSv1.2\"]\nciphers = [\"TLS_RSA_WITH_AES_128_CBC_SHA\"]\n[misbehave]\nafter_hello = \"reset\"\n");
    let all: Vec<CipherSuite> = catalog::suites_for(ProtocolVersion::TLS12).map(|s| s.id).collect();
    let f = em.hello(&hello(ProtocolVersion::TLS12, all), ProtocolVersion::TLS10);
    assert!(matches!(f.end, End::Reset), "{}", f.describe());
    assert!(f.events.is_empty(), "{}", f.describe());
}

#[test]
fn list_profiles_one_line_each() {
    let run = crate::scan_support::hsscan(&["emulate", "--list-profiles"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let names: Vec<&str> = run.stdout.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        names,
        [
            "exchange2007",
            "exchange2010",
            "exchange2016",
            "exchange2019",
            "postfix-default",
            "tls13-only",
            "lb-drop-after-hello",
            "export-grade",
            "sslv2",
            "rate-limited"
        ]
    );
}

#[test]
fn bad_profiles_are_one_line_usage_errors() {
    let cfg = profile_file("bad", "description = \"x\"\n[tls]\nversions = [\"TLSv9\"]\n");
    let path = cfg.display().to_string();
    for (args, names) in [
        (
            vec!["emulate", "--profile", "exchange2000", "--listen", "127.0.0.1:1"],
            "exchange2000",
        ),
        (
            vec!["emulate", "--config", &path, "--listen", "127.0.0.1:1"],
            "tls.versions",
        ),
        (
            vec!["emulate", "--profile", "sslv2", "--listen", "localhost"],
            "localhost",
        ),
    ] {
        let run = crate::scan_support::hsscan(&args);
        assert_eq!(run.code, 2, "{}", run.describe());
        assert!(run.stdout.is_empty(), "{}", run.describe());
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", run.describe());
        assert!(
            lines[0].starts_with("hsscan: ") && lines[0].contains(names),
            "{}",
            run.describe()
        );
    }
}

#[test]
fn intolerances_trip_on_size_window_split_records_and_tls13() {
    let mut em = emulator_config("intolerant", "description = \"F5-like\"\n[tls]\nversions = [\"TLSv1.0\", \"TLSv1.2\"]\nciphers = [\"TLS_RSA_WITH_AES_128_CBC_SHA\"]\n\
         [misbehave]\nhello_size_window = [256, 511]\nsplit_records = true\ntls13_supported_versions = true\nintolerance = \"reset\"\n");
    let base = || hello(ProtocolVersion::TLS12, vec![CipherSuite(0x002f), CipherSuite(0x0035)]);
    // Short (under 256 bytes): answered.
    let short = base();
    let record = short.to_record(ProtocolVersion::TLS10).expect("encode");
    assert!(record.len() < 256, "{}", record.len());
    let f = em.exchange(&[record]);
    assert_eq!(f.expect_server_hello().cipher_suite, CipherSuite(0x002f));
    // Padded into the 256–511 window: reset.
    let mut mid = base();
    mid.pad_to(300).expect("pad");
    let record = mid.to_record(ProtocolVersion::TLS10).expect("encode");
    assert_eq!(record.len(), 300);
    let f = em.exchange(&[record]);
    assert!(matches!(f.end, End::Reset) && f.events.is_empty(), "{}", f.describe());
    // Past the window: answered again.
    let mut long = base();
    long.pad_to(600).expect("pad");
    let f = em.exchange(&[long.to_record(ProtocolVersion::TLS10).expect("encode")]);
    assert_eq!(
        f.expect_server_hello().cipher_suite,
        CipherSuite(0x002f),
        "{}",
        f.describe()
    );
    // The short hello split over two records: reset.
    let framing = crate::support::split_framing(&short, ProtocolVersion::TLS10, 40, 1);
    let f = em.exchange(&short.to_writes(&framing).expect("encode"));
    assert!(matches!(f.end, End::Reset) && f.events.is_empty(), "{}", f.describe());
    // supported_versions offering TLS 1.3: reset.
    let all13: Vec<CipherSuite> = vec![CipherSuite(0x1301), CipherSuite(0x002f)];
    let modern = ClientHello::typical(ProtocolVersion::TLS10, ProtocolVersion::TLS13, random(9), all13, None);
    let f = em.exchange(&[modern.to_record(ProtocolVersion::TLS10).expect("encode")]);
    assert!(matches!(f.end, End::Reset) && f.events.is_empty(), "{}", f.describe());
}
