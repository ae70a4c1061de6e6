//! Integration tests: the wire codec and (later) the hsscan binary against
//! real TLS servers on loopback. See `support` for the process and socket
//! discipline every test follows.

mod bulk;
mod emulate;
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
mod pcap;
mod postfix;
mod scan_failures;
mod scan_quick;
mod scan_support;
mod support;
mod wire_gnutls;
mod wire_openssl;
mod wire_tlslite;
