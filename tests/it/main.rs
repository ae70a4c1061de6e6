//! Integration tests: the wire codec and (later) the hsscan binary against
//! real TLS servers on loopback. See `support` for the process and socket
//! discipline every test follows.

mod bisect;
mod bulk;
mod bulk_split;
mod cli;
mod dane_postfix;
mod demo;
mod dns_lab;
mod emulate;
mod emulate_accept;
mod emulate_postfix;
mod enum_defects;
mod enum_gnutls;
mod enum_hostile;
mod enum_openssl;
mod enum_postfix;
mod enum_support;
mod enum_tlslite;
mod hostile;
mod large_chains;
mod maillog;
mod netns;
mod partner;
mod pcap;
mod policy_dane;
mod policy_mta_sts;
mod politeness;
mod postfix;
mod rogue;
mod scan_failures;
mod scan_hostile;
mod scan_quick;
mod scan_run;
mod scan_support;
mod senders;
mod support;
mod tls13_chains;
mod wait;
mod wire_gnutls;
mod wire_openssl;
mod wire_tlslite;
