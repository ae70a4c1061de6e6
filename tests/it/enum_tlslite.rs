//! `hsscan --enumerate` against tlslite-ng's `tls.py server`, the only
//! SSLv3 and RC4 server a modern machine runs (tests/support/TLSLITE.md),
//! compared with the suites tlslite-ng's own code derives from the same
//! settings at test time.
//!
//! hsscan is pointed at 127.0.0.1, so it sends no SNI: tlslite rejects an
//! IP literal in server_name with illegal_parameter.

use crate::enum_support::{self, run, Check, Truth, TOOL_LIMIT};
use crate::support::{certs, Tool, TLSLITE};

const PYTHON3: Tool = Tool {
    program: "python3",
    install: "put first on PATH the python3 of a virtual environment with tlslite-ng (`bash .ci/run` makes one)",
};

/// The `--cipherlist` of the server (it replaces tlslite's default list).
const CIPHERLIST: &str = "rc4,3des,aes128,aes256";

/// Rebuilds the server's `HandshakeSettings` the way `tls.py server` does
/// for `--ssl3 --max-ver tls1.2 --cipherlist LIST`, then, per version,
/// the server's own suite list in its order, as
/// `TLSConnection._handshakeServerAsyncHelper` builds it for a certificate
/// (TLS 1.3, ECDSA, ECDHE, DHE, DHE-DSS, then RSA key exchange suites),
/// filtered for the version and for the certificate
/// (`_server_select_certificate`). The server then takes the first of these
/// the client offers: the server decides.
///
/// hsscan's TLS ≤ 1.2 hellos list elliptic curves only, no FFDHE group, so
/// both the ECDHE and the DHE branches of that code are taken.
///
/// RC4-MD5 (0x0004) is absent by construction: tlslite's default
/// `macNames` leave out MD5 and tls.py has no switch to add it (the
/// server answers 0x0004 alone with handshake_failure, TLSLITE.md). The
/// script asserts it, so that a tlslite that changed this is noticed.
///
/// Groups: tlslite's `eccCurves` as the server converts them for TLS 1.2,
/// minus the `brainpoolP*r1tls13` codepoints (RFC 8734), which exist only
/// in TLS 1.3; this server stops at TLS 1.2, so hsscan sees groups only in
/// ECDHE ServerKeyExchange messages.
const TRUTH_PY: &str = r#"
import sys
from tlslite.api import HandshakeSettings, X509CertChain
from tlslite.constants import CipherSuite as C, GroupName
from tlslite.tlsconnection import TLSConnection

chain_file, cipherlist = sys.argv[1], sys.argv[2]
s = HandshakeSettings()
s.minVersion = (3, 0)                       # --ssl3
s.maxVersion = (3, 3)                       # --max-ver tls1.2
s.cipherNames = cipherlist.split(",")       # --cipherlist
s = s.validate()
chain = X509CertChain()
chain.parsePemList(open(chain_file).read())
labels = {(3, 0): "SSLv3", (3, 1): "TLSv1.0", (3, 2): "TLSv1.1", (3, 3): "TLSv1.2", (3, 4): "TLSv1.3"}
for v, label in labels.items():
    if not (s.minVersion <= v <= s.maxVersion):
        continue
    suites = (C.getTLS13Suites(s, v) + C.getEcdsaSuites(s, v) + C.getEcdheCertSuites(s, v)
              + C.getDheCertSuites(s, v) + C.getDheDsaSuites(s, v) + C.getCertSuites(s, v))
    suites = C.filterForVersion(suites, minVersion=v, maxVersion=v)
    suites = C.filter_for_certificate(suites, chain)
    assert C.TLS_RSA_WITH_RC4_128_MD5 not in suites, "tlslite now offers RC4-MD5"
    if suites:
        print(label, " ".join("%04x" % c for c in suites))
tls13_only = {GroupName.brainpoolP256r1tls13, GroupName.brainpoolP384r1tls13, GroupName.brainpoolP512r1tls13}
groups = [g for g in TLSConnection._curveNamesToList(s, (3, 3)) if g not in tls13_only]
print("groups", " ".join("%04x" % g for g in groups))
"#;

fn truth() -> Truth {
    let args = [
        "-c".to_owned(),
        TRUTH_PY.to_owned(),
        certs().join("rsa-chain.pem").display().to_string(),
        CIPHERLIST.to_owned(),
    ];
    let out = run(&PYTHON3.require(), &args, &[], TOOL_LIMIT);
    assert!(
        out.success,
        "the tlslite-ng truth script failed ({}):\n{}",
        TLSLITE.install,
        out.both()
    );
    let mut t = Truth {
        server_order: true,
        groups_ordered: false,
        ..Truth::default()
    };
    for line in out.stdout.lines() {
        let mut words = line.split_whitespace();
        let Some(head) = words.next() else { continue };
        let ids: Vec<u16> = words
            .map(|w| u16::from_str_radix(w, 16).unwrap_or_else(|e| panic!("{line:?}: {e}")))
            .collect();
        match head {
            "groups" => t.groups = ids,
            label => {
                let label = enum_support::PROTOCOLS
                    .into_iter()
                    .find(|p| *p == label)
                    .unwrap_or_else(|| panic!("unexpected truth line {line:?}"));
                t.ciphers.insert(label, ids);
            }
        }
    }
    t
}

/// SSLv3 with exactly tlslite's SSLv3 suites (ECDHE included: tlslite
/// allows it in SSLv3), TLS 1.0 to 1.2 exact, all in the server's order.
#[test]
fn tlslite_ssl3_to_tls12_server_order() {
    let t = truth();
    let supported: Vec<&str> = t.ciphers.keys().copied().collect();
    assert_eq!(
        supported,
        ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2"],
        "tlslite truth: --ssl3 --max-ver tls1.2"
    );
    let mut server = crate::wire_tlslite::tls_py("tlslite-enum", CIPHERLIST);
    let scan = enum_support::enumerate(&mut server);
    Check::new("tlslite ssl3..tls1.2", &scan, &t).finish(&server);
}
