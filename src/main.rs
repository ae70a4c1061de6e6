//! The hsscan binary: parse the command line, run, choose the exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// mimalloc rather than the system allocator: `hsscan pcap` makes and
/// frees many small values per connection, and glibc's malloc and free
/// took a quarter of its time (benches/pcap.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hsscan::cli::main()
}
