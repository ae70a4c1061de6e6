//! The command line (clap types only) and `main`'s dispatch. Errors reach
//! the user as one line, `hsscan: <what was being done>: <why>`, exit 2.

use clap::{Args, Parser, Subcommand};
use hsscan_wire::ProtocolVersion;
use std::io::Write as _;
use std::process::ExitCode;

/// TLS handshake scanner for mail administrators.
#[derive(Debug, Parser)]
#[command(name = "hsscan", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the cipher suite catalog (IANA, GREASE, SCSVs, legacy codes).
    Catalog(CatalogArgs),
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Only the suites worth offering at this protocol: sslv2, sslv3, tls1.0, tls1.1, tls1.2, tls1.3.
    #[arg(long, value_name = "VERSION", value_parser = parse_protocol)]
    pub protocol: Option<ProtocolVersion>,
    /// Print JSON (one document) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Never colour the table.
    #[arg(long)]
    pub no_color: bool,
}

fn parse_protocol(s: &str) -> Result<ProtocolVersion, String> {
    ProtocolVersion::parse_user(s)
        .ok_or_else(|| "unknown protocol; use sslv2, sslv3, tls1.0, tls1.1, tls1.2 or tls1.3".to_owned())
}

/// Parses the command line, runs, and picks the exit code (SPEC §2).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hsscan: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// clap's help and version go out as clap prints them; a usage error
/// becomes one line naming the input, then exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("hsscan: reading the command line: {first} (see hsscan --help)");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Catalog(args) => catalog(&args),
    }
}

fn catalog(args: &CatalogArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let text = if args.json {
        crate::catalog_report::json(args.protocol).context("writing the catalog as JSON")? + "\n"
    } else {
        crate::catalog_report::table(args.protocol, crate::style::colour_stdout(args.no_color))
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
