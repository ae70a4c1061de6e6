//! Shared machinery of the `--enumerate` tests: running hsscan against a
//! real server on loopback, and comparing what it reports with the
//! server's configured truth.
//!
//! The truth is never taken from hsscan: each peer's test module computes
//! it at test time from the peer's own tools (`openssl ciphers`,
//! `gnutls-cli --list`, tlslite-ng's constants) and hands it over as a
//! [`Truth`]. [`Check`] then collects every difference, so that one failing
//! run shows all of them, with the numbers and the `HSSCAN_TRACE` lines
//! of the protocols concerned.
//!
//! hsscan is only ever pointed at `127.0.0.1:PORT` (never a DNS name), with
//! `--starttls none`, so it sends no SNI and speaks TLS at once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Server;

/// The protocol labels of `enumeration.protocols`, lowest first.
pub const PROTOCOLS: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/// How long one enumeration may take. On loopback it takes well under a
/// second (tlslite-ng: under two); this only bounds a hang.
const SCAN_LIMIT: Duration = Duration::from_secs(120);

/// How long one helper command (`openssl ciphers`, `s_client`, …) may take.
pub const TOOL_LIMIT: Duration = Duration::from_secs(30);

/// Connections allowed beyond the floor and one per group:
/// SPEC §4 "near the floor".
const SLACK: usize = 5;

/// The headline sender's own hello (SPEC §8 `confirmed`): one connection
/// beside the enumeration.
const SENDER: usize = 1;

/// A long TLS 1.2 list under client preference is split into one lane per
/// connection the host allows at once (`--per-host`, 2 by default) so that
/// a far server costs half the round trips: SPEC §4's "one per chunk per
/// protocol" for the second lane's refusal, and the hello that shows the
/// client decides (which a split needs before it may merge by union).
const LANES: usize = 2;
/// The planner splits once this many TLS 1.2 suites are found.
const SPLIT_FOUND: usize = 8;

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    /// The exit code (`None` when a signal ended the program).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout then stderr, for parsers that do not care which.
    pub fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `program args…` with stdin closed and `envs` added, killed (and the
/// test failed) if it has not finished within `limit`.
pub fn run(program: &Path, args: &[String], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} {} did not finish within {limit:?}",
                    program.display(),
                    args.join(" ")
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for {}: {e}", program.display()),
        }
    };
    Output {
        success: status.success(),
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// One `hsscan --enumerate --json` run.
pub struct Scan {
    /// The endpoint record.
    pub record: Value,
    /// The `hsscan trace:` lines of stderr.
    pub trace: Vec<String>,
    pub command: String,
    /// hsscan's exit code.
    pub code: Option<i32>,
}

impl Scan {
    pub fn enumeration(&self) -> &Value {
        &self.record["enumeration"]
    }

    pub fn connections(&self) -> u64 {
        self.record["connections"].as_u64().unwrap_or(u64::MAX)
    }

    /// The suite ids hsscan reports for `proto`, in its order.
    pub fn ciphers(&self, proto: &str) -> Vec<u16> {
        self.enumeration()["ciphers"][proto]
            .as_array()
            .map(|a| a.iter().map(|c| parse_id(&c["id"])).collect())
            .unwrap_or_default()
    }

    /// The group ids hsscan reports, in its order.
    pub fn groups(&self) -> Vec<u16> {
        self.enumeration()["groups"]
            .as_array()
            .map(|a| a.iter().map(|c| parse_id(&c["id"])).collect())
            .unwrap_or_default()
    }

    pub fn feature(&self, name: &str) -> &Value {
        &self.enumeration()["features"][name]
    }

    /// `complete[proto]`: `Some(true)` only when hsscan calls the
    /// protocol's result settled and its list whole.
    pub fn complete(&self, proto: &str) -> Option<bool> {
        self.enumeration()["complete"][proto].as_bool()
    }

    /// Whether every one of the six protocols is `complete: true`.
    pub fn all_complete(&self) -> bool {
        PROTOCOLS.iter().all(|p| self.complete(p) == Some(true))
    }

    /// The `unsure` entries as (protocol, reason); an entry that is not
    /// `{protocol, reason}` shows as its JSON text.
    pub fn unsure(&self) -> Vec<(String, String)> {
        self.enumeration()["unsure"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|u| match (u["protocol"].as_str(), u["reason"].as_str()) {
                        (Some(p), Some(r)) => (p.to_owned(), r.to_owned()),
                        _ => (u.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The reasons `unsure` gives for `proto` (empty when it names it not).
    pub fn unsure_of(&self, proto: &str) -> Vec<String> {
        self.unsure()
            .into_iter()
            .filter(|(p, _)| p == proto)
            .map(|(_, r)| r)
            .collect()
    }

    /// The trace lines of one protocol.
    pub fn trace_of(&self, proto: &str) -> Vec<&str> {
        let tag = format!("hsscan trace: {proto} ");
        self.trace
            .iter()
            .filter(|l| l.starts_with(&tag))
            .map(String::as_str)
            .collect()
    }
}

/// `"0x002f"` → 0x002f; panics on anything else.
fn parse_id(v: &Value) -> u16 {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("codepoint id is not \"0x....\": {v}"))
}

/// `0x002f` as the JSON spells it.
pub fn hex(id: u16) -> String {
    format!("0x{id:04x}")
}

fn hex_list(ids: &[u16]) -> String {
    ids.iter().map(|&i| hex(i)).collect::<Vec<_>>().join(" ")
}

/// Runs `hsscan 127.0.0.1:PORT --starttls none --enumerate --json` with
/// `HSSCAN_TRACE=1` against `server`, once it listens.
pub fn enumerate(server: &mut Server) -> Scan {
    // Waits until the server listens (restarting it on another port if its
    // port was taken). This connection is the test's, not hsscan's: it
    // does not count in hsscan's `connections`.
    drop(server.connect());
    let target = format!("127.0.0.1:{}", server.port);
    enumerate_target(&target, &["--starttls", "none"], &|| server.log())
}

/// Runs `hsscan TARGET ARGS… --enumerate --json` with `HSSCAN_TRACE=1`;
/// `log` tells about the server when something goes wrong.
pub fn enumerate_target(target: &str, extra: &[&str], log: &dyn Fn() -> String) -> Scan {
    let hsscan = Path::new(env!("CARGO_BIN_EXE_hsscan"));
    let mut args: Vec<String> = vec![target.to_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(["--enumerate".to_owned(), "--json".to_owned()]);
    let command = format!("HSSCAN_TRACE=1 hsscan {}", args.join(" "));
    let out = run(hsscan, &args, &[("HSSCAN_TRACE", "1")], SCAN_LIMIT);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "`{command}` did not print one JSON object ({e}):\nstdout:\n{}\nstderr:\n{}\n{}",
            out.stdout,
            out.stderr,
            log()
        )
    });
    // A record without an enumeration is judged by Check, which then shows
    // every difference from the truth, the status and the failure.
    let trace = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("hsscan trace:"))
        .map(str::to_owned)
        .collect();
    Scan {
        record,
        trace,
        command,
        code: out.code,
    }
}

/// What the server is configured to negotiate, from its own tools.
#[derive(Debug, Default, Clone)]
pub struct Truth {
    /// Every supported protocol with its suites, in the server's preference
    /// order when `server_order`, else in any order. A protocol that is
    /// not a key is not supported.
    pub ciphers: BTreeMap<&'static str, Vec<u16>>,
    /// Whether the server picks the suite by its own order.
    pub server_order: bool,
    /// The groups hsscan can see: TLS 1.3 groups and TLS 1.2 ECDHE curves.
    pub groups: Vec<u16>,
    /// Whether `groups` is in the server's order and the server decides.
    pub groups_ordered: bool,
}

impl Truth {
    /// Number of (protocol, suite) pairs.
    pub fn pairs(&self) -> usize {
        self.ciphers.values().map(Vec::len).sum()
    }

    /// Connections allowed: the floor (one per pair plus one refusal per
    /// protocol probed), one per group, the certificate hellos whose TLS 1.3
    /// flight hsscan decrypts, and [`SLACK`].
    pub fn connection_bound(&self) -> usize {
        self.pairs() + PROTOCOLS.len() + self.groups.len() + self.tls13_chain_hellos() + SLACK + SENDER + self.lanes()
    }

    /// [`LANES`] where the planner splits TLS 1.2.
    pub fn lanes(&self) -> usize {
        let tls12 = self.ciphers.get("TLSv1.2").map_or(0, Vec::len);
        if !self.server_order && tls12 >= SPLIT_FOUND {
            LANES
        } else {
            0
        }
    }

    /// SPEC §4: TLS 1.3 hides the chain, so a TLS 1.3 server costs one
    /// certificate hello, and a TLS 1.3-only one a second for its other
    /// key type.
    pub fn tls13_chain_hellos(&self) -> usize {
        let has = |p: &str| self.ciphers.get(p).is_some_and(|c| !c.is_empty());
        match (has("TLSv1.3"), has("TLSv1.2")) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => 2,
        }
    }

    fn sizes(&self) -> String {
        let per: Vec<String> = self.ciphers.iter().map(|(p, s)| format!("{p} {}", s.len())).collect();
        format!(
            "{} pairs ({}), {} groups",
            self.pairs(),
            per.join(", "),
            self.groups.len()
        )
    }
}

/// How strictly a [`Check`] holds a scan to the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The server answered every hello: the whole truth, every protocol
    /// `complete`.
    Exact,
    /// Some connections were sabotaged on the way: a protocol hsscan calls
    /// complete must equal the truth, one it does not must be named in
    /// `unsure`. Groups, preference and the connection count are not held.
    Partial,
}

/// Collects every difference between a [`Scan`] and a [`Truth`].
pub struct Check<'a> {
    name: &'static str,
    scan: &'a Scan,
    truth: &'a Truth,
    mode: Mode,
    problems: Vec<String>,
    /// What the failure message shows beside the problems: how the
    /// protocols hsscan did not call complete compare with the truth.
    notes: Vec<String>,
    /// Protocols whose trace belongs in the failure message.
    traced: BTreeSet<&'static str>,
}

impl<'a> Check<'a> {
    /// Compares protocols, suites per protocol (as sets, and in order when
    /// the server decides), server preference, `details[..].order`, groups,
    /// `complete` (every protocol settled: nothing here may be unsure) and
    /// the connection count.
    pub fn new(name: &'static str, scan: &'a Scan, truth: &'a Truth) -> Self {
        Self::allowing(name, scan, truth, 0)
    }

    /// [`Check::new`] with `extra` connections allowed beyond the bound
    /// (connections a test spoiled on purpose, and their retries).
    pub fn allowing(name: &'static str, scan: &'a Scan, truth: &'a Truth, extra: usize) -> Self {
        let mut c = Self::start(name, scan, truth, Mode::Exact);
        c.protocols();
        c.groups();
        c.connections(extra);
        c.completeness();
        c
    }

    /// The partial contract (SPEC §4) of a scan whose connections were
    /// sabotaged: for every protocol, either `complete` is true and
    /// `protocols`/`ciphers` equal the truth (a shorter list is never
    /// complete), or `complete` is false and `unsure` names the protocol.
    pub fn partial(name: &'static str, scan: &'a Scan, truth: &'a Truth) -> Self {
        let mut c = Self::start(name, scan, truth, Mode::Partial);
        c.protocols();
        c.completeness();
        c
    }

    fn start(name: &'static str, scan: &'a Scan, truth: &'a Truth, mode: Mode) -> Self {
        let mut problems = Vec::new();
        let r = &scan.record;
        if !r["enumeration"].is_object() {
            problems.push(format!(
                "the record has no enumeration object (enumeration {}, status {}, failure {}, quick {})",
                r["enumeration"], r["status"], r["failure"], r["quick"]
            ));
        }
        Self {
            name,
            scan,
            truth,
            mode,
            problems,
            notes: Vec::new(),
            traced: BTreeSet::new(),
        }
    }

    /// The shapes of `protocols`, `complete` and `unsure`, and, for an
    /// exact truth, every protocol complete.
    fn completeness(&mut self) {
        let e = self.scan.enumeration();
        match e["protocols"].as_object() {
            None => self.problems.push(format!(
                "enumeration.protocols is {}, not an object of the six protocols",
                e["protocols"]
            )),
            Some(map) => {
                for proto in PROTOCOLS {
                    match map.get(proto) {
                        Some(Value::Bool(_) | Value::Null) => {}
                        Some(other) => self
                            .problems
                            .push(format!("protocols.{proto} is {other}, not true, false or null")),
                        None => self.problems.push(format!("protocols.{proto} is missing")),
                    }
                }
            }
        }
        let unsure_ok = e["unsure"].is_array();
        if !unsure_ok {
            self.problems.push(format!(
                "enumeration.unsure is {}, not an array of {{protocol, reason}}",
                e["unsure"]
            ));
        }
        let complete = &e["complete"];
        if !complete.is_object() {
            self.problems.push(format!(
                "enumeration.complete is {complete}, not an object of the six protocols (each true or false)"
            ));
            return;
        }
        for proto in PROTOCOLS {
            let got = &complete[proto];
            let reasons = self.scan.unsure_of(proto);
            match got.as_bool() {
                Some(true) => {}
                Some(false) if self.mode == Mode::Exact => {
                    self.problems.push(format!(
                        "complete.{proto}: false, but this server answered every hello (truth: exact); unsure says {reasons:?}"
                    ));
                    self.traced.insert(proto);
                }
                Some(false) => {}
                None => {
                    self.problems
                        .push(format!("complete.{proto} is {got}, not true or false"));
                    self.traced.insert(proto);
                }
            }
            if got.as_bool() != Some(true) && unsure_ok && reasons.is_empty() {
                self.problems.push(format!(
                    "complete.{proto} is {got}, yet unsure names no reason for {proto}: {}",
                    e["unsure"]
                ));
            }
        }
    }

    fn protocols(&mut self) {
        let e = self.scan.enumeration();
        let partial = self.mode == Mode::Partial;
        for proto in PROTOCOLS {
            if partial && self.claims_complete(proto) != Some(true) {
                // Not claimed: `completeness` wants it named in `unsure`.
                self.note_unclaimed(proto);
                continue;
            }
            // In the partial contract only what hsscan calls complete is held.
            let claim = if partial {
                format!(" (and hsscan calls {proto} complete)")
            } else {
                String::new()
            };
            let want = self.truth.ciphers.get(proto);
            let got_supported = e["protocols"][proto].as_bool();
            if got_supported != Some(want.is_some()) {
                self.problems.push(format!(
                    "protocols.{proto}: hsscan says {}, truth {}{claim} (evidence: {})",
                    e["protocols"][proto],
                    want.is_some(),
                    e["details"][proto]["evidence"]
                ));
                self.traced.insert(proto);
            }
            let got = self.scan.ciphers(proto);
            let pref = &e["server_preference"][proto];
            let order = e["details"][proto]["order"].as_str().unwrap_or("(none)");
            let Some(want) = want else {
                if !got.is_empty() {
                    self.problems.push(format!(
                        "ciphers.{proto}: unsupported, yet hsscan lists {}{claim}",
                        hex_list(&got)
                    ));
                }
                if !pref.is_null() && !partial {
                    self.problems.push(format!(
                        "server_preference.{proto}: unsupported, yet hsscan says {pref}"
                    ));
                }
                continue;
            };
            let want_set: BTreeSet<u16> = want.iter().copied().collect();
            let got_set: BTreeSet<u16> = got.iter().copied().collect();
            if got_set != want_set || got.len() != got_set.len() {
                let missing: Vec<u16> = want.iter().copied().filter(|s| !got_set.contains(s)).collect();
                let extra: Vec<u16> = got.iter().copied().filter(|s| !want_set.contains(s)).collect();
                self.problems.push(format!(
                    "ciphers.{proto}: truth {} suites, hsscan {} ({} distinct); missing [{}], extra [{}]{claim}",
                    want.len(),
                    got.len(),
                    got_set.len(),
                    hex_list(&missing),
                    hex_list(&extra)
                ));
                self.traced.insert(proto);
            } else if self.truth.server_order && got != *want {
                self.problems.push(format!(
                    "ciphers.{proto}: right set, wrong order (the server decides){claim}:\n  truth  [{}]\n  hsscan [{}]",
                    hex_list(want),
                    hex_list(&got)
                ));
                self.traced.insert(proto);
            }
            if partial {
                continue;
            }
            // One suite cannot show who decides.
            let (want_pref, want_order) = match (want.len() >= 2, self.truth.server_order) {
                (false, _) => (Value::Null, "unknown"),
                (true, true) => (Value::Bool(true), "server"),
                (true, false) => (Value::Bool(false), "client"),
            };
            if *pref != want_pref {
                self.problems
                    .push(format!("server_preference.{proto}: hsscan {pref}, truth {want_pref}"));
                self.traced.insert(proto);
            }
            if order != want_order {
                self.problems
                    .push(format!("details.{proto}.order: hsscan {order:?}, truth {want_order:?}"));
                self.traced.insert(proto);
            }
        }
    }

    /// Whether hsscan calls `proto` complete. An enumeration-wide bool (the
    /// shape before SPEC §4 gave each protocol its own) counts for every
    /// protocol, so that its claims are still held to the truth; the shape
    /// itself is a problem of its own (`completeness`).
    fn claims_complete(&self, proto: &str) -> Option<bool> {
        let complete = &self.scan.enumeration()["complete"];
        complete.as_bool().or_else(|| complete[proto].as_bool())
    }

    /// How a protocol hsscan did not call complete compares with the truth.
    fn note_unclaimed(&mut self, proto: &'static str) {
        let e = self.scan.enumeration();
        let got = self.scan.ciphers(proto);
        let want = self.truth.ciphers.get(proto);
        let found = want.map_or(0, |w| got.iter().filter(|s| w.contains(s)).count());
        self.notes.push(format!(
            "{proto}: complete {}, protocols {} (truth {}), {} suites listed, {found} of the truth's {}; unsure {:?}",
            e["complete"][proto],
            e["protocols"][proto],
            want.is_some(),
            got.len(),
            want.map_or(0, Vec::len),
            self.scan.unsure_of(proto)
        ));
        self.traced.insert(proto);
    }

    /// The exit code: 0 for an exact truth; under the partial contract 0
    /// exactly when the status is `negotiated` and all six protocols are
    /// complete, else 1.
    pub fn exit_code(&mut self) -> &mut Self {
        // SPEC §2: 0 when the headline sender gets TLS and the result is
        // complete; the headline's own outcome is checked against the real
        // sender in the sender tests.
        let tls = self.scan.record["verdict"]["outcome"] == "tls";
        let want = if tls && self.scan.all_complete() { 0 } else { 1 };
        if self.scan.code != Some(want) {
            let complete: Vec<String> = PROTOCOLS
                .iter()
                .map(|p| format!("{p} {}", self.scan.enumeration()["complete"][p]))
                .collect();
            self.problems.push(format!(
                "exit code {:?}, want {want} (verdict {}, status {}, complete: {})",
                self.scan.code,
                self.scan.record["verdict"],
                self.scan.record["status"],
                complete.join(", ")
            ));
        }
        self
    }

    /// A difference a test found on its own.
    pub fn problem(&mut self, text: String) -> &mut Self {
        self.problems.push(text);
        self
    }

    /// The scan's own hellos negotiated: `status` is `negotiated`.
    pub fn negotiated(&mut self) -> &mut Self {
        let r = &self.scan.record;
        if r["status"] != "negotiated" {
            self.problems.push(format!(
                "status: hsscan {}, truth \"negotiated\" (failure {})",
                r["status"], r["failure"]
            ));
        }
        self
    }

    /// The quick check's modern hello got a result (`quick.modern.result`
    /// not null): it followed a HelloRetryRequest when it drew one.
    pub fn modern_result(&mut self) -> &mut Self {
        let m = &self.scan.record["quick"]["modern"];
        if m["result"].is_null() {
            self.problems.push(format!(
                "quick.modern.result is null (offered {}, failure {})",
                m["offered"], m["failure"]
            ));
        }
        self
    }

    fn groups(&mut self) {
        let got = self.scan.groups();
        let want = &self.truth.groups;
        let got_set: BTreeSet<u16> = got.iter().copied().collect();
        let want_set: BTreeSet<u16> = want.iter().copied().collect();
        if got_set != want_set || got.len() != got_set.len() {
            self.problems.push(format!(
                "groups: truth [{}], hsscan [{}]",
                hex_list(want),
                hex_list(&got)
            ));
        } else if self.truth.groups_ordered && got != *want {
            self.problems.push(format!(
                "groups: right set, wrong order (the server decides): truth [{}], hsscan [{}]",
                hex_list(want),
                hex_list(&got)
            ));
        }
    }

    fn connections(&mut self, extra: usize) {
        let got = self.scan.connections();
        let bound = self.truth.connection_bound() + extra;
        if usize::try_from(got).map_or(true, |g| g > bound) {
            self.problems.push(format!(
                "connections {got} > bound {bound} = {} pairs + {} protocols + {} groups + {} TLS 1.3 certificate hellos + {SLACK} + {SENDER} sender + {} lanes + {extra} spoiled; {}",
                self.truth.pairs(),
                PROTOCOLS.len(),
                self.truth.groups.len(),
                self.truth.tls13_chain_hellos(),
                self.truth.lanes(),
                self.per_protocol_connections()
            ));
        }
    }

    fn per_protocol_connections(&self) -> String {
        let e = self.scan.enumeration();
        let per: Vec<String> = PROTOCOLS
            .iter()
            .map(|p| format!("{p} {}", e["details"][p]["connections"]))
            .collect();
        let sum: u64 = PROTOCOLS
            .iter()
            .filter_map(|p| e["details"][p]["connections"].as_u64())
            .sum();
        format!(
            "per protocol: {} (sum {sum}; the other {} went to the quick check, groups, fallback SCSV)",
            per.join(", "),
            self.scan.connections().saturating_sub(sum)
        )
    }

    /// `features.<name>` must be `want`.
    pub fn feature(&mut self, name: &str, want: bool) -> &mut Self {
        let got = self.scan.feature(name);
        if *got != Value::Bool(want) {
            self.problems
                .push(format!("features.{name}: hsscan {got}, truth {want}"));
        }
        self
    }

    /// `dh_bits` must be `want`.
    pub fn dh_bits(&mut self, want: u64) -> &mut Self {
        let got = &self.scan.enumeration()["dh_bits"];
        if got.as_u64() != Some(want) {
            self.problems.push(format!("dh_bits: hsscan {got}, truth {want}"));
        }
        self
    }

    /// Prints the numbers (visible with `--nocapture`) and fails the test
    /// with every difference found.
    pub fn finish(&mut self, server: &Server) {
        self.finish_with_log(&server.log());
    }

    /// [`Check::finish`] with the server's log given as text.
    pub fn finish_with_log(&mut self, log: &str) {
        let e = self.scan.enumeration();
        let summary = format!(
            "[{}] truth: {}; hsscan: {} connections (bound {}), {}, complete {}, unsure {}, exit code {:?}",
            self.name,
            self.truth.sizes(),
            self.scan.connections(),
            self.truth.connection_bound(),
            self.per_protocol_connections(),
            e["complete"],
            e["unsure"],
            self.scan.code
        );
        eprintln!("{summary}");
        if self.problems.is_empty() {
            return;
        }
        let mut msg = format!(
            "{summary}\n`{}` differs from the truth:\n- {}\n",
            self.scan.command,
            self.problems.join("\n- ")
        );
        let truth: Vec<String> = self
            .truth
            .ciphers
            .iter()
            .map(|(p, suites)| format!("{p} [{}]", hex_list(suites)))
            .collect();
        msg.push_str(&format!(
            "--- truth ({} order) ---\n{}\ngroups [{}]\n",
            if self.truth.server_order { "server" } else { "client" },
            truth.join("\n"),
            hex_list(&self.truth.groups)
        ));
        if !self.notes.is_empty() {
            msg.push_str(&format!(
                "--- not claimed complete (held to nothing but unsure) ---\n{}\n",
                self.notes.join("\n")
            ));
        }
        if !e.is_object() {
            msg.push_str(&format!("--- trace ({} lines) ---\n", self.scan.trace.len()));
            for l in self.scan.trace.iter().take(80) {
                msg.push_str(l);
                msg.push('\n');
            }
        }
        for proto in &self.traced {
            let lines = self.scan.trace_of(proto);
            if lines.is_empty() {
                continue;
            }
            msg.push_str(&format!("--- trace of {proto} ({} hellos) ---\n", lines.len()));
            for l in lines.iter().take(80) {
                msg.push_str(l);
                msg.push('\n');
            }
        }
        msg.push_str(&format!(
            "--- details ---\n{:#}\n--- features, dh_bits ---\n{} {}\n{}",
            e["details"], e["features"], e["dh_bits"], log
        ));
        panic!("{msg}");
    }
}
