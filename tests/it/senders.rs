//! The sender verdict against the real sender (SPEC §8): for every
//! (sender profile, receiver) pair that can run here, hsscan's
//! `senders[].outcome` must equal what the real sender does, with the
//! `reason.kind` that sender's own error names. The real senders:
//! - Postfix 3.7 on OpenSSL 3.0: this machine's Postfix TLS engine,
//!   `posttls-finger` at the profile's level;
//! - Exim 4.96 on GnuTLS: `gnutls-cli` with Exim's default priority
//!   string "NORMAL" and no certificate check;
//! - Postfix on OpenSSL 1.0.2 and 1.1.1: the real OpenSSL clients nassl
//!   bundles, configured as Postfix configures them
//!   (tests/support/nassl_client.py).
//!
//! The receivers are real TLS servers on loopback (`openssl s_server`,
//! `gnutls-serv`, tlslite-ng behind an SMTP front, Postfix smtpd). The
//! truth is each client's own line ("… TLS connection established …",
//! "Handshake was completed", "established …", or its error), never
//! hsscan's.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::enum_support::{run, TOOL_LIMIT};
use crate::support::{certs, openssl_s_server, Server, Tool, GNUTLS_SERV};

pub const POSTTLS_FINGER: Tool = Tool {
    program: "posttls-finger",
    install: "install the Debian package `postfix` (apt-get install postfix)",
};

/// posttls-finger lives in /usr/sbin, which a user's PATH may lack.
fn posttls_finger_path() -> PathBuf {
    let sbin = Path::new("/usr/sbin/posttls-finger");
    if sbin.is_file() {
        sbin.to_path_buf()
    } else {
        POSTTLS_FINGER.require()
    }
}

/// An empty Postfix configuration directory: posttls-finger needs a main.cf.
fn empty_config(name: &str) -> PathBuf {
    let dir = certs().join(format!("postfix-config-{name}"));
    std::fs::create_dir_all(&dir).expect("config dir");
    crate::support::write_postfix_file(&dir.join("main.cf"), "");
    dir
}

/// What the real sender did.
#[derive(Debug, Clone)]
struct Truth {
    tls: bool,
    line: String,
}

/// posttls-finger at `level` (and `-p protocols`) against `[host]:port`
/// in wrapper mode.
fn posttls_finger(level: &str, protocols: Option<&str>, host: &str, port: u16) -> Truth {
    finger(level, protocols, host, port, false)
}

/// posttls-finger at `level` against `[host]:port`, STARTTLS or wrapper
/// mode; at verify the certificate must name `localhost` (every test
/// leaf does).
fn finger(level: &str, protocols: Option<&str>, host: &str, port: u16, starttls: bool) -> Truth {
    let extra: Vec<&str> = protocols.map(|p| vec!["-p", p]).unwrap_or_default();
    finger_with(level, &extra, host, port, starttls)
}

/// [`finger`] with more posttls-finger options (`-p …`, `-o name=value`).
fn finger_with(level: &str, extra: &[&str], host: &str, port: u16, starttls: bool) -> Truth {
    let bin = posttls_finger_path();
    let config = empty_config("finger");
    // -h native: /etc/hosts, not DNS; no dnssec_probe: nothing but
    // loopback is ever asked.
    let mut args: Vec<String> = Vec::new();
    if !starttls {
        args.push("-w".into());
    }
    args.extend([
        "-c".into(),
        "-a".into(),
        "ipv4".into(),
        "-h".into(),
        "native".into(),
        "-o".into(),
        "dnssec_probe=".into(),
        // The TLS line comes before the greeting, which a TLS server that
        // speaks no SMTP never sends: one second (-t) is spent waiting.
        "-t".into(),
        "1".into(),
        "-l".into(),
        level.into(),
    ]);
    args.extend(["-F".into(), certs().join("ca.pem").display().to_string()]);
    args.extend(extra.iter().map(|x| (*x).to_owned()));
    args.push(format!("[{host}]:{port}"));
    // The name a verifying sender matches (posttls-finger's match list).
    args.push("localhost".into());
    let out = run(
        &bin,
        &args,
        &[("MAIL_CONFIG", config.to_str().unwrap_or("/tmp"))],
        TOOL_LIMIT,
    );
    let text = out.both();
    let established = text
        .lines()
        .find(|l| l.contains("TLS connection established"))
        .map(str::to_owned);
    let verified_needed = matches!(level, "verify" | "secure");
    match established {
        Some(l) if !verified_needed || l.contains("Verified TLS connection") => Truth { tls: true, line: l },
        // Established but not verified: the verification error says why.
        Some(l) => Truth {
            tls: false,
            line: text
                .lines()
                .filter(|x| x.contains("verification failed"))
                .chain([l.as_str()])
                .collect::<Vec<_>>()
                .join(" | "),
        },
        None => Truth {
            tls: false,
            line: text
                .lines()
                .filter(|l| l.contains("error") || l.contains("problem") || l.contains("not "))
                .collect::<Vec<_>>()
                .join(" | "),
        },
    }
}

pub const GNUTLS_CLI: Tool = Tool {
    program: "gnutls-cli",
    install: "install the Debian package `gnutls-bin` (apt-get install gnutls-bin)",
};

/// `gnutls-cli` as Exim's GnuTLS client: the priority string given, no
/// certificate check (Exim verifies only for tls_verify_hosts), SMTP
/// STARTTLS through `--starttls-proto smtp`. The truth is GnuTLS's own
/// "Handshake was completed".
fn gnutls_cli(priority: &str, host: &str, port: u16, starttls: bool) -> Truth {
    let bin = GNUTLS_CLI.require();
    let mut args: Vec<String> = vec![
        "--priority".into(),
        priority.into(),
        "--insecure".into(),
        "--port".into(),
        port.to_string(),
    ];
    if starttls {
        args.extend(["--starttls-proto".into(), "smtp".into()]);
    }
    args.push(host.into());
    let out = run(&bin, &args, &[], TOOL_LIMIT);
    let text = out.both();
    let done = text.lines().find(|l| l.contains("Handshake was completed"));
    match done {
        Some(l) => Truth {
            tls: true,
            line: text.lines().find(|l| l.contains("(TLS")).unwrap_or(l).trim().to_owned(),
        },
        None => Truth {
            tls: false,
            line: text
                .lines()
                .filter(|l| l.starts_with("*** ") || l.contains("rror"))
                .collect::<Vec<_>>()
                .join(" | "),
        },
    }
}

/// python3 with tlslite-ng and nassl: the virtual environment `.ci/run`
/// makes, first on PATH.
pub const VENV_PYTHON: Tool = Tool {
    program: "python3",
    install: "put first on PATH the bin/ of a virtual environment with tlslite-ng and nassl (`bash .ci/run` makes one)",
};

fn venv_python() -> PathBuf {
    let python = VENV_PYTHON.require();
    let ok = Command::new(&python)
        .args(["-c", "import nassl, tlslite"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import nassl and tlslite: {}",
        python.display(),
        VENV_PYTHON.install
    );
    python
}

fn support_script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
        .display()
        .to_string()
}

/// Postfix's "medium" grade (tls_medium_cipherlist of Postfix 3.x), the
/// default of smtp_tls_ciphers and smtp_tls_mandatory_ciphers.
const POSTFIX_MEDIUM: &str = "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH";

/// Postfix's client on a real OpenSSL 1.0.2 or 1.1.1 (nassl's), configured
/// as the profile says (tests/support/nassl_client.py); at verify the
/// chain must verify against the test CA and name `localhost`.
fn nassl(openssl: &str, ciphers: &str, verify: bool, host: &str, port: u16, starttls: bool) -> Truth {
    let python = venv_python();
    let mut args: Vec<String> = vec![
        support_script("nassl_client.py"),
        "--openssl".into(),
        openssl.into(),
        "--ciphers".into(),
        ciphers.into(),
    ];
    if verify {
        args.extend([
            "--verify".into(),
            certs().join("ca.pem").display().to_string(),
            "--match".into(),
            "localhost".into(),
        ]);
    }
    if starttls {
        args.push("--starttls".into());
    }
    args.extend([host.into(), port.to_string()]);
    let out = run(&python, &args, &[], TOOL_LIMIT);
    let line = out.stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        line.starts_with("established ") || line.starts_with("failed: "),
        "nassl_client.py {args:?} printed no result:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    Truth {
        tls: line.starts_with("established "),
        line,
    }
}

/// A real sender: how to run it as the profile says.
#[derive(Debug, Clone, Copy)]
enum RealClient {
    /// posttls-finger (this machine's Postfix 3.7 on OpenSSL 3.0) at a level.
    Finger(&'static str),
    /// gnutls-cli with a priority string.
    GnutlsCli(&'static str),
    /// nassl's OpenSSL (`1.0.2`/`1.1.1`), cipher list, verify.
    Nassl(&'static str, &'static str, bool),
}

impl RealClient {
    fn run(self, r: Endpoint) -> Truth {
        let host = r.ip.to_string();
        match self {
            RealClient::Finger(level) => finger(level, None, &host, r.port, r.starttls),
            RealClient::GnutlsCli(priority) => gnutls_cli(priority, &host, r.port, r.starttls),
            RealClient::Nassl(v, ciphers, verify) => nassl(v, ciphers, verify, &host, r.port, r.starttls),
        }
    }
}

/// The senders that can run here, each with its real client.
const SENDERS: &[(&str, RealClient)] = &[
    ("postfix-3.7-openssl-3.0-may", RealClient::Finger("may")),
    ("postfix-3.7-openssl-3.0-encrypt", RealClient::Finger("encrypt")),
    ("postfix-3.7-openssl-3.0-verify", RealClient::Finger("verify")),
    // Exim's default tls_require_ciphers for GnuTLS is "NORMAL".
    ("exim-gnutls", RealClient::GnutlsCli("NORMAL")),
    // Postfix at may: the medium grade, anonymous suites included (OpenSSL
    // 1.0.2 has no security levels); at verify `!aNULL` is added.
    (
        "postfix-openssl-1.0.2-may",
        RealClient::Nassl("1.0.2", POSTFIX_MEDIUM, false),
    ),
    (
        "postfix-openssl-1.0.2-verify",
        RealClient::Nassl("1.0.2", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!aNULL", true),
    ),
    // On OpenSSL 1.1.1, below verify Postfix's client runs at security
    // level 0 (anonymous suites need it); at verify the default level 1.
    (
        "postfix-openssl-1.1.1-may",
        RealClient::Nassl("1.1.1", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:@SECLEVEL=0", false),
    ),
    (
        "postfix-openssl-1.1.1-verify",
        RealClient::Nassl("1.1.1", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!aNULL", true),
    ),
];

/// hsscan's verdict for `sender` against `host:port` (implicit TLS).
fn hsscan_sender(sender: &str, host: &str, port: u16, env: &[(&str, &str)]) -> Value {
    hsscan_senders(&[sender], "127.0.0.1", host, port, false, env)
}

/// hsscan's verdict for every one of `senders` against `host:port`
/// (`host` resolved to `ip`), with STARTTLS or implicit TLS.
fn hsscan_senders(senders: &[&str], ip: &str, host: &str, port: u16, starttls: bool, env: &[(&str, &str)]) -> Value {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let mut args: Vec<String> = vec![
        format!("{host}:{port}"),
        "--starttls".into(),
        if starttls { "smtp" } else { "none" }.into(),
        "-4".into(),
        "--resolve".into(),
        format!("{host}:{ip}"),
        "--json".into(),
        "--ca-file".into(),
        certs().join("ca.pem").display().to_string(),
    ];
    for s in senders {
        args.extend(["--sender".into(), (*s).into()]);
    }
    let out = run(hsscan, &args, env, TOOL_LIMIT);
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("hsscan {args:?} printed no JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// What keeps a receiver running.
#[allow(dead_code)]
enum Guard {
    Server(Server),
    Postfix(crate::postfix::Postfix),
}

/// A receiver on loopback: where it listens and whether it speaks SMTP
/// (STARTTLS) or TLS from the first byte.
struct Receiver {
    name: &'static str,
    ip: std::net::Ipv4Addr,
    port: u16,
    starttls: bool,
    guard: Guard,
}

/// Where a receiver listens, for the threads that talk to it.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    name: &'static str,
    ip: std::net::Ipv4Addr,
    port: u16,
    starttls: bool,
}

impl Receiver {
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            name: self.name,
            ip: self.ip,
            port: self.port,
            starttls: self.starttls,
        }
    }

    fn server(name: &'static str, mut server: Server, starttls: bool) -> Self {
        drop(server.connect());
        Receiver {
            name,
            ip: std::net::Ipv4Addr::LOCALHOST,
            port: server.port,
            starttls,
            guard: Guard::Server(server),
        }
    }

    fn log(&self) -> String {
        match &self.guard {
            Guard::Server(s) => s.log(),
            Guard::Postfix(p) => p.log(),
        }
    }
}

fn openssl(name: &'static str, args: &[&str]) -> Receiver {
    // -quiet: s_server then ends a session when its client falls silent
    // waiting for an SMTP greeting it never sends.
    let mut all: Vec<&str> = args.to_vec();
    all.push("-quiet");
    Receiver::server(name, openssl_s_server(name, &all), false)
}

/// An RSA leaf of `bits` bits (CN=localhost) signed by the test
/// intermediate, for the weak-key receivers.
fn rsa_leaf(bits: u32) -> (PathBuf, PathBuf) {
    leaf(&format!("rsa{bits}"), bits, "localhost")
}

/// An RSA leaf `tag.pem`/`tag.key` of `bits` bits for `cn` (no SAN), signed
/// by the test intermediate.
fn leaf(tag: &str, bits: u32, cn: &str) -> (PathBuf, PathBuf) {
    let dir = certs();
    let key = dir.join(format!("{tag}.key"));
    let pem = dir.join(format!("{tag}.pem"));
    let csr = format!("{tag}.csr");
    if !pem.exists() {
        let ok = Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-newkey", &format!("rsa:{bits}"), "-nodes", "-keyout"])
            .arg(&key)
            .args(["-subj", &format!("/CN={cn}"), "-out", &csr])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("openssl")
                .current_dir(dir)
                .args(["x509", "-req", "-in", &csr, "-CA", "int.pem", "-CAkey", "int.key"])
                .args(["-set_serial", &format!("{bits}{}", tag.len()), "-days", "30", "-out"])
                .arg(&pem)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "making the {bits}-bit RSA certificate");
    }
    (pem, key)
}

/// DH parameters of `bits` bits, made once per test process.
fn dhparam(bits: u32) -> String {
    let path = certs().join(format!("dh{bits}.pem"));
    if !path.exists() {
        let ok = Command::new("openssl")
            .args(["dhparam", "-out"])
            .arg(&path)
            .arg(bits.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl dhparam {bits}");
    }
    path.display().to_string()
}

/// `gnutls-serv` with the RSA chain and only what `priority` allows.
fn gnutls_serv(name: &'static str, priority: &'static str, extra: &[String]) -> Receiver {
    let extra = extra.to_vec();
    let server = Server::start(name, GNUTLS_SERV, move |port| {
        let d = certs();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--x509certfile".into(),
            d.join("rsa-chain.pem").display().to_string(),
            "--x509keyfile".into(),
            d.join("rsa.key").display().to_string(),
            "--priority".into(),
            priority.into(),
        ];
        args.extend(extra.iter().cloned());
        args
    });
    Receiver::server(name, server, false)
}

/// tests/support/tlslite_smtp.py: SMTP, STARTTLS, then tlslite-ng
/// speaking only SSLv3 with only RC4.
fn tlslite_sslv3_rc4() -> Receiver {
    let python = venv_python();
    let script = support_script("tlslite_smtp.py");
    let server = Server::start_program("tlslite-smtp-sslv3-rc4", python, move |port| {
        let d = certs();
        vec![
            script.clone(),
            d.join("rsa-chain.pem").display().to_string(),
            d.join("rsa.key").display().to_string(),
            "127.0.0.1".into(),
            port.to_string(),
        ]
    });
    Receiver::server("tlslite-sslv3-rc4", server, true)
}

/// A throwaway Postfix smtpd (STARTTLS, the test RSA chain) restricted to
/// TLS 1.0, with the key exchanges `exclude` leaves.
fn postfix_tls10(name: &'static str, exclude: &str) -> Receiver {
    let only10 = "!SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3";
    let pf = crate::postfix::Postfix::start(&[
        ("smtpd_tls_protocols", only10),
        ("smtpd_tls_mandatory_protocols", only10),
        ("smtpd_tls_exclude_ciphers", exclude),
    ]);
    Receiver {
        name,
        ip: pf.ip,
        port: pf.port,
        starttls: true,
        guard: Guard::Postfix(pf),
    }
}

fn receivers() -> Vec<Receiver> {
    let dh = dhparam(1024);
    let chain = certs().join("int.pem").display().to_string();
    let weak_key = |bits: u32| {
        let (pem, key) = rsa_leaf(bits);
        openssl_weak_key(&pem.display().to_string(), &key.display().to_string(), &chain)
    };
    let (rsa1024, rsa768) = (weak_key(1024), weak_key(768));
    let (pem, key) = leaf("other-name", 2048, "other.test.example");
    let other_name = openssl_weak_key(&pem.display().to_string(), &key.display().to_string(), &chain);
    vec![
        openssl("defaults", &[]),
        openssl(
            "tls1.0-ecdhe",
            &["-tls1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"],
        ),
        openssl(
            "tls1.0-ecdhe-or-rsa",
            &[
                "-tls1",
                "-serverpref",
                "-cipher",
                "ECDHE-RSA-AES256-SHA:AES256-SHA:@SECLEVEL=0",
            ],
        ),
        openssl("tls1.0-rsa", &["-tls1", "-cipher", "AES256-SHA:@SECLEVEL=0"]),
        openssl("tls1.3-only", &["-tls1_3"]),
        // Only anonymous suites, no certificate: what a sender below verify
        // offers (Postfix's medium grade keeps aNULL) decides.
        openssl(
            "anonymous-only",
            &["-tls1_2", "-nocert", "-cipher", "aNULL:@SECLEVEL=0"],
        ),
        openssl(
            "dh1024",
            &[
                "-tls1_2",
                "-cipher",
                "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
                "-dhparam",
                &dh,
            ],
        ),
        openssl("ffdhe2048-only", &["-groups", "ffdhe2048"]),
        Receiver::server("rsa1024", rsa1024, false),
        Receiver::server("rsa768", rsa768, false),
        // A valid chain for another name: a verifying sender refuses it.
        Receiver::server("other-name", other_name, false),
        gnutls_serv(
            "gnutls-3des-only",
            "NONE:+VERS-TLS1.2:+3DES-CBC:+RSA:+SHA1:+COMP-NULL:+SIGN-ALL:+CTYPE-X509",
            &[],
        ),
        gnutls_serv(
            "gnutls-arcfour-only",
            "NONE:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0:+ARCFOUR-128:+RSA:+ECDHE-RSA:+SHA1:+MD5:+COMP-NULL:+SIGN-ALL:+CURVE-ALL:+CTYPE-X509",
            &[],
        ),
        // Only DHE with a 768-bit group: OpenSSL 3.0 refuses to load one
        // even at security level 0, gnutls-serv serves it (to a client
        // that does not list RFC 7919 groups it must, see the matrix).
        gnutls_serv(
            "gnutls-dh768",
            "NONE:+VERS-TLS1.2:+AES-128-GCM:+DHE-RSA:+AEAD:+COMP-NULL:+SIGN-ALL:+CTYPE-X509",
            &["--dhparams".into(), dhparam(768)],
        ),
        tlslite_sslv3_rc4(),
        postfix_tls10("postfix-tls1.0-rsa", "kEECDH, kEDH"),
        postfix_tls10("postfix-tls1.0-ecdhe", "kRSA, kEDH"),
    ]
}

fn openssl_weak_key(pem: &str, key: &str, chain: &str) -> Server {
    let (pem, key, chain) = (pem.to_owned(), key.to_owned(), chain.to_owned());
    Server::start("openssl-rsa1024", crate::support::OPENSSL, move |port| {
        vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            pem.clone(),
            "-cert_chain".into(),
            chain.clone(),
            "-key".into(),
            key.clone(),
            "-cipher".into(),
            "DEFAULT:@SECLEVEL=0".into(),
            "-quiet".into(),
        ]
    })
}

/// The `reason.kind` a real sender's own failure message names (OpenSSL's
/// and GnuTLS's error strings, posttls-finger's TLS line at verify), or
/// `None` when the message says nothing this test knows.
fn real_reason(t: &Truth) -> Option<&'static str> {
    let l = t.line.to_ascii_lowercase();
    let has = |s: &str| l.contains(s);
    if has("legacy sigalg") {
        Some("legacy-signature")
    } else if has("dh key too small") || has("dh_key_too_small") {
        Some("weak-dh")
    } else if has("key too small") || has("key too weak") {
        Some("weak-key")
    } else if has("unsupported protocol")
        || has("protocol version")
        || has("wrong version number")
        || has("received alert [70]")
    {
        Some("no-shared-protocol")
    } else if has("handshake failure")
        || has("received alert [40]")
        || has("no shared cipher")
        || has("no ciphers available")
    {
        Some("no-shared-cipher")
    } else if has("certificate verify failed")
        || has("does not name")
        || has("untrusted tls connection")
        || has("trusted tls connection established")
    {
        Some("certificate-rejected")
    } else {
        None
    }
}

/// SPEC §8 acceptance: for every (sender profile that can run here,
/// receiver) pair, hsscan's `senders[].outcome` equals the real sender's
/// own outcome, a failure's `reason.kind` is the cause the real sender's
/// own error names, and the outcome was confirmed with that sender's own
/// hello. Each receiver is started once and one hsscan run judges every
/// sender there; receivers are worked through in parallel (the real
/// clients mostly wait: posttls-finger in wrapper mode for a greeting
/// that never comes).
#[test]
fn each_sender_outcome_equals_the_real_sender() {
    let receivers = receivers();
    let ids: Vec<&str> = SENDERS.iter().map(|(id, _)| *id).collect();
    let endpoints: Vec<Endpoint> = receivers.iter().map(Receiver::endpoint).collect();
    // A few receivers at a time: the machine is shared with the rest of
    // the suite.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<Option<Vec<Cell>>>> = std::sync::Mutex::new(vec![None; endpoints.len()]);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&e) = endpoints.get(i) else { break };
                let record = hsscan_senders(&ids, &e.ip.to_string(), "localhost", e.port, e.starttls, &[]);
                let cells: Vec<_> = SENDERS
                    .iter()
                    .map(|(sender, client)| cell(e, sender, *client, &record))
                    .collect();
                if let Ok(mut d) = done.lock() {
                    d[i] = Some(cells);
                }
            });
        }
    });
    let rows: Vec<Vec<Cell>> = done
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| vec![("this receiver's worker panicked".into(), Some(String::new()))]))
        .collect();
    let mut problems = Vec::new();
    let mut matrix = Vec::new();
    for (r, cells) in receivers.iter().zip(rows) {
        let mut failed = false;
        for (line, problem) in cells {
            matrix.push(line);
            if let Some(p) = problem {
                problems.push(p);
                failed = true;
            }
        }
        if failed {
            problems.push(r.log());
        }
    }
    eprintln!("{}", matrix.join("\n"));
    assert!(
        problems.is_empty(),
        "{}\n\nmatrix:\n{}",
        problems.join("\n"),
        matrix.join("\n")
    );
}

/// A matrix cell: its line, and what is wrong with it.
type Cell = (String, Option<String>);

/// How many receivers the matrix works on at once.
const WORKERS: usize = 4;

/// One cell of the matrix: its line, and what is wrong with it.
fn cell(e: Endpoint, sender: &str, client: RealClient, record: &Value) -> Cell {
    let truth = client.run(e);
    let got = record["senders"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["sender"] == sender))
        .cloned()
        .unwrap_or(Value::Null);
    let outcome = got["outcome"].as_str().unwrap_or("?");
    let reason = got["reason"]["kind"].as_str().unwrap_or("-");
    let want = if truth.tls { "tls" } else { "no-tls" };
    let want_reason = if truth.tls { Some("-") } else { real_reason(&truth) };
    let line = format!(
        "{:<22} {:<32} real {want:<6} {:<20} hsscan {outcome:<6} {reason:<20} | {}",
        e.name,
        sender,
        want_reason.unwrap_or("?"),
        truth.line.chars().take(100).collect::<String>()
    );
    let problem = (outcome != want || got["confirmed"] != true || want_reason != Some(reason)).then(|| {
        format!(
            "{} / {sender}: hsscan {outcome} ({reason}: {}, confirmed {}), real sender {want} ({}): {}",
            e.name,
            got["reason"]["detail"],
            got["confirmed"],
            want_reason.unwrap_or("a cause this test cannot name"),
            truth.line
        )
    });
    (line, problem)
}

#[test]
fn failure_reasons_name_the_cause() {
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "tls1.0-ecdhe",
            &["-tls1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"],
            "postfix-3.7-openssl-3.0-verify",
            "legacy-signature",
        ),
        (
            "tls1.3-only",
            &["-tls1_3"],
            "postfix-openssl-1.0.2-may",
            "no-shared-protocol",
        ),
        (
            "ffdhe2048-only",
            &["-groups", "ffdhe2048"],
            "postfix-3.7-openssl-3.0-may",
            "no-shared-cipher",
        ),
    ];
    for (name, args, sender, kind) in cases {
        let r = openssl(name, args);
        let record = hsscan_sender(sender, "localhost", r.port, &[]);
        assert_eq!(
            record["senders"][0]["reason"]["kind"], *kind,
            "{name} / {sender}: {record:#}"
        );
        assert_eq!(record["verdict"]["outcome"], "no-tls", "{record:#}");
    }
}

/// `local` with `smtp_tls_protocols = >=TLSv1.2` against a TLS 1.0
/// receiver: the real Postfix fails (protocol_version), hsscan says so,
/// and advises the policy line that relaxes it for that next hop only —
/// and a probe with the advised hello shows it works.
#[test]
fn a_tls12_minimum_fails_on_tls10_and_the_advice_relaxes_only_that_destination() {
    let r = openssl(
        "tls1.0-ecdhe-min12",
        &["-tls1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"],
    );
    let truth = posttls_finger("may", Some(">=TLSv1.2"), "localhost", r.port);
    assert!(!truth.tls, "posttls-finger -p >=TLSv1.2 got TLS: {}", truth.line);
    let config = certs().join("postfix-config-min12");
    std::fs::create_dir_all(&config).expect("config dir");
    crate::support::write_postfix_file(
        &config.join("main.cf"),
        "smtp_tls_security_level = may\nsmtp_tls_protocols = >=TLSv1.2\n",
    );
    let record = hsscan_sender(
        "local",
        "localhost",
        r.port,
        &[("MAIL_CONFIG", config.to_str().unwrap_or("/tmp"))],
    );
    let s = &record["senders"][0];
    assert_eq!(s["sender"], "local", "{record:#}");
    assert_eq!(s["outcome"], "no-tls", "{record:#}");
    assert_eq!(s["reason"]["kind"], "no-shared-protocol", "{record:#}");
    assert_eq!(record["verdict"]["outcome"], "no-tls", "{record:#}");
    let fix = record["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-policy"))
        .unwrap_or_else(|| panic!("no policy advice: {record:#}"));
    assert_eq!(
        fix["policy_line"],
        format!("[localhost]:{} may protocols=>=TLSv1", r.port),
        "{record:#}"
    );
    assert_eq!(fix["expect"], "tls", "{record:#}");
    assert!(fix["verified_by"].is_string(), "{record:#}");
    // The relaxed sender really gets TLS.
    assert!(posttls_finger("may", Some(">=TLSv1"), "localhost", r.port).tls);
}

#[test]
fn an_unknown_sender_lists_the_valid_ones() {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let out = Command::new(hsscan)
        .args(["127.0.0.1:1", "--sender", "postfix-9"])
        .output()
        .expect("hsscan runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sender 'postfix-9'"), "{err}");
    assert!(
        err.contains("postfix-3.7-openssl-3.0-verify") && err.contains("local"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn local_without_postfix_config_says_which_default_was_assumed() {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let empty = certs().join("no-postfix-config-here");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = Command::new(hsscan)
        .arg("senders")
        .env("MAIL_CONFIG", &empty)
        .output()
        .expect("hsscan runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().take(2).collect::<Vec<_>>().join("\n");
    assert!(
        first.contains("local") && first.contains("postfix-3.7-openssl-3.0-may assumed"),
        "{first}"
    );
}

/// SPEC §8 advice, verified on a real Postfix: a relay whose
/// `smtp_tls_protocols = >=TLSv1.2` meets a Postfix receiver speaking only
/// TLS 1.0. hsscan (`--sender local`, reading that relay's own main.cf)
/// says no TLS and advises one policy line for that next hop; the relay's
/// delivery fails TLS before the line, and goes over TLS after it is put
/// in a postmap'd smtp_tls_policy_maps table — Postfix's own log says so.
#[test]
fn the_advised_policy_line_makes_a_real_postfix_relay_deliver_over_tls() {
    use crate::postfix::Postfix;
    let receiver = Postfix::start(&[
        ("smtpd_tls_protocols", "!SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3"),
        (
            "smtpd_tls_mandatory_protocols",
            "!SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3",
        ),
    ]);
    let nexthop = format!("[{}]:{}", receiver.ip, receiver.port);
    let relay = Postfix::start_relay(&[
        ("relayhost", &nexthop),
        ("mynetworks", "127.0.0.0/8"),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_protocols", ">=TLSv1.2"),
        ("smtp_tls_loglevel", "1"),
    ]);
    let conf = relay.conf_dir();
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let args: Vec<String> = vec![
        receiver.target(),
        "--starttls".into(),
        "smtp".into(),
        "--json".into(),
        "--sender".into(),
        "local".into(),
    ];
    let out = run(
        hsscan,
        &args,
        &[("MAIL_CONFIG", conf.to_str().unwrap_or("/tmp"))],
        TOOL_LIMIT,
    );
    let record: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", out.stdout, out.stderr));
    assert_eq!(record["verdict"]["outcome"], "no-tls", "{record:#}");
    assert_eq!(
        record["senders"][0]["reason"]["kind"], "no-shared-protocol",
        "{record:#}"
    );
    let line = record["advice"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "postfix-policy"))
        .and_then(|x| x["policy_line"].as_str())
        .unwrap_or_else(|| panic!("no policy line: {record:#}"))
        .to_owned();
    assert_eq!(line, format!("{nexthop} may protocols=>=TLSv1"), "{record:#}");

    let established = |log: &str| log.matches("TLS connection established to").count();
    crate::emulate_postfix::submit(&relay);
    let before = relay.log_when(|l| l.contains("status=") && l.contains("relay="));
    assert_eq!(established(&before), 0, "TLS before the advice?\n{before}");
    assert!(
        before.contains("protocol version") || before.contains("unsupported protocol"),
        "the relay's TLS attempt should fail on the protocol version:\n{before}"
    );

    let table = conf.join("tls_policy");
    std::fs::write(&table, format!("{line}\n")).expect("write tls_policy");
    relay.postmap(&table);
    relay.reconfigure(&[("smtp_tls_policy_maps", &format!("hash:{}", table.display()))]);
    crate::emulate_postfix::submit(&relay);
    let after = relay.log_when(|l| established(l) >= 1);
    assert_eq!(established(&after), 1, "no TLS after the advised line:\n{after}");
}

/// `hsscan --sender local` (MAIL_CONFIG = `conf`) against a Postfix
/// receiver over STARTTLS.
fn hsscan_local(conf: &Path, target: &str) -> Value {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let args: Vec<String> = vec![
        target.into(),
        "--starttls".into(),
        "smtp".into(),
        "--json".into(),
        "--sender".into(),
        "local".into(),
        "--ca-file".into(),
        certs().join("ca.pem").display().to_string(),
    ];
    let out = run(
        hsscan,
        &args,
        &[("MAIL_CONFIG", conf.to_str().unwrap_or("/tmp"))],
        TOOL_LIMIT,
    );
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("hsscan {args:?} printed no JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// SPEC §8 advice at `verify`, verified on a real Postfix relay: a relay
/// at `smtp_tls_security_level = verify` (OpenSSL 3.0, security level 1)
/// meets a Postfix receiver speaking only TLS 1.0, whose (EC)DHE
/// ServerKeyExchange is signed with MD5+SHA-1. hsscan (`--sender local`,
/// reading the relay's own main.cf) says `legacy-signature` and advises:
/// - when the receiver also has static RSA: keep `verify` and exclude the
///   ephemeral key exchanges for that next hop (`exclude=kEECDH:kEDH`) —
///   after the line the relay's delivery is *verified* TLS;
/// - when it has only ECDHE: a scoped `encrypt` exception (Postfix runs
///   OpenSSL at level 0 below verify) — after the line the delivery goes
///   over (unverified) TLS.
///
/// Before the line the relay's TLS handshake fails on the signature and
/// the mail is deferred; the truth is Postfix's own log.
#[test]
fn verify_advice_for_a_legacy_signature_makes_a_real_relay_deliver_over_tls() {
    use crate::postfix::Postfix;
    let only10 = "!SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3";
    for (variant, exclude, want_attr, want_log) in [
        (
            "ecdhe-and-rsa",
            "kEDH",
            "verify exclude=kEECDH:kEDH",
            "Verified TLS connection established to",
        ),
        ("ecdhe-only", "kRSA, kEDH", "encrypt", "TLS connection established to"),
    ] {
        // On 127.0.0.1: the test leaf names localhost and 127.0.0.1, so
        // hsscan's name check passes for the literal next hop the relay uses.
        let receiver = Postfix::start_at(
            std::net::Ipv4Addr::LOCALHOST,
            &[
                ("smtpd_tls_protocols", only10),
                ("smtpd_tls_mandatory_protocols", only10),
                ("smtpd_tls_exclude_ciphers", exclude),
            ],
        );
        let nexthop = format!("[{}]:{}", receiver.ip, receiver.port);
        let ca = certs().join("ca.pem").display().to_string();
        let relay = Postfix::start_relay(&[
            ("relayhost", &nexthop),
            ("mynetworks", "127.0.0.0/8"),
            ("smtp_tls_security_level", "verify"),
            ("smtp_tls_CAfile", &ca),
            // The literal next hop is an address; the leaf names localhost.
            ("smtp_tls_verify_cert_match", "localhost"),
            ("smtp_tls_loglevel", "1"),
        ]);
        let conf = relay.conf_dir();
        let record = hsscan_local(&conf, &receiver.target());
        let s = &record["senders"][0];
        assert_eq!(s["sender"], "local", "{variant}: {record:#}");
        assert_eq!(s["outcome"], "no-tls", "{variant}: {record:#}");
        assert_eq!(s["reason"]["kind"], "legacy-signature", "{variant}: {record:#}");
        let fix = record["advice"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|x| x["action"] == "postfix-policy" && x["expect"] == "tls")
            })
            .unwrap_or_else(|| panic!("{variant}: no policy advice: {record:#}"));
        let line = fix["policy_line"].as_str().unwrap_or_default().to_owned();
        assert_eq!(line, format!("{nexthop} {want_attr}"), "{variant}: {record:#}");

        let established = |log: &str| log.matches(want_log).count();
        crate::emulate_postfix::submit(&relay);
        let before = relay.log_when(|l| l.contains("status=deferred"));
        assert_eq!(established(&before), 0, "{variant}: TLS before the advice?\n{before}");
        assert!(
            before.contains("legacy sigalg disallowed or unsupported"),
            "{variant}: the relay's handshake should fail on the signature:\n{before}"
        );

        let table = conf.join("tls_policy");
        std::fs::write(&table, format!("{line}\n")).expect("write tls_policy");
        relay.postmap(&table);
        relay.reconfigure(&[("smtp_tls_policy_maps", &format!("hash:{}", table.display()))]);
        crate::emulate_postfix::submit(&relay);
        let after = relay.log_when(|l| established(l) >= 1);
        assert_eq!(
            established(&after),
            1,
            "{variant}: no {want_log:?} after the advised line:\n{after}"
        );
    }
}

/// SPEC §8: where the advice says no setting of the sender can do TLS,
/// the real sender fails with every relaxation its profile allows. Postfix
/// 3.7 on OpenSSL 3.0 against receivers offering only 3DES, only RC4, or
/// only SSLv3: hsscan's advice is `no-tls-possible` (expect plaintext), and
/// posttls-finger fails at `may` and `encrypt`, with the lowest cipher
/// grade (`export`, also for the mandatory ciphers), with
/// `protocols >= TLSv1`, and with all of these at once.
#[test]
fn where_no_tls_is_possible_every_relaxation_of_the_real_sender_fails() {
    let receivers = [
        gnutls_serv(
            "gnutls-3des-only-relax",
            "NONE:+VERS-TLS1.2:+3DES-CBC:+RSA:+SHA1:+COMP-NULL:+SIGN-ALL:+CTYPE-X509",
            &[],
        ),
        gnutls_serv(
            "gnutls-arcfour-only-relax",
            "NONE:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0:+ARCFOUR-128:+RSA:+ECDHE-RSA:+SHA1:+MD5:+COMP-NULL:+SIGN-ALL:+CURVE-ALL:+CTYPE-X509",
            &[],
        ),
        tlslite_sslv3_rc4(),
    ];
    let relaxations: &[(&str, &[&str])] = &[
        ("may", &[]),
        ("encrypt", &[]),
        ("may", &["-o", "smtp_tls_ciphers=export"]),
        ("encrypt", &["-o", "smtp_tls_mandatory_ciphers=export"]),
        ("may", &["-p", ">=TLSv1"]),
        (
            "encrypt",
            &[
                "-p",
                ">=TLSv1",
                "-o",
                "smtp_tls_mandatory_protocols=>=TLSv1",
                "-o",
                "smtp_tls_mandatory_ciphers=export",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for r in &receivers {
        let host = r.ip.to_string();
        let record = hsscan_senders(
            &["postfix-3.7-openssl-3.0-may"],
            &host,
            "localhost",
            r.port,
            r.starttls,
            &[],
        );
        let advice = record["advice"].as_array().cloned().unwrap_or_default();
        let none = advice
            .iter()
            .find(|a| a["action"] == "no-tls-possible")
            .cloned()
            .unwrap_or(Value::Null);
        if none["expect"] != "plaintext" || advice.iter().any(|a| a["expect"] == "tls") {
            problems.push(format!("{}: advice is not 'no TLS possible': {advice:#?}", r.name));
        }
        for (level, extra) in relaxations {
            let truth = finger_with(level, extra, &host, r.port, r.starttls);
            eprintln!("{:<26} -l {level} {extra:?}: {}", r.name, truth.line);
            if truth.tls {
                problems.push(format!(
                    "{}: posttls-finger -l {level} {extra:?} got TLS, yet the advice says none is possible: {}",
                    r.name, truth.line
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
