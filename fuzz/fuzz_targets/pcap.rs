//! Arbitrary bytes as a capture file: format detection, pcap and pcapng
//! blocks, link/IP/TCP decoding, reassembly and the per-connection
//! analysis, through `hsscan::pcap::analyse_bytes` (streamed from memory
//! exactly as a file is). Seed it with the captures of `pcaps/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hsscan::pcap::analyse_bytes(data);
});
