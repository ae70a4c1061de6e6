//! hsscan: a TLS handshake scanner for mail administrators.
#![forbid(unsafe_code)]

pub mod cli;
