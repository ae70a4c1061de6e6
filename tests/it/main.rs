//! Integration tests: the wire codec and (later) the hsscan binary against
//! real TLS servers on loopback. See `support` for the process and socket
//! discipline every test follows.

mod support;
mod wire_gnutls;
mod wire_openssl;
mod wire_tlslite;
