//! Entry points for the cargo-fuzz targets in `fuzz/` that reach decoders
//! of this crate (the wire format's own are in `hsscan_wire::fuzzing`),
//! and for the tests that replay their saved corpus. Each takes arbitrary
//! bytes and must return without panicking; where there is a natural
//! invariant (the same bytes cut differently give the same result), it is
//! asserted.

use crate::policy::{dane, dnssec, mta_sts, tls_rpt};
use crate::smtp::{Dialog, SmtpTimeouts};
use crate::tls13::flight::{CertificateHello, Decrypted, Error, HelloParams, KeyPair, Step};
use crate::tls13::schedule::{self, RecordOpener, Suite};
use hsscan_wire::{CipherSuite, ServerHello, Writer};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Splits `data` into chunks of lengths 1, 4, 13, … (the deframer
/// target's pattern), so that every boundary is tried somewhere.
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut step = 1;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at(step.min(rest.len()));
        out.push(head);
        rest = tail;
        step = step * 3 % 1031 + 1;
    }
    out
}

/// A peer whose bytes are `reads` in turn, then end of stream; what is
/// written to it is discarded.
struct Peer<'a> {
    reads: std::collections::VecDeque<&'a [u8]>,
}

impl tokio::io::AsyncRead for Peer<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(chunk) = self.reads.pop_front() {
            let n = chunk.len().min(buf.remaining());
            let (now, later) = chunk.split_at(n);
            buf.put_slice(now);
            if !later.is_empty() {
                self.reads.push_front(later);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Peer<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// The SMTP dialog up to STARTTLS with `data` as everything the server
/// says: the reply reader (banner, EHLO reply, STARTTLS reply, QUIT
/// reply), the EHLO keyword list and the failure mapping. The same bytes
/// in one read and in many small ones give the same dialog and the same
/// failure stage and kind, and after a 220 to STARTTLS the leftover plus
/// what was not read yet is the same: no byte of the TLS stream is lost.
pub fn smtp(data: &[u8]) {
    let run = |reads: Vec<&[u8]>| {
        let mut peer = Peer { reads: reads.into() };
        let mut dialog = Dialog::default();
        let timeouts = SmtpTimeouts {
            banner: Duration::from_secs(5),
            reply: Duration::from_secs(5),
        };
        let result = RUNTIME.with(|rt| {
            rt.block_on(crate::smtp::starttls(
                &mut peer,
                "scanner.example",
                timeouts,
                &mut dialog,
            ))
        });
        let outcome = match result {
            Ok(mut leftover) => {
                assert_eq!(
                    dialog.starttls,
                    Some("offered"),
                    "a dialog that succeeded without STARTTLS"
                );
                peer.reads.iter().for_each(|r| leftover.extend_from_slice(r));
                Ok(leftover)
            }
            Err(f) => Err((f.stage, f.kind)),
        };
        (outcome, dialog.banner, dialog.extensions, dialog.starttls, dialog.reply)
    };
    let whole = run(vec![data]);
    let cut = run(chunks(data));
    assert_eq!(whole, cut, "the dialog depends on how the server's bytes were cut");
}

const RFC8448_CLIENT_PRIVATE: [u8; 32] = [
    0x49, 0xaf, 0x42, 0xba, 0x7f, 0x79, 0x94, 0x85, 0x2d, 0x71, 0x3e, 0xf2, 0x78, 0x4b, 0xcb, 0xca, 0xa7, 0x91, 0x1d,
    0xe2, 0x6a, 0xdc, 0x56, 0x42, 0xcb, 0x63, 0x45, 0x40, 0xe7, 0xea, 0x50, 0x05,
];
const RFC8448_CLIENT_HELLO: &[u8] = include_bytes!("tls13/testdata/rfc8448_client_hello.bin");
const RFC8448_SERVER_HELLO: &[u8] = include_bytes!("tls13/testdata/rfc8448_server_hello.bin");

/// Pushes `reads` into `hello` until the flight is done or fails; a
/// second hello (after a HelloRetryRequest) is taken as sent.
fn drive(hello: &mut CertificateHello, reads: &[&[u8]]) -> Result<Option<Decrypted>, Error> {
    for bytes in reads {
        let mut step = hello.push(bytes)?;
        // After a Send, bytes already buffered are read by the next push.
        while matches!(step, Step::Send(_)) {
            step = hello.push(&[])?;
        }
        if let Step::Done(flight) = step {
            return Ok(Some(*flight));
        }
    }
    Ok(None)
}

/// The TLS 1.3 certificate hello's reading of the server's first flight.
///
/// The first byte chooses the layout. Even: the rest is the server's
/// bytes as they arrive, after a hello of the scan's own (ServerHello,
/// HelloRetryRequest, alerts, ChangeCipherSpec, anything). Odd: the
/// client is RFC 8448's, the server answers with RFC 8448's ServerHello
/// with the suite `(byte >> 1) % 3` of the offered ones, and the rest is
/// a list of `u16`-length-prefixed TLSInnerPlaintexts (content, type,
/// padding) that the target encrypts under the server's handshake keys,
/// so that the decrypted EncryptedExtensions, Certificate and
/// CertificateVerify parsing is reached. Either way the same bytes in
/// one push and in many small ones give the same result.
pub fn tls13_flight(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (fresh, bytes): (Box<dyn Fn() -> CertificateHello>, Vec<u8>) = if mode & 1 == 0 {
        let fresh = || {
            let params = HelloParams {
                random: [7; 32],
                session_id: vec![9; 32],
                sni: Some("mx.example".to_owned()),
                signature_schemes: crate::tls13::default_schemes(),
            };
            let keys = vec![
                KeyPair::x25519([1; 32]),
                KeyPair::p256([2; 32]).expect("a valid P-256 scalar"),
            ];
            CertificateHello::new(&params, keys).expect("the hello encodes").0
        };
        (Box::new(fresh), rest.to_vec())
    } else {
        let Some(bytes) = encrypted_flight(mode, rest) else {
            return;
        };
        let fresh = || {
            CertificateHello::replay(RFC8448_CLIENT_HELLO, vec![KeyPair::x25519(RFC8448_CLIENT_PRIVATE)])
                .expect("RFC 8448's hello decodes")
        };
        (Box::new(fresh), bytes)
    };
    let whole = drive(&mut fresh(), &[&bytes]);
    let cut = drive(&mut fresh(), &chunks(&bytes));
    if mode & 1 == 1 {
        if let Ok(Some(f)) = &whole {
            let offered = Suite::OFFERED.get(usize::from(mode >> 1) % 3).copied();
            assert_eq!(Some(f.suite), offered, "the flight's suite is not the ServerHello's");
        }
    }
    assert_eq!(whole, cut, "the flight depends on how the server's bytes were cut");
}

/// RFC 8448's ServerHello with the chosen suite, as a record, then each
/// inner plaintext of `rest` sealed as the server would.
fn encrypted_flight(mode: u8, rest: &[u8]) -> Option<Vec<u8>> {
    let id = *Suite::OFFERED.get(usize::from(mode >> 1) % 3)?;
    let suite = Suite::of(id)?;
    let mut hello = ServerHello::read_body(RFC8448_SERVER_HELLO.get(4..)?, 4).ok()?;
    hello.cipher_suite = CipherSuite(id.0);
    let mut w = Writer::new();
    hello.write(&mut w).ok()?;
    let server_hello = w.as_bytes().to_vec();
    let Some(hsscan_wire::ServerExtension::KeyShare(share)) = hello.extension(hsscan_wire::ExtensionType::KEY_SHARE)
    else {
        return None;
    };
    let shared = KeyPair::x25519(RFC8448_CLIENT_PRIVATE).shared(&share.key_exchange)?;
    let hash = suite.hash.digest(&[RFC8448_CLIENT_HELLO, &server_hello]);
    let secrets = schedule::handshake_secrets(suite.hash, &shared, &hash)?;
    let opener = RecordOpener::new(suite, &secrets.server_handshake_traffic_secret)?;
    let (key, iv) = opener.key_and_iv();

    let mut out = vec![22, 3, 3];
    out.extend_from_slice(&u16::try_from(server_hello.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&server_hello);
    let mut r = rest;
    let mut seq: u64 = 0;
    while let [a, b, tail @ ..] = r {
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (inner, after) = tail.split_at(n);
        r = after;
        let sealed_len = u16::try_from(inner.len() + 16).ok()?;
        let [hi, lo] = sealed_len.to_be_bytes();
        let header = [23, 3, 3, hi, lo];
        let mut nonce = *iv;
        for (x, s) in nonce.iter_mut().skip(4).zip(seq.to_be_bytes()) {
            *x ^= s;
        }
        seq += 1;
        let sealed = seal(suite, key, &nonce, &header, inner)?;
        out.extend_from_slice(&header);
        out.extend_from_slice(&sealed);
    }
    Some(out)
}

fn seal(suite: Suite, key: &[u8], nonce: &[u8; 12], aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let payload = Payload { msg, aad };
    match suite.id.0 {
        0x1301 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .ok()?
            .encrypt(nonce.into(), payload)
            .ok(),
        0x1302 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .ok()?
            .encrypt(nonce.into(), payload)
            .ok(),
        0x1303 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .ok()?
            .encrypt(nonce.into(), payload)
            .ok(),
        _ => None,
    }
}

/// The policy records' parsers. The first byte chooses: 0 the
/// `_mta-sts` TXT text, 1 an MTA-STS policy body (then judged against MX
/// names drawn from its own patterns), 2 the `_smtp._tls` TXT text, and
/// anything else a DNS response (`u16` length, then the message, as the
/// resolver client decodes it) whose TXT answers go through both TXT
/// parsers and whose TLSA answers are matched (RFC 7672) against the
/// certificate chain that follows it (`u16`-length-prefixed DER).
pub fn policy(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode {
        0 => {
            if let Some(txt) = mta_sts::parse_txt(&text) {
                assert_eq!(txt.raw, text, "the record is not kept as published");
            }
        }
        1 => {
            let policy = mta_sts::parse_policy(&text);
            let hosts: Vec<String> = match &policy {
                Ok(p) => {
                    p.mx.iter()
                        .map(|m| m.strip_prefix("*.").map_or_else(|| m.clone(), |s| format!("a.{s}")))
                        .chain(["mx.example".to_owned()])
                        .collect()
                }
                Err(_) => vec!["mx.example".to_owned()],
            };
            let lookup = mta_sts::Lookup {
                domain: "example".to_owned(),
                txt: Ok(mta_sts::parse_txt("v=STSv1; id=1")),
                fetch: None,
                policy: Some(policy),
                webpki_invalid: false,
            };
            let problems = hosts
                .iter()
                .take(1)
                .map(|h| (h.clone(), "expired".to_owned()))
                .collect();
            let m = mta_sts::evaluate(&lookup, &hosts, problems);
            let _ = mta_sts::findings(&m);
        }
        2 => {
            if let Some(rua) = tls_rpt::parse(&text) {
                assert!(
                    rua.iter().all(|u| !u.is_empty() && u.trim() == u),
                    "an empty or untrimmed rua"
                );
            }
        }
        _ => dns_policy(rest),
    }
}

fn dns_policy(data: &[u8]) {
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::RData;
    let (len, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return,
    };
    let (message, mut chain_bytes) = rest.split_at(len.min(rest.len()));
    let Ok(m) = Message::from_vec(message) else { return };
    let records: Vec<RData> = m.answers().iter().map(|r| r.data().clone()).collect();
    for r in &records {
        if let RData::TXT(t) = r {
            let s: String = t
                .txt_data()
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            let _ = mta_sts::parse_txt(&s);
            let _ = tls_rpt::parse(&s);
        }
    }
    let mut chain = Vec::new();
    while let [a, b, tail @ ..] = chain_bytes {
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (der, after) = tail.split_at(n);
        chain.push(der.to_vec());
        chain_bytes = after;
    }
    let lookup = dane::Lookup {
        tlsa_name: dane::tlsa_name("mx.example", 25),
        resolver: "127.0.0.1:53".to_owned(),
        tlsa: dnssec::Answer {
            security: if m.authentic_data() {
                dnssec::Security::Secure
            } else {
                dnssec::Security::Insecure
            },
            rcode: ResponseCode::NoError,
            records,
            detail: None,
        },
        host: dnssec::Security::Secure,
        mx: Some(dnssec::Security::Secure),
    };
    let ip: std::net::IpAddr = [192, 0, 2, 7].into();
    let ips = [(ip, vec![chain]), ([192, 0, 2, 8].into(), Vec::new())];
    let d = dane::evaluate(&lookup, "mx.example", &ips);
    let _ = dane::findings(&d);
}

/// A mail log (or gzip of one) as `hsscan log` reads it: line splitting,
/// the syslog shapes, Postfix and Exim delivery lines and the TLS error
/// lines, then the summary. Every line is counted once.
pub fn maillog(data: &[u8]) {
    let now = time::OffsetDateTime::from_unix_timestamp(1_765_000_000).expect("a valid time");
    let mut log = crate::maillog::Log::new(now);
    if crate::maillog::run::read_stream(data, &mut log).is_err() {
        return;
    }
    let (destinations, counts) = log.finish();
    if !data.starts_with(&[0x1f, 0x8b]) {
        let newlines = data.iter().filter(|&&b| b == b'\n').count();
        let expected = newlines + usize::from(data.last().is_some_and(|&b| b != b'\n'));
        assert_eq!(counts.lines, expected, "a line was lost or counted twice");
    }
    let _ = crate::maillog::run::describe(&counts, destinations.len());
}

#[cfg(test)]
mod tests {
    //! Replays the saved fuzz inputs of `fuzz/regressions/<target>/` (crash
    //! inputs whose bugs were fixed, and each target's minimised corpus)
    //! through the entry point the target calls, on stable without
    //! cargo-fuzz. `wire/tests/fuzz_corpus.rs` does the same for the wire
    //! format's targets.

    use std::path::{Path, PathBuf};

    /// Runs `f` on every file of the target's directory; returns how many.
    fn replay(target: &str, f: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions")
            .join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        paths.sort();
        for path in &paths {
            let data = std::fs::read(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Err(panic) = std::panic::catch_unwind(|| f(&data)) {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("{target}: {name} panicked: {msg}");
            }
        }
        paths.len()
    }

    /// The odd-mode layout reaches the decrypted messages: RFC 8448's
    /// Certificate, sealed by the target under each offered suite, is read
    /// back as the flight's chain.
    #[test]
    fn sealed_inner_plaintexts_decrypt_to_the_chain() {
        const CERTIFICATE: &[u8] = include_bytes!("tls13/testdata/rfc8448_certificate.bin");
        let ee = [8, 0, 0, 2, 0, 0];
        let cv = [15, 0, 0, 6, 8, 4, 0, 2, 0xab, 0xcd];
        let expected = hsscan_wire::Certificate::read_body(&CERTIFICATE[4..], 4, true).unwrap();
        for mode in [1u8, 3, 5] {
            let inner = [&ee[..], CERTIFICATE, &cv, &[22]].concat();
            let mut data = vec![mode];
            data.extend_from_slice(&u16::try_from(inner.len()).unwrap().to_be_bytes());
            data.extend_from_slice(&inner);
            let bytes = super::encrypted_flight(mode, &data[1..]).unwrap();
            let mut hello = super::CertificateHello::replay(
                super::RFC8448_CLIENT_HELLO,
                vec![super::KeyPair::x25519(super::RFC8448_CLIENT_PRIVATE)],
            )
            .unwrap();
            let flight = super::drive(&mut hello, &[&bytes]).unwrap().unwrap();
            assert_eq!(flight.suite, super::Suite::OFFERED[usize::from(mode >> 1)]);
            assert_eq!(flight.certificates, [expected.entries[0].der.clone()]);
            assert_eq!(flight.signature_scheme, Some(hsscan_wire::SignatureScheme(0x0804)));
            super::tls13_flight(&data);
        }
    }

    #[test]
    fn pcap_regressions() {
        assert!(replay("pcap", |d| drop(crate::pcap::analyse_bytes(d))) > 0);
    }

    #[test]
    fn smtp_regressions() {
        assert!(replay("smtp", super::smtp) > 0);
    }

    #[test]
    fn tls13_flight_regressions() {
        assert!(replay("tls13_flight", super::tls13_flight) > 0);
    }

    #[test]
    fn policy_regressions() {
        assert!(replay("policy", super::policy) > 0);
    }

    #[test]
    fn maillog_regressions() {
        assert!(replay("maillog", super::maillog) > 0);
    }
}
