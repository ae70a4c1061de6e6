//! `hsscan --enumerate` against `gnutls-serv` with the wide priority string
//! of tests/support/GNUTLS.md (ARCFOUR, 3DES, Camellia, MD5, TLS 1.0/1.1),
//! compared with `gnutls-cli --priority <the same string> --list` run at
//! test time.
//!
//! `--list` prints every suite the priority enables, in the priority's
//! order (which is the server's order under `%SERVER_PRECEDENCE`), each with
//! the lowest protocol it exists in, then the enabled protocols and groups.
//! A suite is negotiable at every enabled version from its minimum up to
//! TLS 1.2; TLS 1.3 suites only at TLS 1.3.
//!
//! gnutls-serv has no listen-address option and binds the wildcard
//! addresses; hsscan is only pointed at 127.0.0.1.

use crate::enum_support::{self, run, Check, Truth, TOOL_LIMIT};
use crate::support::Tool;

pub const GNUTLS_CLI: Tool = Tool {
    program: "gnutls-cli",
    install: "install the Debian package `gnutls-bin` (apt-get install gnutls-bin)",
};

/// tests/support/GNUTLS.md.
const WIDE: &str = "NORMAL:+ARCFOUR-128:+3DES-CBC:+CAMELLIA-128-CBC:+CAMELLIA-256-CBC:+CAMELLIA-128-GCM:+CAMELLIA-256-GCM:+MD5:+SHA256:+SHA384:+DHE-RSA:+VERS-TLS1.0:+VERS-TLS1.1";

/// GnuTLS's protocol names (`--list` and the suites' minimum version).
const VERSIONS: [(&str, &str); 5] = [
    ("SSLv3", "SSL3.0"),
    ("TLSv1.0", "TLS1.0"),
    ("TLSv1.1", "TLS1.1"),
    ("TLSv1.2", "TLS1.2"),
    ("TLSv1.3", "TLS1.3"),
];

/// IANA codepoints of the group names `--list` prints (`GROUP-…`).
fn group_id(name: &str) -> u16 {
    match name {
        "SECP192R1" => 0x0013,
        "SECP224R1" => 0x0015,
        "SECP256R1" => 0x0017,
        "SECP384R1" => 0x0018,
        "SECP521R1" => 0x0019,
        "X25519" => 0x001d,
        "X448" => 0x001e,
        "FFDHE2048" => 0x0100,
        "FFDHE3072" => 0x0101,
        "FFDHE4096" => 0x0102,
        "FFDHE6144" => 0x0103,
        "FFDHE8192" => 0x0104,
        other => panic!("gnutls-cli --list names a group this test has no codepoint for: {other}"),
    }
}

/// The truth of a gnutls-serv running `priority` with an RSA and an ECDSA
/// certificate.
fn truth(priority: &str, server_order: bool) -> Truth {
    let args = ["--priority", priority, "--list"].map(String::from);
    let out = run(&GNUTLS_CLI.require(), &args, &[], TOOL_LIMIT);
    assert!(out.success, "gnutls-cli {} failed:\n{}", args.join(" "), out.both());
    let text = out.stdout;
    let listed = |prefix: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in gnutls-cli --list:\n{text}"))
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let protocols = listed("Protocols:");
    let enabled = |gnutls: &str| protocols.iter().any(|p| *p == format!("VERS-{gnutls}"));
    let rank = |gnutls: &str| VERSIONS.iter().position(|(_, g)| *g == gnutls);
    let mut t = Truth {
        server_order,
        groups_ordered: server_order,
        ..Truth::default()
    };
    // `TLS_ECDHE_RSA_AES_128_GCM_SHA256  \t0xc0, 0x2f\tTLS1.2`
    for line in text.lines() {
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
        let id = u16::from_be_bytes([hi, lo]);
        // Both certificates are configured: RSA and ECDSA key exchanges
        // work. PSK, SRP and anonymous suites would need credentials the
        // server does not have.
        let kx_ok = ["TLS_ECDHE_ECDSA_", "TLS_ECDHE_RSA_", "TLS_RSA_", "TLS_DHE_RSA_"]
            .iter()
            .any(|p| name.starts_with(p));
        let tls13 = min == "TLS1.3";
        if ["PSK", "SRP", "ANON"].iter().any(|k| name.contains(k)) {
            continue;
        }
        assert!(
            kx_ok || tls13,
            "gnutls-cli --list shows {name}, whose key exchange this test cannot judge"
        );
        let min_rank = rank(min).unwrap_or_else(|| panic!("unknown minimum version {min:?} of {name}"));
        for (i, (label, gnutls)) in VERSIONS.iter().enumerate() {
            let usable = if tls13 {
                *gnutls == "TLS1.3"
            } else {
                i >= min_rank && *gnutls != "TLS1.3"
            };
            if usable && enabled(gnutls) {
                t.ciphers.entry(label).or_default().push(id);
            }
        }
    }
    assert!(t.pairs() > 0, "no suites parsed from gnutls-cli --list:\n{text}");
    t.groups = listed("Groups:")
        .iter()
        .map(|g| group_id(g.strip_prefix("GROUP-").unwrap_or(g)))
        .collect();
    t
}

fn enumerate_against(priority: String, server_order: bool, name: &'static str) {
    let t = truth(&priority, server_order);
    let mut server = crate::wire_gnutls::gnutls_serv("gnutls-serv-enum", priority);
    let scan = enum_support::enumerate(&mut server);
    Check::new(name, &scan, &t).finish(&server);
}

/// GnuTLS follows the client's order by default: exact sets per protocol.
#[test]
fn gnutls_wide_priority_sets() {
    enumerate_against(WIDE.to_owned(), false, "gnutls wide");
}

/// With `%SERVER_PRECEDENCE` the server's order is the order `--list`
/// prints.
#[test]
fn gnutls_wide_priority_server_precedence_order() {
    enumerate_against(
        format!("{WIDE}:%SERVER_PRECEDENCE"),
        true,
        "gnutls wide %SERVER_PRECEDENCE",
    );
}
