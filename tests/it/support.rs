//! Shared machinery for the integration tests: finding the peer programs,
//! test certificates, server processes that die with the test, and one
//! ClientHello exchange read through the wire crate's deframer.
//!
//! Everything here talks to loopback only. Every wait is bounded: a
//! connect is retried for at most [`CONNECT_WINDOW`], a read waits at most
//! [`READ_TIMEOUT`], and a whole exchange ends after [`EXCHANGE_DEADLINE`].
//! Timing only bounds how long a test may hang; it never decides a result.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hsscan_wire::catalog;
use hsscan_wire::server_hello::Downgrade;
use hsscan_wire::{
    Alert, CipherSuite, ClientHello, Deframer, Event, ExtensionType, Framing, ProtocolVersion, ServerExtension,
    ServerHello, Side,
};

/// How long a server may take to start listening.
pub const CONNECT_WINDOW: Duration = Duration::from_secs(5);
/// How long one read may wait for the server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole exchange may take, however the server trickles bytes.
pub const EXCHANGE_DEADLINE: Duration = Duration::from_secs(10);

/// A peer program and where to get it when it is missing.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

pub const OPENSSL: Tool = Tool {
    program: "openssl",
    install: "install the Debian package `openssl` (apt-get install openssl)",
};
pub const GNUTLS_SERV: Tool = Tool {
    program: "gnutls-serv",
    install: "install the Debian package `gnutls-bin` (apt-get install gnutls-bin)",
};
pub const TLSLITE: Tool = Tool {
    program: "tls.py",
    install: "install tlslite-ng into a virtual environment and put its bin/ first on PATH (`bash .ci/run` does both)",
};

impl Tool {
    /// The program's path on `PATH`; panics (fails the test, never skips)
    /// naming the package to install when it is missing.
    pub fn require(self) -> PathBuf {
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(self.program))
                .find(|p| p.is_file())
        });
        match found {
            Some(p) => p,
            None => panic!(
                "`{}` is not on PATH; this test needs it as a real TLS peer: {}",
                self.program, self.install
            ),
        }
    }
}

/// The test PKI of `tests/support/mkcerts.sh`, generated once per test
/// process into its own directory under the system temp dir.
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        OPENSSL.require();
        remove_stale_cert_dirs();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("{CERT_DIR_PREFIX}{}-{nanos}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mkcerts.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} {} failed ({}):\n{}{}",
            script.display(),
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

const CERT_DIR_PREFIX: &str = "hsscan-it-certs-";

/// The test harness has no end-of-run hook, so each run's certificate
/// directory outlives it; the next run removes those of dead processes.
fn remove_stale_cert_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(CERT_DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes a Postfix configuration file (`main.cf`, `master.cf`) dated a
/// minute back, atomically: every Postfix program (posttls-finger, postconf,
/// the daemons) rereads a main.cf modified within the last second or two
/// until it is older, dozing 300 ms a time. A file rewritten by parallel
/// tests never got old: posttls-finger runs that take 1 s alone took 4 to
/// 30 s. Same content already there and old: left alone.
pub fn write_postfix_file(path: &Path, text: &str) {
    let past = SystemTime::now() - Duration::from_secs(60);
    let old = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t <= past);
    if fs::read_to_string(path).is_ok_and(|t| t == text) && old(path) {
        return;
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    File::options()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_modified(past))
        .unwrap_or_else(|e| panic!("date {} back: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), path.display()));
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A server process that is killed and reaped when the guard drops, even
/// when the test panics.
pub struct Server {
    name: &'static str,
    program: PathBuf,
    /// The command line for a given port.
    args: Box<dyn Fn(u16) -> Vec<String>>,
    pub port: u16,
    child: Child,
    /// Held open so that servers reading stdin never see end of file
    /// (`openssl s_server` quits on it).
    _stdin: Option<ChildStdin>,
    log: PathBuf,
}

/// How many times a server is restarted on another port when the one
/// picked by [`free_port`] was taken before the server could bind it.
const PORT_ATTEMPTS: usize = 3;

impl Server {
    /// Starts `program args(port)…` on a free port, with stdout and stderr
    /// going to a log file next to the certificates.
    pub fn start(name: &'static str, tool: Tool, args: impl Fn(u16) -> Vec<String> + 'static) -> Self {
        Self::start_program(name, tool.require(), args)
    }

    /// Starts a program given by path (e.g. the hsscan binary under test).
    pub fn start_program(name: &'static str, program: PathBuf, args: impl Fn(u16) -> Vec<String> + 'static) -> Self {
        let port = free_port();
        let (child, stdin, log) = spawn(name, &program, port, &args(port));
        Self {
            name,
            program,
            args: Box::new(args),
            port,
            child,
            _stdin: stdin,
            log,
        }
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What the server printed so far, for failure messages.
    pub fn log(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: String = text
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "--- {} ({} {}) output (tail) ---\n{tail}",
            self.name,
            self.program.display(),
            (self.args)(self.port).join(" ")
        )
    }

    /// Connects to the server on 127.0.0.1, retrying while it starts up.
    /// The connection that succeeds is the test's own, so no probe
    /// connection ever reaches the server.
    pub fn connect(&mut self) -> TcpStream {
        let mut attempts = 1;
        let mut start = Instant::now();
        loop {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => return s,
                Err(e) => {
                    let exited = self.child.try_wait().ok().flatten();
                    // gnutls-serv goes on with IPv6 alone when the IPv4 bind fails.
                    let port_taken = fs::read_to_string(&self.log).is_ok_and(|l| l.contains("Address already in use"));
                    if port_taken && attempts < PORT_ATTEMPTS {
                        // Something took the port between free_port() and the server's bind.
                        attempts += 1;
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        self.port = free_port();
                        let (child, stdin, log) = spawn(self.name, &self.program, self.port, &(self.args)(self.port));
                        (self.child, self._stdin, self.log) = (child, stdin, log);
                        start = Instant::now();
                        continue;
                    }
                    if let Some(status) = exited {
                        panic!("server exited ({status}) before accepting a connection\n{}", self.log());
                    }
                    if start.elapsed() > CONNECT_WINDOW {
                        panic!(
                            "cannot connect to {addr} within {CONNECT_WINDOW:?}: {e}\n{}",
                            self.log()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Sends `writes` on a new connection and reads the server's answer.
    pub fn exchange(&mut self, writes: &[Vec<u8>]) -> Flight {
        let stream = self.connect();
        match exchange_on(stream, writes) {
            Ok(f) => f,
            Err(e) => panic!("{e}\n{}", self.log()),
        }
    }

    /// Sends one ClientHello record and reads the answer.
    pub fn hello(&mut self, hello: &ClientHello, record_version: ProtocolVersion) -> Flight {
        let record = hello.to_record(record_version).expect("encode ClientHello");
        self.exchange(&[record])
    }
}

/// `openssl s_server` on 127.0.0.1 with the test RSA leaf and its
/// intermediate, plus `extra` arguments.
pub fn openssl_s_server(name: &'static str, extra: &[&str]) -> Server {
    let dir = certs();
    let path = move |f: &str| dir.join(f).display().to_string();
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    Server::start(name, OPENSSL, move |port| {
        let mut args: Vec<String> = vec![
            "s_server".into(),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            "-cert".into(),
            path("rsa.pem"),
            "-cert_chain".into(),
            path("int.pem"),
            "-key".into(),
            path("rsa.key"),
        ];
        args.extend(extra.iter().cloned());
        args
    })
}

/// Spawns one server process; its stdout and stderr go to a log file.
fn spawn(name: &str, program: &Path, port: u16, args: &[String]) -> (Child, Option<ChildStdin>, PathBuf) {
    let log = certs().join(format!("{name}-{port}.log"));
    let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().expect("clone log file handle");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(certs())
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stdin = child.stdin.take();
    (child, stdin, log)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the read loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A ServerHelloDone, HelloRetryRequest, TLS 1.3 ServerHello or alert.
    Stop,
    /// The server closed the connection.
    Eof,
    /// The server reset the connection.
    Reset,
}

/// What the server sent, decoded.
#[derive(Debug)]
pub struct Flight {
    pub events: Vec<Event>,
    pub end: End,
    /// Bytes received, for failure messages and codec bug reports.
    pub bytes: Vec<u8>,
}

impl Flight {
    pub fn server_hello(&self) -> Option<&ServerHello> {
        self.events.iter().find_map(|e| match e {
            Event::ServerHello(h) => Some(h),
            _ => None,
        })
    }

    pub fn retry_request(&self) -> Option<&ServerHello> {
        self.events.iter().find_map(|e| match e {
            Event::HelloRetryRequest(h) => Some(h),
            _ => None,
        })
    }

    pub fn alert(&self) -> Option<Alert> {
        self.events.iter().find_map(|e| match e {
            Event::Alert(a) => Some(*a),
            _ => None,
        })
    }

    /// The ServerHello; panics with the whole flight when there is none.
    pub fn expect_server_hello(&self) -> &ServerHello {
        self.server_hello()
            .unwrap_or_else(|| panic!("expected a ServerHello, got {}", self.describe()))
    }

    pub fn describe(&self) -> String {
        format!(
            "events {:?}, ended by {:?}, {} bytes: {}",
            self.events,
            self.end,
            self.bytes.len(),
            hsscan_wire::hex(&self.bytes)
        )
    }
}

/// Whether `e` ends the server's first flight as far as a probe cares.
fn ends_flight(e: &Event) -> bool {
    match e {
        Event::ServerHelloDone | Event::HelloRetryRequest(_) | Event::Alert(_) => true,
        Event::ServerHello(h) => h.selected_version() == ProtocolVersion::TLS13,
        _ => false,
    }
}

/// Writes `writes` in order (each flushed; a short pause between them so
/// they tend to leave as separate segments, which the result must not
/// depend on), then reads and decodes until the flight ends.
fn exchange_on(mut stream: TcpStream, writes: &[Vec<u8>]) -> Result<Flight, String> {
    stream.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    stream
        .set_write_timeout(Some(READ_TIMEOUT))
        .map_err(|e| format!("set_write_timeout: {e}"))?;
    for (i, w) in writes.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
        stream.write_all(w).map_err(|e| format!("write {i}: {e}"))?;
        stream.flush().map_err(|e| format!("flush {i}: {e}"))?;
    }
    let mut deframer = Deframer::new(Side::Server);
    let mut flight = Flight {
        events: Vec::new(),
        end: End::Eof,
        bytes: Vec::new(),
    };
    let deadline = Instant::now() + EXCHANGE_DEADLINE;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "no end of flight within {EXCHANGE_DEADLINE:?}: {}",
                flight.describe()
            ));
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                flight.end = End::Eof;
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                flight.end = End::Reset;
                break;
            }
            Err(e) => return Err(format!("read: {e} after {}", flight.describe())),
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        flight.bytes.extend_from_slice(chunk);
        deframer
            .push(chunk)
            .map_err(|e| format!("deframer refused bytes: {e:?}; {}", flight.describe()))?;
        let mut stop = false;
        loop {
            match deframer.next_event() {
                Ok(Some(e)) => {
                    stop |= ends_flight(&e);
                    flight.events.push(e);
                }
                Ok(None) => break,
                Err(e) => return Err(format!("decode error {e:?}; {}", flight.describe())),
            }
        }
        if stop {
            flight.end = End::Stop;
            break;
        }
    }
    if flight.end != End::Stop && !deframer.unconsumed().is_empty() {
        return Err(format!(
            "connection ended inside a record ({} bytes left over); {}",
            deframer.unconsumed().len(),
            flight.describe()
        ));
    }
    Ok(flight)
}

/// A fixed ClientHello random: results must not depend on randomness, and
/// a failing exchange can be replayed byte for byte.
pub fn random(tag: u8) -> [u8; 32] {
    let mut r = [0u8; 32];
    for (i, b) in r.iter_mut().enumerate() {
        *b = tag ^ u8::try_from(i).unwrap_or(0).wrapping_mul(37);
    }
    r
}

/// Every suite the catalog calls offerable at `v`; for TLS 1.3 the 1.3
/// suites followed by the TLS 1.2 ones (a hello for 1.3 may be answered
/// at 1.2 by a server that lacks it).
pub fn suites_for(v: ProtocolVersion) -> Vec<CipherSuite> {
    let mut suites: Vec<CipherSuite> = catalog::suites_for(v).map(|s| s.id).collect();
    if v == ProtocolVersion::TLS13 {
        suites.extend(catalog::suites_for(ProtocolVersion::TLS12).map(|s| s.id));
    }
    suites.dedup();
    suites
}

/// A hello offering exactly version `v` (min = max = v), every suite the
/// catalog offers at `v`, and SNI `localhost`.
pub fn hello_for(v: ProtocolVersion, tag: u8) -> ClientHello {
    ClientHello::typical(v, v, random(tag), suites_for(v), Some("localhost"))
}

/// Asserts that `sh` selects exactly `v`, through supported_versions for
/// TLS 1.3 and through the legacy field below it, and a suite from
/// `offered` that the catalog deems valid at `v`.
pub fn assert_selects(sh: &ServerHello, v: ProtocolVersion, offered: &[CipherSuite]) {
    assert!(!sh.is_retry_request(), "got a HelloRetryRequest: {sh:?}");
    if v == ProtocolVersion::TLS13 {
        assert_eq!(
            sh.legacy_version,
            ProtocolVersion::TLS12,
            "TLS 1.3 legacy_version: {sh:?}"
        );
        assert_eq!(
            sh.extension(ExtensionType::SUPPORTED_VERSIONS),
            Some(&ServerExtension::SupportedVersions(ProtocolVersion::TLS13)),
            "supported_versions: {sh:?}"
        );
    } else {
        assert_eq!(sh.legacy_version, v, "server_version: {sh:?}");
        assert!(
            sh.extension(ExtensionType::SUPPORTED_VERSIONS).is_none(),
            "supported_versions below TLS 1.3: {sh:?}"
        );
    }
    assert_eq!(sh.selected_version(), v);
    assert!(
        offered.contains(&sh.cipher_suite),
        "selected suite {} was not offered",
        sh.cipher_suite
    );
    let info =
        catalog::suite(sh.cipher_suite).unwrap_or_else(|| panic!("selected suite {} not in catalog", sh.cipher_suite));
    assert!(
        info.offerable_in(v),
        "selected suite {} ({}) is not valid in {v}",
        sh.cipher_suite,
        info.name
    );
}

/// Asserts the RFC 8446 §4.1.3 downgrade sentinel of a server that does
/// TLS 1.3: `DOWNGRD\x01` when it negotiated TLS 1.2, `DOWNGRD\x00` below,
/// none at TLS 1.3.
pub fn assert_downgrade_sentinel(sh: &ServerHello, v: ProtocolVersion) {
    let want = match v {
        ProtocolVersion::TLS13 => None,
        ProtocolVersion::TLS12 => Some(Downgrade::Tls12),
        _ => Some(Downgrade::Tls11OrBelow),
    };
    assert_eq!(sh.downgrade(), want, "downgrade sentinel at {v}: {sh:?}");
}

/// Splits `stream_len` bytes into `n` writes of roughly equal size (the
/// last takes the remainder): the `write_sizes` of a [`Framing`].
pub fn write_sizes(stream_len: usize, n: usize) -> Vec<usize> {
    let each = stream_len / n;
    vec![each; n - 1]
}

/// A framing into records of `size` bytes and `writes` TCP writes.
pub fn split_framing(hello: &ClientHello, record_version: ProtocolVersion, size: usize, writes: usize) -> Framing {
    let message_len = hello.to_bytes().expect("encode ClientHello").len();
    let mut framing = Framing::records_of(record_version, size, message_len);
    let records = message_len.div_ceil(size);
    framing.write_sizes = write_sizes(message_len + 5 * records, writes);
    framing
}
