//! Hello intolerance bisection end to end: the CLI against an emulated
//! receiver that drops long hellos names `hello-intolerance` and the
//! property for the headline sender; `--bisect` against real servers
//! (openssl s_server at its defaults, a Postfix smtpd) finds nothing and
//! says so.

use crate::emulate::emulator_config;
use crate::postfix::Postfix;
use crate::scan_support::{hsscan, EHLO};
use serde_json::Value;

const POSTFIX_DEFAULT: &str = include_str!("../../src/emulate/profiles/postfix-default.toml");

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[test]
fn a_receiver_dropping_hellos_over_512_bytes_names_the_length_for_the_sender() {
    // Truth: the profile drops hellos longer than 512 bytes on the wire;
    // the quick check's modern hello is 512, Postfix 3.7's is 517.
    let toml = format!("{POSTFIX_DEFAULT}\n[misbehave]\nmax_hello_bytes = 512\nintolerance = \"reset\"\n");
    let em = emulator_config("max-hello-512", &toml);
    let target = format!("127.0.0.1:{}", em.port);
    let run = hsscan(&[
        &target,
        "--starttls",
        "smtp",
        "--sender",
        "postfix-3.7-openssl-3.0-may",
        "--json",
        "--ehlo",
        EHLO,
    ]);
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

#[test]
fn bisect_finds_nothing_on_openssl_s_server_defaults() {
    let mut server = crate::support::openssl_s_server("openssl-s_server-bisect", &[]);
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    let run = hsscan(&[&target, "--starttls", "none", "--bisect", "--json"]);
    let r = run.record();
    no_intolerance(&r, &run.describe());
    assert!(r["enumeration"].is_null());
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
