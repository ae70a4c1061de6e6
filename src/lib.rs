//! hsscan: a TLS handshake scanner for mail administrators.
//!
//! The TLS wire format lives in the `hsscan-wire` crate; this crate holds
//! the command line and the reports built on it.
#![forbid(unsafe_code)]

pub mod bisect;
pub mod bulk;
pub mod catalog_report;
pub mod certs;
pub mod cli;
pub mod demo;
pub mod dns;
pub mod emulate;
pub mod enumerate;
pub mod finding;
pub mod fuzzing;
pub mod gate;
pub mod hellos;
pub mod limits;
pub mod maillog;
pub mod outcome;
pub mod output;
pub mod partner;
pub mod pcap;
pub mod policy;
pub mod probe;
pub mod report;
pub mod retry;
pub mod run;
pub mod scan;
pub mod senders;
pub mod shard;
pub mod smtp;
pub mod stop;
pub mod style;
pub mod target;
pub mod tls13;
pub mod wait;
