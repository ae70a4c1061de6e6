//! The hsscan binary: parse the command line, run, choose the exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    hsscan::cli::main()
}
