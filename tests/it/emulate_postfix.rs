//! A Postfix smtp client delivering to `hsscan emulate --profile
//! exchange2007`: the emulator's log shows the ClientHello Postfix really
//! sends, decoded.
//!
//! A throwaway Postfix ([`Postfix::start_relay`]) relays everything to the
//! emulator on 127.0.0.1 with opportunistic TLS (`may`), as Debian's
//! main.cf configures it. The test submits one message to Postfix's smtpd
//! over plain SMTP, waits for the emulator's JSON record of the delivery
//! attempt, and checks the decoded hello against the reference capture of
//! the same client settings (`tests/data/postfix-3.7-openssl-3.0.19-may.hex`,
//! made with `openssl s_client` and Postfix's cipher and group lists; see
//! /work/shared/data/README.md). The truth side of the comparison is decoded
//! here by hand, not by the wire crate under test.
//!
//! What the real Postfix sends differs from the capture in two ways, both
//! from how Postfix sets up OpenSSL (`tls_client_init()` in Postfix's
//! `src/tls/tls_client.c`), and both reproduced with `openssl s_client`:
//! - it sets the client's OpenSSL security level to 0 ("backwards
//!   compatible security as a base for opportunistic TLS"; only the
//!   verifying levels raise it to 1 per session), so the anonymous suites
//!   of its `aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH` list stay in the
//!   hello: 12 ADH/AECDH suites on top of the capture's 75 (s_client gives
//!   the same 87 with `@SECLEVEL=0` appended to the cipher list);
//! - it sets `SSL_OP_ALL` (`tls_bug_bits()`), which includes
//!   `SSL_OP_TLSEXT_PADDING`: a hello of 256 to 511 bytes gets a `padding`
//!   extension up to 512 (s_client does the same with `-bugs`).
//!
//! The rest (suite order, versions, groups, key share, extension order,
//! no SNI) is the capture's. Exchange 2007's Schannel (RC4, 3DES, DES and
//! export suites, SSLv3 and TLS 1.0) shares no suite with that hello, and
//! reads only its first 64 suites: the emulator answers TLS 1.0 with a
//! handshake_failure alert, and Postfix defers the mail with "Cannot start
//! TLS: handshake failure".

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postfix::{Postfix, HOSTNAME};
use crate::support::{certs, Server, CONNECT_WINDOW, READ_TIMEOUT};

/// The ClientHello record of Postfix 3.7 on OpenSSL 3.0.19 at Debian's
/// defaults, in hex.
const CAPTURE: &str = include_str!("../data/postfix-3.7-openssl-3.0.19-may.hex");

/// How long the test waits for Postfix's delivery attempt to show up in
/// the emulator's log (qmgr hands the message to smtp at once; this only
/// bounds a hang).
const DELIVERY_WINDOW: Duration = Duration::from_secs(30);

const EMULATOR: &str = "emulate-exchange2007";

/// The profile the emulator plays, read for its suites.
const PROFILE: &str = "src/emulate/profiles/exchange2007.toml";

/// The anonymous suites Postfix adds to the capture's list (OpenSSL
/// security level 0), in the order they appear in its hello.
const ANONYMOUS: [&str; 12] = [
    "TLS_DH_anon_WITH_AES_256_GCM_SHA384",
    "TLS_DH_anon_WITH_AES_256_CBC_SHA256",
    "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256",
    "TLS_ECDH_anon_WITH_AES_256_CBC_SHA",
    "TLS_DH_anon_WITH_AES_256_CBC_SHA",
    "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA",
    "TLS_DH_anon_WITH_AES_128_GCM_SHA256",
    "TLS_DH_anon_WITH_AES_128_CBC_SHA256",
    "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",
    "TLS_DH_anon_WITH_AES_128_CBC_SHA",
    "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA",
];

/// How many suites Windows Server 2003 Schannel reads (the profile's
/// `suite_window`).
const SUITE_WINDOW: usize = 64;

/// How many times the emulator is restarted on another port when the free
/// port was taken before it could bind.
const PORT_ATTEMPTS: usize = 3;

/// The fields of a ClientHello record that do not change between
/// connections, read byte by byte.
#[derive(Debug)]
struct CapturedHello {
    legacy_version: u16,
    session_id_len: usize,
    suites: Vec<u16>,
    compression: Vec<u8>,
    extensions: Vec<u16>,
    supported_versions: Vec<u16>,
    groups: Vec<u16>,
    key_shares: Vec<u16>,
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len() % 2 == 0, "odd number of hex digits in the capture");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("hex at {i}: {e}")))
        .collect()
}

/// A cursor over a byte slice that panics (failing the test) on a short read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = self
            .bytes
            .get(self.at..self.at + n)
            .unwrap_or_else(|| panic!("capture too short: {n} bytes wanted at {}", self.at));
        self.at += n;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_be_bytes([b[0], b[1]])
    }
    fn u24(&mut self) -> usize {
        let b = self.take(3);
        usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
    }
    fn u16s(bytes: &[u8]) -> Vec<u16> {
        bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }
    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Walks the capture: 5-byte record header, 4-byte handshake header,
/// version, random, session id, suites, compression, extensions.
fn captured_hello() -> CapturedHello {
    let record = unhex(CAPTURE);
    let mut r = Cursor::new(&record);
    assert_eq!(r.u8(), 22, "capture: not a handshake record");
    let _record_version = r.u16();
    let record_len = usize::from(r.u16());
    let body = r.take(record_len);
    assert!(r.done(), "capture: bytes after the record");
    let mut h = Cursor::new(body);
    assert_eq!(h.u8(), 1, "capture: not a ClientHello");
    let len = h.u24();
    let hello = h.take(len);
    assert!(h.done(), "capture: the hello spans more than one record");
    let mut c = Cursor::new(hello);
    let legacy_version = c.u16();
    c.take(32);
    let sid = usize::from(c.u8());
    c.take(sid);
    let n = usize::from(c.u16());
    let suites = Cursor::u16s(c.take(n));
    let n = usize::from(c.u8());
    let compression = c.take(n).to_vec();
    let n = usize::from(c.u16());
    let mut e = Cursor::new(c.take(n));
    assert!(c.done(), "capture: bytes after the extensions");
    let mut captured = CapturedHello {
        legacy_version,
        session_id_len: sid,
        suites,
        compression,
        extensions: Vec::new(),
        supported_versions: Vec::new(),
        groups: Vec::new(),
        key_shares: Vec::new(),
    };
    while !e.done() {
        let typ = e.u16();
        let n = usize::from(e.u16());
        let data = e.take(n);
        captured.extensions.push(typ);
        let mut d = Cursor::new(data);
        match typ {
            // supported_groups: u16 length, groups.
            10 => {
                let n = usize::from(d.u16());
                captured.groups = Cursor::u16s(d.take(n));
            }
            // supported_versions (client): u8 length, versions.
            43 => {
                let n = usize::from(d.u8());
                captured.supported_versions = Cursor::u16s(d.take(n));
            }
            // key_share (client): u16 length, then group, u16 length, key.
            51 => {
                let n = usize::from(d.u16());
                let mut k = Cursor::new(d.take(n));
                while !k.done() {
                    captured.key_shares.push(k.u16());
                    let n = usize::from(k.u16());
                    k.take(n);
                }
            }
            _ => {}
        }
    }
    captured
}

/// The catalog's name of a suite id, as the emulator logs it.
fn suite_name(id: u16) -> String {
    hsscan_wire::catalog::suite(hsscan_wire::CipherSuite(id))
        .unwrap_or_else(|| panic!("suite 0x{id:04x} of the capture is not in the catalog"))
        .name
        .to_owned()
}

/// The id of a suite name the emulator logged.
fn suite_id(name: &str) -> u16 {
    hsscan_wire::catalog::suite_by_name(name)
        .unwrap_or_else(|| panic!("the emulator logged suite {name}, unknown to the catalog"))
        .id
        .0
}

/// The emulator's log file. `support::spawn` names it `{name}-{port}.log`
/// in the certificate directory; the whole file is needed (not the tail of
/// `Server::log`) because one JSON record is several kilobytes.
fn emulator_log_path(server: &Server) -> PathBuf {
    certs().join(format!("{EMULATOR}-{}.log", server.port))
}

fn read_log(server: &Server) -> String {
    fs::read_to_string(emulator_log_path(server)).unwrap_or_default()
}

/// Starts the emulator and waits for its start line, without connecting
/// (a probe connection would be a record of its own).
fn start_emulator() -> Server {
    let program = PathBuf::from(env!("CARGO_BIN_EXE_hsscan"));
    for _ in 0..PORT_ATTEMPTS {
        let server = Server::start_program(EMULATOR, program.clone(), |port| {
            [
                "emulate",
                "--profile",
                "exchange2007",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--json",
            ]
            .map(str::to_owned)
            .to_vec()
        });
        let begun = Instant::now();
        loop {
            let log = read_log(&server);
            if log.contains("hsscan emulate: profile exchange2007 on 127.0.0.1:") {
                return server;
            }
            if log.contains("Address already in use") {
                break;
            }
            assert!(
                !log.contains("Error"),
                "the emulator failed to start:\n{}\n(log file {})",
                server.log(),
                emulator_log_path(&server).display()
            );
            assert!(
                begun.elapsed() < CONNECT_WINDOW,
                "no start line from the emulator within {CONNECT_WINDOW:?}:\n{}\n(log file {}; does support::spawn still name it {{name}}-{{port}}.log?)",
                server.log(),
                emulator_log_path(&server).display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("the emulator found its port taken {PORT_ATTEMPTS} times");
}

/// The emulator's complete JSON connection records so far.
fn connection_records(server: &Server) -> Vec<Value> {
    let log = read_log(server);
    // Only whole lines: the last one may still be being written.
    let whole = log.rfind('\n').map_or("", |end| &log[..end]);
    whole
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("emulator JSON line {l:?}: {e}")))
        .filter(|v| v["record"] == "connection")
        .collect()
}

/// One SMTP client reply: all its lines, the code checked.
fn reply(r: &mut BufReader<TcpStream>, want: &str, dialog: &mut Vec<String>) -> String {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading Postfix's reply: {e}\n{}", dialog.join("\n")));
        assert!(n > 0, "Postfix closed the connection:\n{}", dialog.join("\n"));
        dialog.push(format!("S: {}", line.trim_end()));
        text.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    assert!(
        text.starts_with(want),
        "expected {want} from Postfix, got:\n{}",
        dialog.join("\n")
    );
    text
}

/// Sends one command (or the message) to Postfix.
fn send(w: &mut TcpStream, dialog: &mut Vec<String>, text: &str) {
    dialog.push(format!("C: {}", text.trim_end()));
    w.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("writing to Postfix: {e}\n{}", dialog.join("\n")));
}

/// Submits one message to Postfix's smtpd and returns the dialog.
pub(crate) fn submit(pf: &Postfix) -> Vec<String> {
    let addr = SocketAddr::from((pf.ip, pf.port));
    let stream = TcpStream::connect_timeout(&addr, CONNECT_WINDOW)
        .unwrap_or_else(|e| panic!("connect to Postfix at {addr}: {e}\n{}", pf.log()));
    stream.set_read_timeout(Some(READ_TIMEOUT)).expect("set_read_timeout");
    stream.set_write_timeout(Some(READ_TIMEOUT)).expect("set_write_timeout");
    let mut w = stream.try_clone().expect("clone stream");
    let mut r = BufReader::new(stream);
    let mut dialog = Vec::new();
    reply(&mut r, "220 ", &mut dialog);
    for (cmd, want) in [
        ("EHLO client.test.example\r\n", "250"),
        ("MAIL FROM:<a@test.example>\r\n", "250"),
        ("RCPT TO:<b@partner.test.example>\r\n", "250"),
        ("DATA\r\n", "354"),
        (
            "From: <a@test.example>\r\nTo: <b@partner.test.example>\r\nSubject: hsscan emulate test\r\n\r\nA message for the exchange2007 emulator.\r\n.\r\n",
            "250",
        ),
        ("QUIT\r\n", "221"),
    ] {
        send(&mut w, &mut dialog, cmd);
        reply(&mut r, want, &mut dialog);
    }
    dialog
}

/// Names of the registry values found in the capture, as the emulator
/// writes them (RFC 8446, RFC 8422, RFC 7685, RFC 7366, RFC 7627).
fn version_name(v: u16) -> &'static str {
    match v {
        0x0300 => "SSLv3",
        0x0301 => "TLSv1.0",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        _ => panic!("capture: unexpected version 0x{v:04x}"),
    }
}

fn group_name(g: u16) -> &'static str {
    match g {
        0x0017 => "secp256r1",
        0x0018 => "secp384r1",
        0x0019 => "secp521r1",
        0x001d => "X25519",
        0x001e => "X448",
        _ => panic!("capture: unexpected group 0x{g:04x}"),
    }
}

fn extension_name(e: u16) -> &'static str {
    match e {
        0 => "server_name",
        10 => "supported_groups",
        11 => "ec_point_formats",
        13 => "signature_algorithms",
        21 => "padding",
        22 => "encrypt_then_mac",
        23 => "extended_master_secret",
        35 => "session_ticket",
        43 => "supported_versions",
        45 => "psk_key_exchange_modes",
        51 => "key_share",
        _ => panic!("capture: unexpected extension {e}"),
    }
}

/// The suites of the emulated profile, as ids.
fn profile_suites() -> Vec<u16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PROFILE);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let profile: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    profile["tls"]["ciphers"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no [tls] ciphers", path.display()))
        .iter()
        .map(|v| suite_id(v.as_str().expect("a suite name")))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {s}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn postfix_delivery_to_exchange2007_logs_its_client_hello() {
    let begun = Instant::now();
    let truth = captured_hello();
    let emulator = start_emulator();
    let relayhost = format!("[127.0.0.1]:{}", emulator.port);
    let pf = Postfix::start_relay(&[
        ("relayhost", &relayhost),
        ("mynetworks", "127.0.0.0/8"),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_loglevel", "1"),
    ]);
    let dialog = submit(&pf);

    // The delivery attempt that sent a ClientHello.
    let start = Instant::now();
    let record = loop {
        if let Some(r) = connection_records(&emulator)
            .into_iter()
            .find(|r| r["hellos"].as_array().is_some_and(|h| !h.is_empty()))
        {
            break r;
        }
        assert!(
            start.elapsed() < DELIVERY_WINDOW,
            "no ClientHello in the emulator's log within {DELIVERY_WINDOW:?}\n--- submission ---\n{}\n{}\n{}",
            dialog.join("\n"),
            emulator.log(),
            pf.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "emulator record of Postfix's delivery attempt:\n{}",
        serde_json::to_string_pretty(&record).unwrap_or_default()
    );
    let ctx = format!(
        "--- emulator record ---\n{}\n{}",
        serde_json::to_string_pretty(&record).unwrap_or_default(),
        pf.log()
    );

    // The SMTP dialog: Postfix's EHLO with its myhostname, then STARTTLS.
    let smtp = strings(&record["smtp"]);
    assert_eq!(
        smtp.first().map(String::as_str),
        Some(format!("< EHLO {HOSTNAME}").as_str()),
        "{ctx}"
    );
    assert!(
        smtp.iter().any(|l| l == "> 250 STARTTLS"),
        "STARTTLS not offered\n{ctx}"
    );
    let starttls = smtp
        .iter()
        .position(|l| l == "< STARTTLS")
        .unwrap_or_else(|| panic!("Postfix sent no STARTTLS\n{ctx}"));
    assert!(
        smtp.get(starttls + 1).is_some_and(|l| l.starts_with("> 220 ")),
        "no 220 after STARTTLS\n{ctx}"
    );
    assert!(
        !smtp[..starttls].iter().any(|l| l.starts_with("< MAIL")),
        "Postfix sent MAIL before STARTTLS\n{ctx}"
    );

    // The decoded hello against the capture.
    let hellos = record["hellos"].as_array().expect("hellos");
    assert_eq!(hellos.len(), 1, "one hello, no retry\n{ctx}");
    let hello = &hellos[0];
    assert_eq!(hello["format"], "tls", "{ctx}");
    assert_eq!(hello["records"], 1, "{ctx}");
    assert_eq!(hello["legacy_version"], version_name(truth.legacy_version), "{ctx}");
    assert_eq!(hello["legacy_version"], "TLSv1.2", "{ctx}");
    assert_eq!(
        truth.session_id_len, 32,
        "capture: OpenSSL 3.0 sends a 32-byte session id"
    );
    assert_eq!(
        strings(&hello["versions"]),
        truth
            .supported_versions
            .iter()
            .map(|v| version_name(*v))
            .collect::<Vec<_>>(),
        "{ctx}"
    );
    assert_eq!(
        strings(&hello["versions"]).first().map(String::as_str),
        Some("TLSv1.3"),
        "{ctx}"
    );
    assert!(hello["sni"].is_null(), "Postfix at `may` sends no SNI\n{ctx}");
    assert_eq!(
        strings(&hello["groups"]),
        truth.groups.iter().map(|g| group_name(*g)).collect::<Vec<_>>(),
        "{ctx}"
    );
    assert_eq!(
        strings(&hello["key_shares"]),
        truth.key_shares.iter().map(|g| group_name(*g)).collect::<Vec<_>>(),
        "{ctx}"
    );
    let compression: Vec<u64> = hello["compression"]
        .as_array()
        .expect("compression")
        .iter()
        .map(|c| c.as_u64().expect("a method"))
        .collect();
    assert_eq!(
        compression,
        truth.compression.iter().map(|c| u64::from(*c)).collect::<Vec<_>>(),
        "{ctx}"
    );
    // SSL_OP_ALL: the capture's extensions, then padding to 512 bytes.
    let mut want_extensions: Vec<&str> = truth.extensions.iter().map(|e| extension_name(*e)).collect();
    want_extensions.push("padding");
    assert_eq!(strings(&hello["extensions"]), want_extensions, "{ctx}");
    assert_eq!(hello["bytes"], 5 + 512, "a padded hello is 512 bytes\n{ctx}");

    // The suites: the capture's, in its order, plus the anonymous ones.
    let offered: Vec<u16> = strings(&hello["cipher_suites"]).iter().map(|n| suite_id(n)).collect();
    let anonymous: Vec<u16> = ANONYMOUS.iter().map(|n| suite_id(n)).collect();
    assert!(
        !truth.suites.iter().any(|s| anonymous.contains(s)),
        "the capture (security level 1) has no anonymous suite"
    );
    let named = |ids: &[u16]| ids.iter().map(|id| suite_name(*id)).collect::<Vec<_>>();
    let without_anonymous: Vec<u16> = offered.iter().copied().filter(|s| !anonymous.contains(s)).collect();
    assert_eq!(
        named(&without_anonymous),
        named(&truth.suites),
        "Postfix's suites, anonymous ones left out, differ from the capture's\n{ctx}"
    );
    let anonymous_offered: Vec<u16> = offered.iter().copied().filter(|s| anonymous.contains(s)).collect();
    assert_eq!(
        named(&anonymous_offered),
        named(&anonymous),
        "Postfix (OpenSSL security level 0) adds these anonymous suites\n{ctx}"
    );
    assert_eq!(offered.len(), truth.suites.len() + ANONYMOUS.len(), "{ctx}");
    assert!(offered.len() > SUITE_WINDOW, "{ctx}");

    // The answer: Exchange 2007 shares no suite with Postfix on OpenSSL 3.0.
    let ours = profile_suites();
    let shared: Vec<String> = named(&offered.iter().copied().filter(|s| ours.contains(s)).collect::<Vec<_>>());
    assert!(
        shared.is_empty(),
        "{PROFILE} now shares {shared:?} with Postfix: the answer should be a TLS 1.0 ServerHello with the first \
         of them in the profile's order, and this test should say so\n{ctx}"
    );
    let answer = &hello["answer"];
    assert_eq!(answer["version"], "TLSv1.0", "the highest version both speak\n{ctx}");
    assert!(
        answer["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("alert handshake_failure")),
        "expected a handshake_failure alert\n{ctx}"
    );
    assert!(answer["cipher"].is_null(), "{ctx}");
    assert!(
        answer["why"]
            .as_str()
            .is_some_and(|w| w.contains("no shared cipher suite")),
        "{ctx}"
    );

    // Postfix's own log: the alert, and the mail deferred for it.
    let port = emulator.port;
    let deferred = "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)";
    let log = pf.log_when(|l| l.contains(deferred));
    assert!(
        log.contains(&format!("SSL_connect error to 127.0.0.1[127.0.0.1]:{port}")),
        "{log}"
    );
    assert!(log.contains("sslv3 alert handshake failure"), "{log}");
    assert!(log.contains("SSL alert number 40"), "{log}");
    assert!(
        log.lines().any(|l| l.contains("to=<b@partner.test.example>")
            && l.contains(&format!("relay=127.0.0.1[127.0.0.1]:{port}"))
            && l.contains(deferred)),
        "{log}"
    );
    println!("took {:?}", begun.elapsed());
}
