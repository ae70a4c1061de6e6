//! `hsscan pcap`: explains the TLS handshakes (and their failures) in
//! pcap/pcapng captures.

use clap::Args;

/// `hsscan pcap`.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// pcap or pcapng files (the format is read from the content).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<std::path::PathBuf>,
}

/// Runs `hsscan pcap`.
pub fn run(args: &PcapArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!(
        "analysing {}: capture analysis is not built yet",
        args.files.first().map(|p| p.display().to_string()).unwrap_or_default()
    )
}
