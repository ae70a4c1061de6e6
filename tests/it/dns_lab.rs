//! A real DNSSEC lab on loopback (SPEC §6): `knotd` serves test zones —
//! signing those asked for itself — and `unbound` validates them with the
//! signed zones' keys as trust anchors. Both run on free ports under this
//! run's directory and die with the guard.
//!
//! Zone kinds: `Signed` (signed by knot, its key anchored in unbound:
//! secure), `Plain` (unsigned, no anchor: insecure), `Bogus` (signed by
//! knot, but unbound anchors another zone's key for it: every answer fails
//! validation). A `servfail` name is stubbed to knot, which serves no such
//! zone and refuses, so unbound answers SERVFAIL, with or without CD.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{ip_program, Netns};
use crate::support::{certs, Server, Tool};

pub const KNOTD: Tool = Tool {
    program: "knotd",
    install: "install the Debian package `knot` (apt-get install knot); `bash .ci/run` does",
};
pub const KEYMGR: Tool = Tool {
    program: "keymgr",
    install: "install the Debian package `knot` (apt-get install knot); `bash .ci/run` does",
};
pub const UNBOUND: Tool = Tool {
    program: "unbound",
    install: "install the Debian package `unbound` (apt-get install unbound); `bash .ci/run` does",
};

/// A tool on PATH, else in /usr/sbin (a non-root PATH may lack it).
pub fn sbin(tool: Tool) -> PathBuf {
    let in_sbin = Path::new("/usr/sbin").join(tool.program);
    if in_sbin.exists() {
        return in_sbin;
    }
    tool.require()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signed,
    Plain,
    Bogus,
}

/// One zone: its name (e.g. `signed.test`), kind, and the records below
/// its SOA and NS, in zone-file syntax relative to the origin.
pub struct Zone {
    pub name: &'static str,
    pub kind: Kind,
    pub records: String,
}

pub struct DnsLab {
    pub knot: Server,
    pub unbound: Server,
    /// Where unbound listens: its free port, or 53 inside a namespace.
    resolver_port: u16,
}

impl DnsLab {
    /// The validating resolver, as `--dns` takes it.
    pub fn resolver(&self) -> String {
        format!("127.0.0.1:{}", self.resolver_port)
    }

    /// Starts knot with `zones` and unbound in front of it; `servfail`
    /// names a zone whose lookups fail.
    pub fn start(tag: &str, zones: &[Zone], servfail: &str) -> Self {
        Self::start_in(None, tag, zones, servfail)
    }

    /// [`DnsLab::start`] inside the namespace `netns`, if one is given:
    /// knot and unbound run there, unbound on 127.0.0.1:53, which the
    /// namespace's resolv.conf names (so the system resolver of every
    /// program run inside is the lab's validating resolver).
    pub fn start_in(netns: Option<&Netns>, tag: &str, zones: &[Zone], servfail: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = certs().join(format!("dns-{tag}-{nanos}"));
        std::fs::create_dir_all(&dir).expect("dns lab dir");
        for z in zones {
            let text = format!(
                "$ORIGIN {name}.\n$TTL 300\n@ SOA ns.{name}. admin.{name}. 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n{}\n",
                z.records,
                name = z.name
            );
            std::fs::write(dir.join(format!("{}.zone", z.name)), text).expect("zone file");
        }
        let conf = dir.join("knot.conf");
        let d = dir.display().to_string();
        let zone_list: String = zones
            .iter()
            .map(|z| {
                format!(
                    "  - domain: {}\n    dnssec-signing: {}\n",
                    z.name,
                    if z.kind == Kind::Plain { "off" } else { "on" }
                )
            })
            .collect();
        let knot_conf = move |port: u16| {
            format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\ndatabase:\n    storage: {d}\ntemplate:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\nzone:\n{zone_list}"
            )
        };
        let conf2 = conf.clone();
        let knot = start_maybe_in(netns, "knotd", sbin(KNOTD), move |port| {
            std::fs::write(&conf2, knot_conf(port)).expect("knot.conf");
            vec!["-c".into(), conf2.display().to_string()]
        });
        let signed: Vec<&Zone> = zones.iter().filter(|z| z.kind != Kind::Plain).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while signed.iter().any(|z| {
            !knot
                .log()
                .contains(&format!("[{}.] DNSSEC, successfully signed", z.name))
        }) {
            assert!(Instant::now() < deadline, "knot did not sign the zones\n{}", knot.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let key = |zone: &str| {
            let out = Command::new(sbin(KEYMGR))
                .args(["-c", &conf.display().to_string(), zone, "dnskey"])
                .output()
                .expect("run keymgr");
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert!(
                out.status.success() && text.contains("DNSKEY 257"),
                "keymgr {zone}: {text}"
            );
            text
        };
        let anchor_of_signed = signed.iter().find(|z| z.kind == Kind::Signed).map(|z| key(z.name));
        let mut anchors = String::new();
        for z in &signed {
            let k = match z.kind {
                Kind::Signed => key(z.name),
                // Another zone's key, under this zone's name: nothing validates.
                _ => {
                    let other = anchor_of_signed
                        .clone()
                        .expect("a bogus zone needs a signed zone beside it");
                    let rest = other.split_once(' ').map_or("", |(_, r)| r).to_owned();
                    format!("{}. {rest}", z.name)
                }
            };
            anchors.push_str(&format!("    trust-anchor: \"{k}\"\n"));
        }
        let knot_port = knot.port;
        let mut stubs: String = zones
            .iter()
            .map(|z| {
                format!(
                    "stub-zone:\n    name: \"{}\"\n    stub-addr: 127.0.0.1@{knot_port}\n",
                    z.name
                )
            })
            .collect();
        stubs.push_str(&format!(
            "stub-zone:\n    name: \"{servfail}\"\n    stub-addr: 127.0.0.1@{knot_port}\n"
        ));
        let uconf = dir.join("unbound.conf");
        let d = dir.display().to_string();
        let fixed = netns.map(|_| 53);
        let unbound = start_maybe_in(netns, "unbound", sbin(UNBOUND), move |port| {
            let port = fixed.unwrap_or(port);
            let text = format!(
                "server:\n    interface: 127.0.0.1@{port}\n    port: {port}\n    do-daemonize: no\n    username: \"\"\n    chroot: \"\"\n    directory: \"{d}\"\n    pidfile: \"\"\n    use-syslog: no\n    logfile: \"\"\n    verbosity: 1\n    do-not-query-localhost: no\n    module-config: \"validator iterator\"\n    qname-minimisation: no\n    access-control: 127.0.0.0/8 allow\n    local-zone: \"test.\" nodefault\n{anchors}{stubs}"
            );
            std::fs::write(&uconf, text).expect("unbound.conf");
            vec!["-d".into(), "-c".into(), uconf.display().to_string()]
        });
        let resolver_port = fixed.unwrap_or(unbound.port);
        let mut lab = Self {
            knot,
            unbound,
            resolver_port,
        };
        match netns {
            Some(ns) => ns.wait_for_listener(resolver_port, || lab.unbound.log()),
            None => drop(lab.unbound.connect()),
        }
        lab
    }
}

/// A server started directly, or through `ip netns exec` inside `netns`
/// (which execs the program, so the guard's pid is the server's own).
fn start_maybe_in(
    netns: Option<&Netns>,
    name: &'static str,
    program: PathBuf,
    args: impl Fn(u16) -> Vec<String> + 'static,
) -> Server {
    match netns {
        None => Server::start_program(name, program, args),
        Some(ns) => {
            let ns_name = ns.name.clone();
            Server::start_program(name, ip_program(), move |port| {
                let mut v = vec!["netns".to_owned(), "exec".to_owned(), ns_name.clone()];
                v.push(program.display().to_string());
                v.extend(args(port));
                v
            })
        }
    }
}

/// `3 1 1` data of a PEM certificate: the SHA-256 of its SubjectPublicKeyInfo.
pub fn spki_sha256(pem: &str) -> String {
    let path = certs().join(pem);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum",
            path.display()
        ))
        .output()
        .expect("openssl | sha256sum");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}
