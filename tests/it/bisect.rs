//! Hello intolerance bisection end to end: the CLI against an emulated
//! receiver that drops long hellos names `hello-intolerance` and the
//! property for the headline sender; `--bisect` against real servers
//! (openssl s_server at its defaults, gnutls-serv at NORMAL, tlslite-ng
//! from SSLv3 to TLS 1.2, a Postfix smtpd) finds nothing and says so.

use crate::emulate::emulator_config;
use crate::postfix::Postfix;
use crate::scan_support::{hsscan, EHLO};
use serde_json::Value;

const POSTFIX_DEFAULT: &str = include_str!("../../src/emulate/profiles/postfix-default.toml");

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// hsscan as `sender` against the Postfix-like emulator with `misbehave`
/// (the `[misbehave]` lines of its profile), over STARTTLS.
fn scan_as(name: &str, misbehave: &str, sender: &str) -> (crate::support::Server, crate::scan_support::Run) {
    let toml = format!("{POSTFIX_DEFAULT}\n[misbehave]\n{misbehave}\n");
    let em = emulator_config(name, &toml);
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&[
        &target,
        "--starttls",
        "smtp",
        "--sender",
        sender,
        "--json",
        "--ehlo",
        EHLO,
    ]);
    (em, run)
}

#[test]
fn a_receiver_dropping_hellos_over_512_bytes_names_the_length_for_the_sender() {
    // Truth: the profile drops hellos longer than 512 bytes on the wire;
    // the quick check's modern hello is 512, Postfix 3.7's is 517.
    let (_em, run) = scan_as(
        "max-hello-512",
        "max_hello_bytes = 512\nintolerance = \"reset\"",
        "postfix-3.7-openssl-3.0-may",
    );
    let r = run.record();
    let ctx = run.describe();
    let sender = &r["senders"][0];
    assert_eq!(s(&sender["sender"]), "postfix-3.7-openssl-3.0-may", "{ctx}");
    assert_eq!(s(&sender["outcome"]), "no-tls", "{ctx}");
    assert_eq!(s(&sender["reason"]["kind"]), "hello-intolerance", "{ctx}");
    let detail = s(&sender["reason"]["detail"]);
    assert!(detail.contains("hello-length"), "{detail}");
    assert!(
        detail.contains("a hello of 512 bytes is answered, one of 513 bytes dropped"),
        "{detail}"
    );
    let summary = s(&r["verdict"]["summary"]);
    assert!(
        summary.contains("hello-intolerance") && summary.contains("hello-length"),
        "{summary}"
    );
    let found = r["intolerance"].as_array().expect("intolerance is an array");
    assert_eq!(found.len(), 1, "{ctx}");
    assert_eq!(s(&found[0]["property"]), "hello-length", "{ctx}");
    assert!(r["enumeration"].is_null(), "{ctx}");
    let advice = r["advice"].as_array().expect("advice");
    assert!(
        advice
            .iter()
            .any(|a| s(&a["action"]) == "receiver-change" && s(&a["text"]).contains("drops hellos of some lengths")),
        "{ctx}"
    );
    assert!(
        r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| s(&f["id"]) == "hello-intolerance"),
        "{ctx}"
    );
    println!(
        "max_hello_bytes = 512: {} connections in all; {}",
        r["connections"], found[0]["evidence"]
    );
}

fn no_intolerance(r: &Value, ctx: &str) {
    assert_eq!(r["intolerance"], serde_json::json!([]), "{ctx}");
    let f = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| s(&f["id"]) == "no-intolerance")
        .unwrap_or_else(|| panic!("no no-intolerance finding\n{ctx}"));
    assert!(s(&f["message"]).contains("bisection found no intolerance"), "{ctx}");
    println!("{}: {}", s(&r["target"]["input"]), s(&f["message"]));
}

/// `--bisect` against a real implicit-TLS server: it finds nothing and
/// says so, and (without `--enumerate`) fills no enumeration.
fn bisect_finds_nothing_on(mut server: crate::support::Server) {
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    let run = hsscan(&[&target, "--starttls", "none", "--bisect", "--json"]);
    let r = run.record();
    no_intolerance(&r, &format!("{}\n{}", run.describe(), server.log()));
    assert!(r["enumeration"].is_null());
}

#[test]
fn bisect_finds_nothing_on_openssl_s_server_defaults() {
    bisect_finds_nothing_on(crate::support::openssl_s_server("openssl-s_server-bisect", &[]));
}

#[test]
fn bisect_finds_nothing_on_gnutls_serv_at_normal() {
    bisect_finds_nothing_on(crate::wire_gnutls::gnutls_serv(
        "gnutls-serv-bisect",
        "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1".into(),
    ));
}

#[test]
fn bisect_finds_nothing_on_tlslite_with_sslv3_to_tls12() {
    bisect_finds_nothing_on(crate::wire_tlslite::tls_py(
        "tlslite-bisect",
        "rc4,3des,aes128,aes256,aes128gcm,aes256gcm",
    ));
}

#[test]
fn bisect_finds_nothing_on_postfix_smtpd_and_fills_the_enumeration() {
    let pf = Postfix::start(&[]);
    let target = pf.target();
    let run = hsscan(&[
        &target,
        "--starttls",
        "smtp",
        "--ehlo",
        EHLO,
        "--bisect",
        "--enumerate",
        "--json",
    ]);
    let r = run.record();
    let ctx = format!("{}\n{}", run.describe(), pf.log());
    no_intolerance(&r, &ctx);
    assert_eq!(r["enumeration"]["intolerance"], serde_json::json!([]), "{ctx}");
}

#[test]
fn a_receiver_dropping_post_quantum_shares_gets_a_verified_transport_without_them() {
    // Truth: the profile drops hellos whose key_share carries more than
    // 200 bytes; OpenSSL 3.5's X25519MLKEM768 share is 1,216.
    let (_em, run) = scan_as(
        "max-key-share-200",
        "max_key_share_bytes = 200",
        "postfix-openssl-3.5-may",
    );
    let r = run.record();
    let ctx = run.describe();
    let sender = &r["senders"][0];
    assert_eq!(s(&sender["reason"]["kind"]), "hello-intolerance", "{ctx}");
    assert!(s(&sender["reason"]["detail"]).contains("key-share-size"), "{ctx}");
    assert_eq!(s(&r["intolerance"][0]["property"]), "key-share-size", "{ctx}");
    let advice = r["advice"].as_array().expect("advice");
    let transport = advice
        .iter()
        .find(|a| s(&a["action"]) == "postfix-transport")
        .unwrap_or_else(|| panic!("no transport advice\n{ctx}"));
    let master: Vec<&str> = transport["master_cf"]
        .as_array()
        .expect("master_cf")
        .iter()
        .map(s)
        .collect();
    assert!(
        master
            .iter()
            .any(|l| l.contains("tls_eecdh_auto_curves = X25519 prime256v1 secp384r1")),
        "{master:?}"
    );
    assert_eq!(s(&transport["expect"]), "tls", "{ctx}");
    assert!(s(&transport["verified_by"]).ends_with(": answered"), "{ctx}");
    assert!(
        s(&transport["transport_line"]).starts_with("127.0.0.1 nopq:[127.0.0.1]:"),
        "{ctx}"
    );
    println!(
        "max_key_share_bytes = 200: {} connections in all; {}",
        r["connections"], r["intolerance"][0]["evidence"]
    );
}

/// A receiver that drops every hello offering TLS 1.3 (a middlebox of the
/// TLS 1.3 transition), in front of a real Postfix relay: the relay's own
/// hello is dropped; hsscan, as that relay (`--sender local`), names the
/// intolerance and advises a policy line without TLS 1.3; with that line
/// postmap'd into the relay's smtp_tls_policy_maps, the relay's next hello
/// is answered and it gets past the server flight to its ClientKeyExchange
/// (the emulator completes no handshake: that is as far as TLS goes here).
#[test]
fn a_tls13_intolerant_receiver_gets_a_policy_line_that_a_real_relay_gets_past() {
    use crate::bulk::{emulator_connections, full_log};
    let toml = format!("{POSTFIX_DEFAULT}\n[misbehave]\ntls13_supported_versions = true\nintolerance = \"reset\"\n");
    let em = crate::emulate::emulator_with(vec![
        "emulate".into(),
        "--json".into(),
        "--config".into(),
        crate::emulate::profile_file("tls13-intolerant", &toml)
            .display()
            .to_string(),
    ]);
    let nexthop = format!("[127.0.0.1]:{}", em.port);
    let (relay, r) = relay_scanned_as_local(&em);
    let conf = relay.conf_dir();
    let sender = &r["senders"][0];
    assert_eq!(s(&sender["outcome"]), "no-tls", "{r:#}");
    assert_eq!(s(&sender["reason"]["kind"]), "hello-intolerance", "{r:#}");
    let line = r["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-policy"))
        .and_then(|x| x["policy_line"].as_str())
        .unwrap_or_else(|| panic!("no policy line: {r:#}"))
        .to_owned();
    assert!(line.starts_with(&nexthop), "{line}");
    println!("advised: {line}; reason: {}", s(&sender["reason"]["detail"]));

    // Accepted: the emulator's record of a connection whose client got as
    // far as its ClientKeyExchange.
    let accepted = |em: &crate::support::Server| {
        emulator_connections(&full_log(em, "hsscan-emulate"))
            .iter()
            .filter(|c| c["client_reply"]["result"] == "accepted")
            .count()
    };
    crate::emulate_postfix::submit(&relay);
    let before = relay.log_when(|l| l.contains("status=") && l.contains("relay="));
    assert_eq!(
        accepted(&em),
        0,
        "the relay got past the flight before the advice?\n{before}"
    );
    assert!(
        before.contains("Cannot start TLS"),
        "the relay's TLS attempt should fail:\n{before}"
    );

    let table = conf.join("tls_policy");
    std::fs::write(&table, format!("{line}\n")).expect("write tls_policy");
    relay.postmap(&table);
    relay.reconfigure(&[("smtp_tls_policy_maps", &format!("hash:{}", table.display()))]);
    crate::emulate_postfix::submit(&relay);
    let start = std::time::Instant::now();
    while accepted(&em) == 0 && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        accepted(&em) >= 1,
        "no ClientKeyExchange after the advised line {line:?}:\n{}\n{}",
        relay.log(),
        em.log()
    );
}

/// Whether one of a transport advice's master.cf lines contains `needle`.
fn has_master_line(transport: &Value, needle: &str) -> bool {
    transport["master_cf"]
        .as_array()
        .is_some_and(|m| m.iter().any(|l| s(l).contains(needle)))
}

/// The emulator playing `toml`, logging every connection (`--json`).
fn logged_emulator(name: &str, toml: &str) -> crate::support::Server {
    crate::emulate::emulator_with(vec![
        "emulate".into(),
        "--json".into(),
        "--config".into(),
        crate::emulate::profile_file(name, toml).display().to_string(),
    ])
}

/// The emulator's connection records so far, in order.
fn connections(em: &crate::support::Server) -> Vec<Value> {
    use crate::bulk::{emulator_connections, full_log};
    emulator_connections(&full_log(em, "hsscan-emulate"))
}

/// Whether one of `cs` had its hello answered: a ServerHello (and, at TLS
/// 1.2, the client's ClientKeyExchange after the flight; the emulator
/// completes no handshake, and at TLS 1.3 sends nothing after its
/// ServerHello: that is as far as TLS goes here).
fn any_answered(cs: &[Value]) -> bool {
    cs.iter()
        .any(|c| c["client_reply"]["result"] == "accepted" || s(&c["outcome"]).starts_with("answered"))
}

/// The recipient domain of [`crate::emulate_postfix::submit`].
const PARTNER: &str = "partner.test.example";

/// Applies a postfix-transport advice to `relay` as an admin would: its
/// master.cf lines appended, its transport line postmap'd into
/// transport_maps for the partner domain (a host scan knows no recipient
/// domain, so the line's key is the host, and a relay routes by domain).
fn apply_transport(relay: &Postfix, transport: &Value) {
    let conf = relay.conf_dir();
    let line = s(&transport["transport_line"]);
    let (_, route) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("transport line {line:?}"));
    let master = conf.join("master.cf");
    let mut text = std::fs::read_to_string(&master).expect("read master.cf");
    for l in transport["master_cf"].as_array().expect("master_cf") {
        text.push_str(s(l));
        text.push('\n');
    }
    crate::support::write_postfix_file(&master, &text);
    let table = conf.join("transport");
    std::fs::write(&table, format!("{PARTNER} {route}\n")).expect("write transport");
    relay.postmap(&table);
    relay.reconfigure(&[("transport_maps", &format!("hash:{}", table.display()))]);
}

/// A real Postfix relay (`may`, TLS logged) whose relayhost is `em`.
fn relay_to(em: &crate::support::Server) -> Postfix {
    let nexthop = format!("[127.0.0.1]:{}", em.port);
    Postfix::start_relay(&[
        ("relayhost", &nexthop),
        ("mynetworks", "127.0.0.0/8"),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_loglevel", "1"),
    ])
}

/// [`relay_to`] `em`, and the record of hsscan scanning `em` as that
/// relay (`--sender local`).
fn relay_scanned_as_local(em: &crate::support::Server) -> (Postfix, Value) {
    let relay = relay_to(em);
    let conf = relay.conf_dir();
    let out = crate::enum_support::run(
        std::path::Path::new(env!("CARGO_BIN_EXE_hsscan")),
        &[
            format!("127.0.0.1:{}", em.port),
            "--starttls".into(),
            "smtp".into(),
            "--json".into(),
            "--sender".into(),
            "local".into(),
        ],
        &[("MAIL_CONFIG", conf.to_str().unwrap_or("/tmp"))],
        crate::enum_support::TOOL_LIMIT,
    );
    let r: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", out.stdout, out.stderr));
    (relay, r)
}

/// A real Postfix relay (`may`) sends one message to `em` and fails to
/// start TLS; hsscan as that relay (`--sender local`) scans `em`; the
/// postfix-transport advice of the record is applied to the relay as an
/// admin would (its master.cf lines appended, its transport line postmap'd
/// into transport_maps for the partner domain: a host scan knows no
/// recipient domain, so the line's key is the host, and a relay routes by
/// domain); the relay's next message gets past the server flight.
/// Returns the record and the transport advice.
fn the_advised_transport_gets_a_real_relay_past(em: &crate::support::Server) -> (Value, Value) {
    let nexthop = format!("[127.0.0.1]:{}", em.port);
    let (relay, r) = relay_scanned_as_local(em);
    let transport = r["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-transport"))
        .cloned()
        .unwrap_or_else(|| panic!("no transport advice: {r:#}"));
    assert_eq!(s(&transport["expect"]), "tls", "{r:#}");
    assert!(s(&transport["verified_by"]).ends_with(": answered"), "{r:#}");
    let line = s(&transport["transport_line"]).to_owned();
    let (key, route) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("transport line {line:?}"));
    assert_eq!(key, "127.0.0.1", "{line}");
    assert_eq!(
        route,
        format!("{}:{nexthop}", route.split(':').next().unwrap_or("")),
        "{line}"
    );
    println!(
        "advised for {}: {}\n  {line}\n  verified by {}",
        s(&r["senders"][0]["reason"]["kind"]),
        transport["master_cf"],
        s(&transport["verified_by"])
    );

    let scanned = connections(em).len();
    crate::emulate_postfix::submit(&relay);
    let before = relay.log_when(|l| l.contains("status=") && l.contains("relay="));
    let first = connections(em);
    assert!(
        !any_answered(first.get(scanned..).unwrap_or(&[])),
        "the relay's hello was answered before the advice?\n{before}"
    );
    assert!(
        before.contains("Cannot start TLS"),
        "the relay's TLS attempt should fail:\n{before}"
    );

    apply_transport(&relay, &transport);
    let tried = connections(em).len();
    crate::emulate_postfix::submit(&relay);
    let start = std::time::Instant::now();
    let answered = || any_answered(connections(em).get(tried..).unwrap_or(&[]));
    while !answered() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        answered(),
        "the relay's hello through the advised transport {line:?} was not answered:\n{}\n{}",
        relay.log(),
        em.log()
    );
    (r, transport)
}

/// A receiver that reads only the first 64 suites (Windows Server 2003
/// Schannel) and has one suite, AES128-SHA, which Debian's Postfix offers
/// 85th: the relay is refused with handshake_failure. hsscan names
/// `suite-position` although the refusal reads "no shared cipher" (the
/// quick check was answered with that suite), and the advised transport
/// with a short cipher list gets the real relay past the server flight.
#[test]
fn a_receiver_reading_64_suites_gets_a_transport_that_a_real_relay_gets_past() {
    let toml = r#"
description = "A Windows Server 2003-like receiver: reads only the first 64 suites, has AES128-SHA only"
facts = "test profile: suite window of Windows Server 2003 Schannel"
[smtp]
hostname = "mx.emulated.test"
banner = "220 {hostname} Microsoft ESMTP MAIL Service ready"
extensions = ["SIZE 37748736", "PIPELINING", "8BITMIME"]
starttls = "offer"
[tls]
versions = ["TLSv1.0", "TLSv1.1", "TLSv1.2"]
preference = "server"
groups = ["secp256r1"]
dh_bits = 2048
features = ["secure_renegotiation"]
version_mismatch = "alert:protocol_version"
no_shared_cipher = "alert:handshake_failure"
ciphers = ["TLS_RSA_WITH_AES_128_CBC_SHA"]
[misbehave]
suite_window = 64
"#;
    let em = logged_emulator("suite-window-64", toml);
    let (r, transport) = the_advised_transport_gets_a_real_relay_past(&em);
    let sender = &r["senders"][0];
    assert_eq!(s(&sender["outcome"]), "no-tls", "{r:#}");
    assert_eq!(s(&sender["reason"]["kind"]), "hello-intolerance", "{r:#}");
    let detail = s(&sender["reason"]["detail"]);
    assert!(detail.contains("suite-position"), "{detail}");
    assert!(detail.contains("the server reads only the first 64 suites"), "{detail}");
    assert!(
        detail.contains("86 suites") && !detail.contains("87 suites"),
        "{detail}"
    );
    assert_eq!(s(&r["intolerance"][0]["property"]), "suite-position", "{r:#}");
    assert!(
        has_master_line(&transport, "tls_medium_cipherlist = AES128-SHA:"),
        "{transport:#}"
    );
    // The advice for "no shared cipher" is gone with that reason.
    assert!(
        r["advice"]
            .as_array()
            .expect("advice")
            .iter()
            .all(|a| s(&a["action"]) != "no-tls-possible"),
        "{r:#}"
    );
}

/// A receiver that drops hellos over 512 bytes: Postfix pads its 405-byte
/// hello to 517 (SSL_OP_TLSEXT_PADDING, on with Postfix's SSL_OP_ALL), so
/// the relay is dropped; the advised transport without that padding gets
/// it past the server flight.
#[test]
fn a_receiver_dropping_hellos_over_512_bytes_gets_a_transport_without_padding_that_a_real_relay_gets_past() {
    let toml = format!("{POSTFIX_DEFAULT}\n[misbehave]\nmax_hello_bytes = 512\nintolerance = \"reset\"\n");
    let em = logged_emulator("max-hello-512-relay", &toml);
    let (r, transport) = the_advised_transport_gets_a_real_relay_past(&em);
    assert_eq!(s(&r["senders"][0]["reason"]["kind"]), "hello-intolerance", "{r:#}");
    assert_eq!(s(&r["intolerance"][0]["property"]), "hello-length", "{r:#}");
    assert_eq!(
        transport["master_cf"][1], "  -o tls_disable_workarounds=TLSEXT_PADDING",
        "{transport:#}"
    );
    assert!(s(&transport["verified_by"]).contains("(405 bytes"), "{transport:#}");
}

/// A receiver that drops every hello over 300 bytes drops every hello of
/// the quick check and the sender's: the small hello (about 200 bytes) is
/// answered, the bisection runs from it, the reason becomes
/// `hello-intolerance` with the length's edges, and the advised transport
/// (a short cipher list) gets the real relay past the server flight.
#[test]
fn a_receiver_dropping_every_hello_over_300_bytes_is_bisected_from_a_small_hello() {
    let toml = format!("{POSTFIX_DEFAULT}\n[misbehave]\nmax_hello_bytes = 300\nintolerance = \"reset\"\n");
    let em = logged_emulator("max-hello-300", &toml);
    let (r, transport) = the_advised_transport_gets_a_real_relay_past(&em);
    let sender = &r["senders"][0];
    assert_eq!(s(&sender["reason"]["kind"]), "hello-intolerance", "{r:#}");
    let detail = s(&sender["reason"]["detail"]);
    assert!(detail.contains("answers a small one"), "{detail}");
    assert!(
        detail.contains("a hello of 300 bytes is answered, one of 301 bytes dropped"),
        "{detail}"
    );
    assert_eq!(s(&r["intolerance"][0]["property"]), "hello-length", "{r:#}");
    assert!(has_master_line(&transport, "tls_medium_cipherlist = "), "{transport:#}");
    println!("max_hello_bytes = 300: {} connections in all", r["connections"]);
}

/// The post-quantum advice on a real Postfix. This machine's Postfix
/// (OpenSSL 3.0) sends no post-quantum share, so a receiver that drops
/// them cannot break it; what a real relay shows is that the advised
/// transport is one Postfix runs, and that through it the relay's hello
/// lists exactly the groups the advice names (no hybrid) and is answered:
/// the hello hsscan verified, the OpenSSL 3.5 sender's without its hybrid.
#[test]
fn the_post_quantum_transport_runs_on_a_real_relay_with_exactly_the_advised_groups() {
    let toml = format!("{POSTFIX_DEFAULT}\n[misbehave]\nmax_key_share_bytes = 200\n");
    let em = logged_emulator("max-key-share-200-relay", &toml);
    let run = hsscan(&[
        &format!("127.0.0.1:{}", em.port),
        "--starttls",
        "smtp",
        "--sender",
        "postfix-openssl-3.5-may",
        "--json",
        "--ehlo",
        EHLO,
    ]);
    let r = run.record();
    let ctx = run.describe();
    assert_eq!(s(&r["intolerance"][0]["property"]), "key-share-size", "{ctx}");
    let transport = r["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-transport"))
        .cloned()
        .unwrap_or_else(|| panic!("no transport advice\n{ctx}"));
    assert!(s(&transport["verified_by"]).ends_with(": answered"), "{ctx}");
    let relay = relay_to(&em);
    apply_transport(&relay, &transport);
    let tried = connections(&em).len();
    crate::emulate_postfix::submit(&relay);
    let start = std::time::Instant::now();
    let through = || {
        connections(&em)
            .get(tried..)
            .unwrap_or(&[])
            .iter()
            .find(|c| s(&c["outcome"]).starts_with("answered"))
            .cloned()
    };
    while through().is_none() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let c = through().unwrap_or_else(|| panic!("the relay's hello was not answered:\n{}\n{}", relay.log(), em.log()));
    assert_eq!(
        c["hellos"][0]["groups"],
        serde_json::json!(["X25519", "secp256r1", "secp384r1"]),
        "{c:#}"
    );
    assert_eq!(c["hellos"][0]["key_shares"], serde_json::json!(["X25519"]), "{c:#}");
}

/// A receiver that drops every hello carrying the session_ticket
/// extension, which Debian's Postfix sends: hsscan names the extension
/// and advises a transport with `tls_ssl_options = NO_TICKET`, which the
/// real relay gets past (TLS 1.3 kept: the fix is only the extension).
#[test]
fn a_receiver_dropping_session_tickets_gets_a_transport_without_them_that_a_real_relay_gets_past() {
    let toml =
        format!("{POSTFIX_DEFAULT}\n[misbehave]\ndrop_extension = \"session_ticket\"\nintolerance = \"reset\"\n");
    let em = logged_emulator("drop-session-ticket", &toml);
    let (r, transport) = the_advised_transport_gets_a_real_relay_past(&em);
    let sender = &r["senders"][0];
    assert_eq!(s(&sender["reason"]["kind"]), "hello-intolerance", "{r:#}");
    assert!(s(&sender["reason"]["detail"]).contains("session_ticket"), "{r:#}");
    assert_eq!(s(&r["intolerance"][0]["property"]), "extension", "{r:#}");
    assert_eq!(
        transport["master_cf"][1], "  -o tls_ssl_options=NO_TICKET",
        "{transport:#}"
    );
}
