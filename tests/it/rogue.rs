//! Hostile servers written for the tests: a loopback listener that speaks
//! just enough SMTP (or none) and answers every ClientHello with bytes the
//! test scripts, however wrong — a version never offered, an export suite,
//! an SSLv2 SERVER-HELLO, a HelloRetryRequest for ever, escape sequences in
//! its banner and certificate. It counts connections, and the most it ever
//! held at once, so per-IP limits are measured where they matter: at the
//! server.
//!
//! One thread accepts, one thread serves each connection; every read and
//! write has a timeout, and dropping the server stops the accept loop and
//! waits for every connection thread.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long any read or write of the server waits.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server answers to a ClientHello: from the bytes of the record
/// (or SSLv2 message) that carried it, the bytes to send back.
pub type Answer = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// How a hostile server behaves.
#[derive(Clone)]
pub struct Behaviour {
    /// `Some(banner)`: speak SMTP first — this banner (CRLF added), an EHLO
    /// reply offering STARTTLS, 220 to STARTTLS — then TLS.
    pub banner: Option<Vec<u8>>,
    /// Wait this long after the ClientHello before answering (so that
    /// connections overlap and a per-IP limit shows).
    pub hold: Duration,
    pub answer: Answer,
}

impl Behaviour {
    /// Implicit TLS, answering every hello with `bytes`.
    pub fn tls(bytes: Vec<u8>) -> Self {
        Self {
            banner: None,
            hold: Duration::ZERO,
            answer: Arc::new(move |_| bytes.clone()),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: AtomicUsize,
    open: AtomicUsize,
    most: AtomicUsize,
}

/// A running hostile server on 127.0.0.1 (on one port or several, all
/// counted together); dropping it stops it.
pub struct Rogue {
    pub port: u16,
    pub ports: Vec<u16>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Rogue {
    pub fn start(behaviour: Behaviour) -> Self {
        Self::start_on(behaviour, 1)
    }

    /// The same server on `n` ports of 127.0.0.1.
    pub fn start_on(behaviour: Behaviour, n: usize) -> Self {
        let listeners: Vec<TcpListener> = (0..n)
            .map(|_| {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
                l.set_nonblocking(true).expect("set_nonblocking");
                l
            })
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("local_addr").port())
            .collect();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (counts, stop, conns) = (Arc::clone(&counts), Arc::clone(&stop), Arc::clone(&conns));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut idle = true;
                    for listener in &listeners {
                        let Ok((stream, _)) = listener.accept() else { continue };
                        idle = false;
                        {
                            let open = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
                            counts.total.fetch_add(1, Ordering::SeqCst);
                            counts.most.fetch_max(open, Ordering::SeqCst);
                            let (counts, b) = (Arc::clone(&counts), behaviour.clone());
                            let t = std::thread::spawn(move || {
                                let _ = serve(stream, &b, &counts);
                            });
                            conns.lock().expect("threads").push(t);
                        }
                    }
                    if idle {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        };
        Self {
            port: ports.first().copied().expect("one port"),
            ports,
            counts,
            stop,
            accept: Some(accept),
            conns,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.total.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn most_at_once(&self) -> usize {
        self.counts.most.load(Ordering::SeqCst)
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *self.conns.lock().expect("threads"));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Counts a connection as closed when dropped: before the stream it
/// guards, so that the count is down before the client sees the close.
struct Open<'a>(&'a Counts);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(mut s: TcpStream, b: &Behaviour, counts: &Counts) -> std::io::Result<()> {
    // Dropped before `s`, a parameter: locals go first.
    let _open = Open(counts);
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = s.set_nodelay(true);
    if let Some(banner) = &b.banner {
        let mut line = banner.clone();
        line.extend_from_slice(b"\r\n");
        s.write_all(&line)?;
        read_line(&mut s)?;
        s.write_all(b"250-mx.rogue.test\r\n250 STARTTLS\r\n")?;
        read_line(&mut s)?;
        s.write_all(b"220 2.0.0 Ready to start TLS\r\n")?;
    }
    // Every hello on the connection is answered (a client that follows a
    // HelloRetryRequest sends a second one), until the client closes:
    // closing first could reset the connection.
    let mut hello = read_hello(&mut s)?;
    loop {
        if !b.hold.is_zero() {
            std::thread::sleep(b.hold);
        }
        s.write_all(&(b.answer)(&hello))?;
        match read_hello(&mut s) {
            Ok(next) if next.first().is_some_and(|&t| t == 22 || t & 0x80 != 0) => hello = next,
            _ => break,
        }
    }
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

fn read_line(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 4096 {
        if s.read(&mut b)? == 0 {
            break;
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    Ok(line)
}

/// The first TLS record or SSLv2 message the client sends.
fn read_hello(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let len = if head[0] & 0x80 != 0 {
        usize::from(head[0] & 0x7f) << 8 | usize::from(head[1])
    } else {
        let mut rest = [0u8; 3];
        s.read_exact(&mut rest)?;
        let len = usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let mut out = vec![head[0], head[1], rest[0], rest[1], rest[2]];
        let mut body = vec![0u8; len];
        s.read_exact(&mut body)?;
        out.extend(body);
        return Ok(out);
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    let mut out = head.to_vec();
    out.extend(body);
    Ok(out)
}

/// A TLS record.
pub fn record(content_type: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type];
    out.extend(version.to_be_bytes());
    out.extend(
        u16::try_from(body.len())
            .expect("record body under 64 KiB")
            .to_be_bytes(),
    );
    out.extend(body);
    out
}

/// A handshake message.
pub fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![msg_type];
    out.extend(&u32::try_from(body.len()).expect("length").to_be_bytes()[1..]);
    out.extend(body);
    out
}

/// A ServerHello body: `version` in legacy_version, no session id, no
/// compression, and `extensions` (type, data) when any.
pub fn server_hello(version: u16, suite: u16, extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    server_hello_with_random(version, [0x5a; 32], suite, extensions)
}

fn server_hello_with_random(version: u16, random: [u8; 32], suite: u16, extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend(random);
    body.push(0);
    body.extend(suite.to_be_bytes());
    body.push(0);
    if !extensions.is_empty() {
        let mut ext: Vec<u8> = Vec::new();
        for (t, data) in extensions {
            ext.extend(t.to_be_bytes());
            ext.extend(u16::try_from(data.len()).expect("length").to_be_bytes());
            ext.extend(data);
        }
        body.extend(u16::try_from(ext.len()).expect("length").to_be_bytes());
        body.extend(ext);
    }
    handshake(2, &body)
}

/// RFC 8446 §4.1.3: the random that makes a ServerHello a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A HelloRetryRequest for TLS 1.3 with `suite`, asking for `group`.
pub fn hello_retry_request(suite: u16, group: u16) -> Vec<u8> {
    let ext = [(0x002b, vec![0x03, 0x04]), (0x0033, group.to_be_bytes().to_vec())];
    record(22, 0x0303, &server_hello_with_random(0x0303, HRR_RANDOM, suite, &ext))
}

/// A Certificate message carrying `ders`, leaf first.
pub fn certificate(ders: &[Vec<u8>]) -> Vec<u8> {
    let mut list: Vec<u8> = Vec::new();
    for d in ders {
        list.extend(&u32::try_from(d.len()).expect("length").to_be_bytes()[1..]);
        list.extend(d);
    }
    let mut body = u32::try_from(list.len()).expect("length").to_be_bytes()[1..].to_vec();
    body.extend(list);
    handshake(11, &body)
}

/// A whole TLS 1.2 first flight in one record: ServerHello for `suite`,
/// the certificate, ServerHelloDone.
pub fn tls12_flight(suite: u16, cert: &[u8]) -> Vec<u8> {
    let mut body = server_hello(0x0303, suite, &[]);
    body.extend(certificate(&[cert.to_vec()]));
    body.extend(handshake(14, &[]));
    record(22, 0x0303, &body)
}

/// An SSLv2 SERVER-HELLO (draft-hickman-netscape-ssl-00) with `cert` and
/// three-byte cipher specs.
pub fn sslv2_server_hello(cert: &[u8], specs: &[[u8; 3]]) -> Vec<u8> {
    let mut msg = vec![4, 0, 1, 0x00, 0x02];
    msg.extend(u16::try_from(cert.len()).expect("length").to_be_bytes());
    msg.extend(u16::try_from(specs.len() * 3).expect("length").to_be_bytes());
    msg.extend(16u16.to_be_bytes());
    msg.extend(cert);
    for s in specs {
        msg.extend(s);
    }
    msg.extend([0x11; 16]);
    let len = u16::try_from(msg.len()).expect("length") | 0x8000;
    let mut out = len.to_be_bytes().to_vec();
    out.extend(msg);
    out
}

/// A self-signed certificate (DER) whose subject common name is `cn`
/// verbatim, as a UTF8String, with `dns` as its subjectAltName.
pub fn certificate_named(cn: &str, dns: &str) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec![dns.to_owned()]).expect("certificate parameters");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, rcgen::DnValue::Utf8String(cn.to_owned()));
    let key = rcgen::KeyPair::generate().expect("key pair");
    params
        .self_signed(&key)
        .expect("self-signed certificate")
        .der()
        .to_vec()
}
