//! A throwaway Postfix per test: its own config, queue and data
//! directories under the temp dir, one `smtpd` listening on 127.0.0.N:PORT
//! (N differs per instance, PORT is a free high port), delivering nothing,
//! logging to a file, and stopped when the guard drops.
//!
//! How it runs (Debian 12, Postfix 3.7, as root):
//! - `postfix -c DIR start` needs no `alternate_config_directories` in a
//!   default main.cf when run by root (there is no default main.cf at all
//!   after a "No configuration" install);
//! - `inet_interfaces` only accepts addresses configured on an interface,
//!   so it says `loopback-only` and the smtpd line in master.cf names its
//!   own 127.0.0.N:PORT, which master binds as written;
//! - `maillog_file` must lie under `maillog_file_prefixes` (default `/var`)
//!   and needs the `postlog` service; `data_directory` must belong to the
//!   mail owner; every directory on the way must be traversable by it;
//! - smtpd opens `proxy:` maps for local recipients and aliases at start
//!   unless they are empty, and mails the postmaster on problems unless
//!   `notify_classes` is empty: both are emptied, so master.cf needs only
//!   smtpd, anvil (rate limits), tlsmgr and postlog;
//! - `smtpd_peername_lookup = no` keeps smtpd from asking DNS about the
//!   client: nothing leaves the machine.
//!
//! `postfix start` returns once master has bound its sockets (`master -w`),
//! so no probe connection is needed (it would count against rate limits).
//!
//! [`Postfix::start_relay`] adds the queue and the smtp client to master.cf
//! (Debian's services, unchrooted, no local delivery), so that mail
//! submitted to the smtpd is delivered to a `relayhost` the test names.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::netns::Netns;
use crate::support::{certs, Tool};

pub const POSTFIX: Tool = Tool {
    program: "postfix",
    install: "install the Debian package `postfix` (echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; apt-get install postfix), as .ci/run does",
};

/// The `myhostname` of every instance: the banner is `220 mx.test.example ESMTP Postfix`.
pub const HOSTNAME: &str = "mx.test.example";

/// How long `postfix start` or `postfix stop` may take before the test
/// gives up on it (a start takes about 0.25 s here).
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// How long a test waits for an expected line in the log.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// How many times a start is retried on another port when the free port
/// was taken before master could bind it.
const PORT_ATTEMPTS: usize = 3;

const DIR_PREFIX: &str = "hsscan-it-postfix-";

/// The `postfix` command: on PATH, else where Debian puts it (a PATH
/// without /usr/sbin must not make the test claim Postfix is missing).
fn postfix_program() -> PathBuf {
    let sbin = Path::new("/usr/sbin/postfix");
    if sbin.is_file() {
        return sbin.to_path_buf();
    }
    POSTFIX.require()
}

/// A distinct loopback address per instance in this process: 127.0.0.20,
/// .21, … (wrapping before .250). Another process may pick the same one;
/// the port keeps them apart.
fn next_ip() -> Ipv4Addr {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst) % 230;
    Ipv4Addr::new(127, 0, 0, 20 + n)
}

/// A port that was free on `ip` a moment ago.
fn free_port_on(ip: Ipv4Addr) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    l.local_addr().expect("local_addr").port()
}

/// A running Postfix instance; stopped (and its process group killed if it
/// lingers) when dropped.
pub struct Postfix {
    pub ip: Ipv4Addr,
    pub port: u16,
    dir: PathBuf,
    /// How long `postfix start` took.
    pub started_in: Duration,
    master_pid: Option<u32>,
}

impl Postfix {
    /// Starts an instance with the default settings (STARTTLS offered with
    /// the RSA leaf and the intermediate), `overrides` replacing or adding
    /// main.cf parameters.
    pub fn start(overrides: &[(&str, &str)]) -> Self {
        Self::start_with(overrides, Services::Receive, None, None)
    }

    /// [`Postfix::start`] listening on `port` of its 127.0.0.x address
    /// (bulk MX tests put every MX host on one port).
    pub fn start_on_port(port: u16, overrides: &[(&str, &str)]) -> Self {
        Self::start_with(overrides, Services::Receive, Some(port), None)
    }

    /// Starts an instance that also queues and delivers: the smtpd of
    /// [`Postfix::start`] plus Debian's delivery services in master.cf
    /// (cleanup, qmgr, trivial-rewrite, bounce, smtp, …; no local delivery),
    /// so mail submitted to its smtpd leaves through its smtp client.
    /// `overrides` say where it goes, e.g. `relayhost = [127.0.0.1]:PORT`,
    /// and who may relay (`mynetworks`).
    pub fn start_relay(overrides: &[(&str, &str)]) -> Self {
        Self::start_with(overrides, Services::Relay, None, None)
    }

    /// [`Postfix::start_relay`] inside the network namespace `netns`
    /// (`ip netns exec`: master and every daemon it starts live there, and
    /// their system resolver is the one the namespace's resolv.conf
    /// names), its smtpd on `port` (a namespace has every port free: an
    /// MX there may listen on 25). Mail is submitted with
    /// [`Postfix::sendmail`], which needs no network.
    pub fn start_relay_in(netns: &Netns, port: u16, overrides: &[(&str, &str)]) -> Self {
        Self::start_with(overrides, Services::Relay, Some(port), Some(netns))
    }

    /// [`Postfix::start`] on `ip` (a free port of it) instead of the next
    /// 127.0.0.x: a receiver on 127.0.0.1, whose address the test leaf's
    /// IP SAN names.
    pub fn start_at(ip: Ipv4Addr, overrides: &[(&str, &str)]) -> Self {
        Self::start_full(overrides, Services::Receive, None, None, Some(ip))
    }

    fn start_with(
        overrides: &[(&str, &str)],
        services: Services,
        fixed_port: Option<u16>,
        netns: Option<&Netns>,
    ) -> Self {
        Self::start_full(overrides, services, fixed_port, netns, None)
    }

    fn start_full(
        overrides: &[(&str, &str)],
        services: Services,
        fixed_port: Option<u16>,
        netns: Option<&Netns>,
        fixed_ip: Option<Ipv4Addr>,
    ) -> Self {
        let program = postfix_program();
        remove_stale_instances(&program);
        let ip = fixed_ip.unwrap_or_else(next_ip);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{ip}-{nanos}", std::process::id()));
        for sub in ["conf", "queue", "data"] {
            fs::create_dir_all(dir.join(sub)).unwrap_or_else(|e| panic!("create {}/{sub}: {e}", dir.display()));
        }
        chown_to_postfix(&dir.join("data"));
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = fixed_port.unwrap_or_else(|| free_port_on(ip));
            write_config(&dir, ip, port, overrides, services);
            // Each attempt's log on its own, so an old bind error is not read twice.
            let _ = fs::remove_file(dir.join("maillog"));
            let begun = Instant::now();
            let mut start = match netns {
                Some(ns) => ns.command(&program),
                None => Command::new(&program),
            };
            let out = run_bounded(start.arg("-c").arg(dir.join("conf")).arg("start"));
            let started_in = begun.elapsed();
            if out.status.success() {
                let master_pid = fs::read_to_string(dir.join("queue/pid/master.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                return Self {
                    ip,
                    port,
                    dir,
                    started_in,
                    master_pid,
                };
            }
            // A start that failed late (or ran out of time) may leave master running.
            let master_pid = fs::read_to_string(dir.join("queue/pid/master.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            stop(&program, &dir, master_pid);
            let log = fs::read_to_string(dir.join("maillog")).unwrap_or_default();
            last_failure = format!(
                "postfix -c {}/conf start failed ({}):\n{}{}\n--- maillog ---\n{log}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            if !log.contains("Address already in use") {
                break;
            }
        }
        panic!(
            "{last_failure}\n(postfix prints configuration errors only to a terminal: run the command above by hand)"
        );
    }

    /// The configuration directory (MAIL_CONFIG for postconf, postmap, …).
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("conf")
    }

    /// Sets main.cf parameters (`postconf -e`) and reloads the instance.
    pub fn reconfigure(&self, settings: &[(&str, &str)]) {
        let sbin = |name: &str| {
            let p = Path::new("/usr/sbin").join(name);
            if p.is_file() {
                p
            } else {
                PathBuf::from(name)
            }
        };
        for (k, v) in settings {
            let out = run_bounded(
                Command::new(sbin("postconf"))
                    .arg("-c")
                    .arg(self.conf_dir())
                    .arg("-e")
                    .arg(format!("{k}={v}")),
            );
            assert!(
                out.status.success(),
                "postconf -e {k}={v}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = run_bounded(
            Command::new(postfix_program())
                .arg("-c")
                .arg(self.conf_dir())
                .arg("reload"),
        );
        assert!(
            out.status.success(),
            "postfix reload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postmap` of a lookup table in the configuration directory.
    pub fn postmap(&self, table: &Path) {
        let p = Path::new("/usr/sbin/postmap");
        let program = if p.is_file() {
            p.to_path_buf()
        } else {
            PathBuf::from("postmap")
        };
        let out = run_bounded(Command::new(program).arg("-c").arg(self.conf_dir()).arg(table));
        assert!(
            out.status.success(),
            "postmap {}: {}",
            table.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Submits a message from `from` to `to` with this instance's
    /// `sendmail` (postdrop into its maildrop queue: no network, so it
    /// works from outside the instance's namespace too).
    pub fn sendmail(&self, from: &str, to: &str, subject: &str) {
        let p = Path::new("/usr/sbin/sendmail");
        let program = if p.is_file() {
            p.to_path_buf()
        } else {
            PathBuf::from("sendmail")
        };
        let mut child = Command::new(program)
            .arg("-C")
            .arg(self.conf_dir())
            .args(["-f", from, "--", to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sendmail: {e}"));
        let message = format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nA test message.\r\n");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(message.as_bytes()).expect("write to sendmail");
        }
        let out = child.wait_with_output().expect("sendmail runs");
        assert!(
            out.status.success(),
            "sendmail -C {} {to}: {}{}\n{}",
            self.conf_dir().display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// `ip:port` as hsscan takes it.
    pub fn target(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The instance's log so far, for failure messages.
    pub fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.join("maillog")).unwrap_or_default();
        format!("--- postfix {} maillog ---\n{text}", self.dir.display())
    }

    /// The log once `done` holds for it, or after [`LOG_WINDOW`]: smtpd
    /// hands its lines to postlogd, which writes them a little later, so a
    /// line about a session may land after the client has gone.
    pub fn log_when(&self, done: impl Fn(&str) -> bool) -> String {
        self.log_when_within(LOG_WINDOW, done)
    }

    /// [`Postfix::log_when`] waiting at most `window` (a delivery through
    /// the queue takes longer than a line about a session).
    pub fn log_when_within(&self, window: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if done(&log) || start.elapsed() > window {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        stop(&postfix_program(), &self.dir, self.master_pid);
        // Keep the log of a failed test for a look; the next run removes it.
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `postfix stop`, then SIGKILL to master's process group (master calls
/// setsid, so its pid is the group id) if master is still there.
fn stop(program: &Path, dir: &Path, master_pid: Option<u32>) {
    let _ = run_bounded(Command::new(program).arg("-c").arg(dir.join("conf")).arg("stop"));
    if let Some(pid) = master_pid {
        if is_postfix_master(pid) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .arg(format!("-{pid}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether `pid` is a live (not zombie) Postfix master.
fn is_postfix_master(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) state …"
    let Some((head, state)) = stat.split_once(") ") else {
        return false;
    };
    head.ends_with("(master") && !state.starts_with('Z')
}

/// Instances left behind by test processes that died without dropping
/// their guards (a SIGKILL): stopped and removed.
fn remove_stale_instances(program: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let dir = entry.path();
            let master = fs::read_to_string(dir.join("queue/pid/master.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            stop(program, &dir, master);
            let _ = fs::remove_dir_all(&dir);
        }
    });
}

/// Runs a command with no stdin and waits at most [`COMMAND_DEADLINE`].
fn run_bounded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + COMMAND_DEADLINE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"))
}

fn chown_to_postfix(path: &Path) {
    let out = run_bounded(Command::new("chown").arg("postfix").arg(path));
    assert!(
        out.status.success(),
        "chown postfix {}: {}{} (is the `postfix` user there? {})",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        POSTFIX.install
    );
}

/// What master.cf runs besides the smtpd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Services {
    /// anvil, tlsmgr and postlog: the smtpd receives and delivers nothing.
    Receive,
    /// Also the queue and the smtp client, as in Debian's master.cf.
    Relay,
}

/// The delivery services of Debian's Postfix 3.7 master.cf, unchrooted,
/// without the local, virtual, lmtp and pipe transports (`mydestination`
/// is empty, so nothing is delivered locally).
const RELAY_SERVICES: &str = "\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
scache unix - - n - 1 scache
";

/// Writes main.cf and master.cf for an smtpd on `ip:port`.
fn write_config(dir: &Path, ip: Ipv4Addr, port: u16, overrides: &[(&str, &str)], services: Services) {
    let d = dir.display();
    let c = certs().display();
    let mut main: Vec<(String, String)> = [
        ("compatibility_level", "3.6".to_owned()),
        ("queue_directory", format!("{d}/queue")),
        ("data_directory", format!("{d}/data")),
        ("mail_owner", "postfix".to_owned()),
        ("setgid_group", "postdrop".to_owned()),
        ("inet_interfaces", "loopback-only".to_owned()),
        ("inet_protocols", "ipv4".to_owned()),
        ("myhostname", HOSTNAME.to_owned()),
        ("mydestination", String::new()),
        ("local_recipient_maps", String::new()),
        ("alias_maps", String::new()),
        ("alias_database", String::new()),
        ("notify_classes", String::new()),
        ("biff", "no".to_owned()),
        ("smtpd_peername_lookup", "no".to_owned()),
        ("maillog_file_prefixes", d.to_string()),
        ("maillog_file", format!("{d}/maillog")),
        ("syslog_name", format!("hsscan-it-{ip}-{port}")),
        ("smtpd_tls_cert_file", format!("{c}/rsa-chain.pem")),
        ("smtpd_tls_key_file", format!("{c}/rsa.key")),
        ("smtpd_tls_security_level", "may".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        match main.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = (*v).to_owned(),
            None => main.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    let main_cf: String = main.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let mut master_cf = format!(
        "# service type private unpriv chroot wakeup maxproc command\n\
         {ip}:{port} inet n - n - - smtpd\n\
         anvil unix - - n - 1 anvil\n\
         tlsmgr unix - - n 1000? 1 tlsmgr\n\
         postlog unix-dgram n - n - 1 postlogd\n"
    );
    if services == Services::Relay {
        master_cf.push_str(RELAY_SERVICES);
    }
    for (name, text) in [("main.cf", main_cf), ("master.cf", master_cf)] {
        crate::support::write_postfix_file(&dir.join("conf").join(name), &text);
    }
}
