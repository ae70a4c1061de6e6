//! TLS 1.3 hides the server's certificate (SPEC §4): to judge the chain of
//! a TLS 1.3 server, hsscan sends one hello with a real X25519 key share
//! (P-256 when a HelloRetryRequest asks for it), derives the server's
//! handshake keys and decrypts its first flight — EncryptedExtensions,
//! Certificate, CertificateVerify — and then closes. It still never sends
//! a Finished: no handshake is completed.
//!
//! [`schedule`] is the key schedule and record protection, [`flight`] the
//! sans-I/O client of the certificate hello, [`fetch`] the async driver
//! that runs it over one gated connection.

pub mod fetch;
pub mod flight;
pub mod schedule;
