//! A private network namespace per test (SPEC §6: "network namespaces the
//! tests create themselves"), for peers that use the system resolver:
//! Postfix's smtp client reads /etc/resolv.conf, so a test that needs it
//! to ask the lab's validating resolver runs it where that file says so.
//!
//! `ip netns exec NAME` enters the namespace and bind-mounts
//! `/etc/netns/NAME/resolv.conf` over /etc/resolv.conf for the program it
//! runs (and everything that program starts). The file names 127.0.0.1 —
//! the namespace's own loopback, where the lab's unbound listens on port
//! 53 — with `options trust-ad`, without which glibc clears the AD bit
//! before Postfix sees it. Inside, only the namespace's loopback exists:
//! nothing there can reach the machine's resolver or the internet.
//!
//! The namespace is deleted when the guard drops; namespaces left by test
//! processes that died unguarded are deleted by the next run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Tool;

pub const IP: Tool = Tool {
    program: "ip",
    install: "install the Debian package `iproute2` (apt-get install iproute2); `bash .ci/run` does",
};

const PREFIX: &str = "hsscan-it-";

/// How long a TCP listener inside the namespace may take to come up.
const LISTEN_WINDOW: Duration = Duration::from_secs(20);

/// The `ip` command: on PATH, else in /usr/sbin (a non-root PATH may lack it).
pub fn ip_program() -> PathBuf {
    for p in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    IP.require()
}

/// A network namespace with its loopback up and a resolv.conf naming it.
pub struct Netns {
    pub name: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip_program())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn etc_dir(name: &str) -> PathBuf {
    Path::new("/etc/netns").join(name)
}

impl Netns {
    /// Creates the namespace `hsscan-it-PID-TAG`; panics, saying why, when
    /// namespaces cannot be made here (they need root, or CAP_SYS_ADMIN).
    pub fn new(tag: &str) -> Self {
        remove_stale();
        let name = format!("{PREFIX}{}-{tag}", std::process::id());
        // A namespace of the same name from an earlier test of this process.
        let _ = run(&["netns", "del", &name]);
        run(&["netns", "add", &name])
            .unwrap_or_else(|e| panic!("cannot create a network namespace ({e}); these tests run as root, as CI does"));
        let ns = Self { name };
        run(&["-n", &ns.name, "link", "set", "lo", "up"]).unwrap_or_else(|e| panic!("{e}"));
        let etc = etc_dir(&ns.name);
        fs::create_dir_all(&etc).unwrap_or_else(|e| panic!("create {}: {e}", etc.display()));
        fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\noptions trust-ad\n")
            .unwrap_or_else(|e| panic!("write {}/resolv.conf: {e}", etc.display()));
        ns
    }

    /// `ip netns exec NAME program`: a command that runs inside.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(ip_program());
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Waits until something inside accepts TCP connections on
    /// 127.0.0.1:`port` (bash's /dev/tcp, one connection per try).
    pub fn wait_for_listener(&self, port: u16, what: impl Fn() -> String) {
        let start = Instant::now();
        loop {
            let ok = self
                .command("bash")
                .arg("-c")
                .arg(format!(": </dev/tcp/127.0.0.1/{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                start.elapsed() < LISTEN_WINDOW,
                "nothing listens on 127.0.0.1:{port} in namespace {} within {LISTEN_WINDOW:?}\n{}",
                self.name,
                what()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["netns", "del", &self.name]);
        let _ = fs::remove_dir_all(etc_dir(&self.name));
    }
}

/// Namespaces of test processes that are gone: deleted.
fn remove_stale() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir("/var/run/netns") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let _ = run(&["netns", "del", &name]);
            let _ = fs::remove_dir_all(etc_dir(&name));
        }
    });
}
