//! The command line (clap types only) and `main`'s dispatch. Errors reach
//! the user as one line, `hsscan: <what was being done>: <why>`, exit 2.

use crate::target::{StartTlsMode, Target};
use clap::{Args, Parser, Subcommand};
use hsscan_wire::ProtocolVersion;
use std::io::Write as _;
use std::process::ExitCode;

/// The examples under `hsscan --help`.
const EXAMPLES: &str = "\
Examples:
  hsscan demo                              see a diagnosis of emulated broken receivers (no network)
  hsscan mx.partner.example                does this machine's Postfix get TLS there, and if not, why
  hsscan mx.partner.example --enumerate    every protocol, suite, group and certificate chain
  hsscan smtps://mail.partner.example      implicit TLS (port 465)
  hsscan log /var/log/mail.log             scan every destination the log shows failing for TLS
  hsscan --mx -i partners.txt --jsonl > scan.jsonl
                                           every MX of a list of mail domains, politely
  hsscan pcap failure.pcap                 explain the handshakes of a capture
  hsscan emulate --profile exchange2007 --listen 127.0.0.1:2525
                                           play a legacy receiver to try a sender against

Exit codes: 0 the headline sender gets TLS everywhere; 1 somewhere it does not, or the
outcome is inconclusive; 2 usage or fatal error; 130 interrupted.";

/// TLS handshake scanner for mail administrators.
///
/// With targets and no command: scan them (SMTP STARTTLS on ports 25, 587
/// and 2525, implicit TLS elsewhere).
#[derive(Debug, Parser)]
#[command(
    name = "hsscan",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the cipher suite catalog (IANA, GREASE, SCSVs, legacy codes).
    Catalog(CatalogArgs),
    /// Diagnose emulated broken receivers on loopback: the main job, with nothing to set up.
    Demo(DemoArgs),
    /// Play a legacy or broken receiver: answer ClientHellos as a profile says, log each one decoded.
    Emulate(EmulateArgs),
    /// Scan the destinations a Postfix mail log shows failing for TLS reasons.
    Log(LogArgs),
    /// Explain the TLS handshakes and failures in pcap/pcapng captures.
    Pcap(crate::pcap::PcapArgs),
    /// List the sender profiles (SPEC §8), `local` first.
    Senders,
    /// Print a shell completion script (e.g. hsscan completions bash > /etc/bash_completion.d/hsscan).
    Completions {
        /// The shell: bash, elvish, fish, powershell or zsh.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page in roff (e.g. hsscan man > hsscan.1; man ./hsscan.1).
    Man,
}

/// `hsscan demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Judge this sender (repeatable; the first is the headline): `local`
    /// (this machine's Postfix, the default), `all`, or a profile of `hsscan senders`.
    #[arg(long, value_name = "NAME")]
    pub sender: Vec<String>,
    /// One JSON object per receiver, one per line (SPEC §3).
    #[arg(long)]
    pub json: bool,
    /// Never colour the report.
    #[arg(long)]
    pub no_color: bool,
}

/// `hsscan log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Postfix log files, plain or gzip ('-' for stdin): syslog lines or maillog_file's.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// One JSON object per destination, one per line (SPEC §3, with a `log` object).
    #[arg(long)]
    pub json: bool,
    /// Judge this sender (repeatable; the first is the headline): `local`
    /// (this machine's Postfix, the default), `all`, or a profile of `hsscan senders`.
    #[arg(long, value_name = "NAME")]
    pub sender: Vec<String>,
    /// The EHLO name (default: this machine's FQDN, else a name under localdomain).
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,
    /// Destinations scanned at once.
    #[arg(short = 'j', long = "concurrency", value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub concurrency: u32,
    /// Connections in flight to one IP.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub per_host: u32,
    /// Milliseconds between connections to one IP.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay: u64,
    /// Connections allowed per IP in all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Seconds to wait for a TCP connection.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub connect_timeout: f64,
    /// Seconds to wait for each read (the SMTP banner gets at least 30).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub timeout: f64,
    /// Seconds before a retry of an unclear answer; each next waits twice as long.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub retry_delay: f64,
    /// Trust the CA certificates in this PEM file instead of the system store.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<String>,
    /// Never colour the report.
    #[arg(long)]
    pub no_color: bool,
    /// Nothing on stderr but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `hsscan emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// A shipped profile (see --list-profiles).
    #[arg(long, value_name = "NAME", required_unless_present_any = ["config", "list_profiles"])]
    pub profile: Option<String>,
    /// A profile file (TOML; format in the README).
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub config: Option<std::path::PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:2525 (repeatable).
    #[arg(long, value_name = "ADDR", required_unless_present = "list_profiles", value_parser = parse_listen)]
    pub listen: Vec<std::net::SocketAddr>,
    /// List the shipped profiles, one line each, and exit.
    #[arg(long)]
    pub list_profiles: bool,
    /// One JSON line per connection, and a summary line on exit.
    #[arg(long)]
    pub json: bool,
    /// Speak SMTP STARTTLS or implicit TLS whatever the profile says.
    #[arg(long, value_enum, value_name = "FRONT")]
    pub front: Option<Front>,
    /// The host name in the banner, EHLO reply and certificates.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Present the certificates of this PEM file (leaf first) for its key type (repeatable).
    #[arg(long, value_name = "PEM")]
    pub cert: Vec<std::path::PathBuf>,
    /// The private key of a --cert leaf, matched by public key (RSA PKCS#1/PKCS#8, EC P-256/P-384 SEC1/PKCS#8;
    /// repeatable); without a --cert of its type, the generated leaf is made on it.
    #[arg(long, value_name = "PEM")]
    pub key: Vec<std::path::PathBuf>,
    /// Exit once this many connections have ended.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub exit_after: Option<u64>,
    /// Wait this many milliseconds before every answer (a far network's round trip).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub rtt: u64,
    /// Log no connection; print only the counts on exit (benchmarks).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Front {
    Smtp,
    Tls,
}

fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:2525 or [::1]:2525".to_owned())
}

/// The scan (the default command).
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// host, host:port, [v6]:port, an IP, smtp://host[:port] or smtps://host[:port].
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from FILE, one per line ('#' comments and blank lines ignored; '-' for stdin;
    /// lines of at most 1,024 bytes, at most 1,000,000 lines).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<String>,
    /// Force SMTP STARTTLS or implicit TLS whatever the port.
    #[arg(long, value_enum, value_name = "MODE")]
    pub starttls: Option<StartTlsMode>,
    /// Send this SNI instead of the target's host name.
    #[arg(long, value_name = "NAME", conflicts_with = "no_sni")]
    pub sni: Option<String>,
    /// Send no SNI at all.
    #[arg(long)]
    pub no_sni: bool,
    /// The EHLO name (default: this machine's FQDN, else a name under localdomain).
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,
    /// The full matrix: every protocol, suite, group, feature and certificate chain.
    #[arg(long)]
    pub enumerate: bool,
    /// Find which property of a hello breaks the server (size, suites, key
    /// share, an extension, splitting), even when no sender's hello fails.
    #[arg(long)]
    pub bisect: bool,
    /// One JSON object per endpoint, one per line.
    #[arg(long)]
    pub json: bool,
    /// Same as --json (JSON Lines).
    #[arg(long)]
    pub jsonl: bool,
    /// Connections in flight overall (and endpoints scanned at once).
    #[arg(short = 'j', long = "concurrency", value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub concurrency: u32,
    /// Connections in flight to one IP.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub per_host: u32,
    /// Milliseconds between connections to one IP.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay: u64,
    /// Connections allowed per IP in all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Seconds to wait for a TCP connection.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub connect_timeout: f64,
    /// Seconds to wait for each read (the SMTP banner gets at least 30).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub timeout: f64,
    /// Use IP for HOST instead of DNS (repeatable).
    #[arg(long, value_name = "HOST:IP")]
    pub resolve: Vec<String>,
    /// IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Judge certificate dates at this RFC 3339 instant instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    pub at: Option<time::OffsetDateTime>,
    /// Trust the CA certificates in this PEM file instead of the system store.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<String>,
    /// Never colour the report.
    #[arg(long)]
    pub no_color: bool,
    /// Targets are mail domains: scan their MX hosts (port 25), one record per
    /// (host, IP) and one per domain.
    #[arg(long)]
    pub mx: bool,
    /// Check DANE/TLSA (RFC 7672) for each MX host and port: on by default with --mx.
    #[arg(long, conflicts_with = "no_dane")]
    pub dane: bool,
    /// No DANE/TLSA lookups.
    #[arg(long)]
    pub no_dane: bool,
    /// Check each domain's MTA-STS policy (RFC 8461) and TLS-RPT record: on by
    /// default with --mx; a single target gets the policy of the nearest domain above its host name that publishes one.
    #[arg(long, conflicts_with = "no_mta_sts")]
    pub mta_sts: bool,
    /// No MTA-STS or TLS-RPT lookups.
    #[arg(long)]
    pub no_mta_sts: bool,
    /// The port MX hosts are scanned on (--mx).
    #[arg(long, value_name = "PORT", default_value_t = crate::bulk::SMTP_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    pub mx_port: u16,
    /// Ask this DNS server (IP or IP:PORT) instead of the system's resolvers.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_dns)]
    pub dns: Option<std::net::SocketAddr>,
    /// Skip the domains and endpoints already in this earlier JSON Lines output (--mx).
    #[arg(long, value_name = "FILE", requires = "mx")]
    pub resume: Option<std::path::PathBuf>,
    /// Scan only the I-th of N deterministic slices of the domains (--mx),
    /// e.g. 2/8: N machines or jobs split a list, each domain in exactly one.
    #[arg(long, value_name = "I/N", requires = "mx")]
    pub shard: Option<crate::shard::Shard>,
    /// Rescan only what this earlier --mx --jsonl output left inconclusive
    /// and write the merged result (the file's settled records, then the new ones).
    #[arg(long, value_name = "FILE", requires = "mx", conflicts_with_all = ["resume", "input", "targets"])]
    pub retry_inconclusive: Option<std::path::PathBuf>,
    /// Retries of an endpoint that answered 421 or timed out (--mx), with backoff.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retries: u32,
    /// Seconds before the first retry; each next waits twice as long.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub retry_delay: f64,
    /// No progress and no summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Judge this sender (repeatable; the first is the headline): `local`
    /// (this machine's Postfix, the default), `all`, or a profile of `hsscan senders`.
    #[arg(long, value_name = "NAME")]
    pub sender: Vec<String>,
    /// Write a report for someone else: `partner`, Markdown for the
    /// receiving admin (judges every sender profile unless --sender says).
    #[arg(long, value_enum, value_name = "KIND", conflicts_with_all = ["json", "jsonl"])]
    pub report: Option<ReportKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    Partner,
}

fn parse_dns(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        return Ok(std::net::SocketAddr::new(ip, 53));
    }
    s.parse()
        .map_err(|_| "expected IP or IP:PORT, e.g. 127.0.0.1:5353 or [::1]:53".to_owned())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err("expected seconds, a number above 0 and at most 3600".to_owned()),
    }
}

fn parse_at(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "expected an RFC 3339 instant such as 2026-11-21T12:00:00Z".to_owned())
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
            // The message may quote an input line or a server's words.
            eprintln!("hsscan: {}", crate::style::escape(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// clap's help and version go out as clap prints them (exit 0). A usage
/// error keeps clap's own report — the usage line, the missing
/// arguments by name, "a similar argument exists" tips — with exit 2
/// (SPEC §2). Only a rejected value is folded into our one line,
/// `hsscan: reading the command line: …`, keeping clap's possible values
/// and tips: its message is the value parser's, naming the input.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let text = e.to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(|l| l.trim_start_matches("error: "))
                .collect();
            let what = if parts.is_empty() {
                "invalid value".to_owned()
            } else {
                parts.join("; ")
            };
            eprintln!("hsscan: reading the command line: {what} (see hsscan --help)");
            ExitCode::from(2)
        }
        _ => {
            let _ = e.print();
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
        Some(Command::Catalog(args)) => catalog(&args),
        Some(Command::Demo(args)) => demo(&args),
        Some(Command::Emulate(args)) => emulate(args),
        Some(Command::Log(args)) => mail_log(&args),
        Some(Command::Pcap(args)) => crate::pcap::run(&args),
        Some(Command::Senders) => {
            print!("{}", crate::senders::list()?);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory as _;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "hsscan", &mut out);
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            use clap::CommandFactory as _;
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        None => scan(cli.scan),
    }
}

/// This machine's FQDN when it has one, else its name under `localdomain`.
fn default_ehlo_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    match name {
        "" => "localhost.localdomain".to_owned(),
        n if n.contains('.') => n.to_owned(),
        n => format!("{n}.localdomain"),
    }
}

fn read_targets(args: &ScanArgs) -> anyhow::Result<Vec<Target>> {
    let mut targets = args
        .targets
        .iter()
        .map(|t| Target::parse(t, args.starttls).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<Target>>>()?;
    if let Some(path) = &args.input {
        // Bounded: a line over MAX_LINE_BYTES or an input over
        // MAX_INPUT_LINES is an error, so `-i /dev/zero` stops at once.
        let mut lines = crate::target::InputLines::open(path, "targets")?;
        while let Some((line, text)) = lines.next_entry()? {
            let target = Target::parse(&text, args.starttls)
                .map_err(|e| anyhow::anyhow!("reading {}: line {line}: {e}", lines.name()))?;
            targets.push(target);
        }
    }
    if targets.is_empty() {
        anyhow::bail!("reading the command line: no target given; name one (hsscan mx.example.net) or use -i FILE");
    }
    Ok(targets)
}

fn parse_resolve(entries: &[String]) -> anyhow::Result<std::collections::HashMap<String, Vec<std::net::IpAddr>>> {
    let mut map: std::collections::HashMap<String, Vec<std::net::IpAddr>> = std::collections::HashMap::new();
    for e in entries {
        let bad = || {
            anyhow::anyhow!("reading --resolve '{e}': expected HOST:IP, e.g. mx.example.net:192.0.2.7 or mx.example.net:[2001:db8::1]")
        };
        let (host, ip) = e.split_once(':').ok_or_else(bad)?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        map.entry(host.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(ip);
    }
    Ok(map)
}

/// The domains of a `--mx` run, streamed: the command line's, then `-i`'s.
fn domain_source(args: &ScanArgs) -> anyhow::Result<crate::bulk::Domains> {
    if args.targets.is_empty() && args.input.is_none() {
        anyhow::bail!(
            "reading the command line: --mx needs domains; name them (hsscan --mx example.net) or use -i FILE"
        );
    }
    for t in &args.targets {
        if t.contains(':') || t.contains('/') || t.contains(' ') {
            anyhow::bail!(
                "reading the command line: '{t}' is not a mail domain (with --mx, give domains such as example.net)"
            );
        }
    }
    let input = match args.input.as_deref() {
        Some(path) => Some(crate::target::InputLines::open(path, "domains")?),
        None => None,
    };
    Ok(crate::bulk::Domains {
        listed: args.targets.clone(),
        input,
        shard: None,
    })
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    if args.mx {
        return bulk(args);
    }
    let targets = read_targets(&args)?;
    let resolve = parse_resolve(&args.resolve)?;
    if let Some(w) = crate::limits::make_room_for(args.concurrency as usize, 0) {
        eprintln!("hsscan: warning: {w}");
    }
    let scan = scan_config(&args)?;
    let output = output_of(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let dns = {
        let _guard = runtime.enter();
        crate::dns::Dns::new(
            args.dns,
            resolve,
            family_of(&args),
            std::time::Duration::from_secs_f64(args.timeout.min(10.0)),
        )?
    };
    let cfg = crate::run::RunConfig {
        scan,
        output,
        concurrency: args.concurrency as usize,
        dns,
        quiet: args.quiet,
    };
    // One target: its long waits are shown on a terminal (bulk runs have
    // their own progress line).
    use std::io::IsTerminal as _;
    let _spinner =
        (targets.len() == 1 && !args.quiet && std::io::stderr().is_terminal()).then(crate::wait::Spinner::start);
    let finished = runtime
        .block_on(crate::run::run(targets, cfg))
        .context("writing results")?;
    Ok(exit_code(finished))
}

/// SPEC §2: 130 when interrupted (every finished record written), 0 when
/// all is well or nobody reads stdout any more, else 1.
fn exit_code(f: crate::run::Finished) -> ExitCode {
    match f.stopped {
        Some(crate::stop::Why::Interrupted) => ExitCode::from(130),
        Some(crate::stop::Why::StdoutClosed) => ExitCode::SUCCESS,
        None if f.all_ok => ExitCode::SUCCESS,
        None => ExitCode::from(1),
    }
}

fn output_of(args: &ScanArgs) -> crate::output::Output {
    if args.report == Some(ReportKind::Partner) {
        crate::output::Output::Partner
    } else if args.json || args.jsonl {
        crate::output::Output::Json
    } else {
        crate::output::Output::Terminal {
            colour: crate::style::colour_stdout(args.no_color),
        }
    }
}

fn family_of(args: &ScanArgs) -> crate::run::Family {
    match (args.ipv4, args.ipv6) {
        (true, _) => crate::run::Family::V4,
        (_, true) => crate::run::Family::V6,
        _ => crate::run::Family::Any,
    }
}

fn bulk(args: ScanArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let retry = args.retry_inconclusive.as_deref().map(crate::retry::read).transpose()?;
    let (source, resume) = match &retry {
        None => (
            domain_source(&args)?,
            args.resume.as_deref().map(crate::bulk::Resume::read).transpose()?,
        ),
        Some(r) => {
            if !(args.json || args.jsonl) {
                anyhow::bail!(
                    "reading the command line: --retry-inconclusive writes the merged JSON Lines; add --jsonl"
                );
            }
            // The settled records stay: write them first, and let the
            // rerun reuse their endpoints instead of scanning them again.
            let mut out = std::io::stdout().lock();
            for line in &r.kept {
                writeln!(out, "{line}").context("writing results")?;
            }
            out.flush().context("writing results")?;
            let resume = crate::bulk::Resume::from_lines(r.kept.iter().cloned().map(Ok))?;
            let source = crate::bulk::Domains {
                listed: r.domains.clone(),
                input: None,
                shard: None,
            };
            (source, Some(resume))
        }
    };
    let mut source = source;
    source.shard = args.shard;
    let resolve = parse_resolve(&args.resolve)?;
    if let Some(w) = crate::limits::make_room_for(args.concurrency as usize, crate::bulk::DNS_IN_FLIGHT) {
        eprintln!("hsscan: warning: {w}");
    }
    let scan = scan_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let dns = {
        let _guard = runtime.enter();
        crate::dns::Dns::new(
            args.dns,
            resolve,
            family_of(&args),
            std::time::Duration::from_secs_f64(args.timeout.min(10.0)),
        )?
    };
    use std::io::IsTerminal as _;
    let cfg = crate::bulk::BulkConfig {
        scan,
        output: output_of(&args),
        concurrency: args.concurrency as usize,
        dns,
        retries: args.retries,
        backoff: std::time::Duration::from_secs_f64(args.retry_delay),
        resume,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        quiet: args.quiet,
        port: args.mx_port,
    };
    let finished = runtime
        .block_on(crate::bulk::run(source, cfg))
        .context("running the --mx scan")?;
    let mut finished = finished;
    // Records kept from --retry-inconclusive's file count too.
    finished.all_ok &= !retry.is_some_and(|r| r.kept_not_ok);
    Ok(exit_code(finished))
}

/// What every scanning command sets the same way: the connection limits,
/// timeouts, EHLO name, trust store and senders.
struct Common<'a> {
    ehlo: Option<&'a str>,
    per_host: u32,
    delay_ms: u64,
    max_connections: Option<u32>,
    connect_timeout: f64,
    timeout: f64,
    retry_delay: f64,
    ca_file: Option<&'a str>,
    senders: &'a [String],
}

/// The scan configuration of `c`; the scan-only settings (SNI, the
/// instant of `--at`, `--enumerate`, policies, `--bisect`) at their defaults.
fn common_config(c: &Common<'_>) -> anyhow::Result<crate::scan::ScanConfig> {
    let trust = match c.ca_file {
        Some(path) => crate::certs::TrustStore::from_pem_file(std::path::Path::new(path))?,
        None => crate::certs::TrustStore::system(),
    };
    let read = std::time::Duration::from_secs_f64(c.timeout);
    Ok(crate::scan::ScanConfig {
        probe: crate::probe::ProbeConfig {
            connect_timeout: std::time::Duration::from_secs_f64(c.connect_timeout),
            read_timeout: read,
            banner_timeout: read.max(std::time::Duration::from_secs(30)),
            ..crate::probe::ProbeConfig::default()
        },
        ehlo_name: c.ehlo.map_or_else(default_ehlo_name, str::to_owned),
        sni_override: None,
        no_sni: false,
        per_host: c.per_host as usize,
        delay: std::time::Duration::from_millis(c.delay_ms),
        max_connections: c.max_connections,
        at: time::OffsetDateTime::now_utc(),
        trust: std::sync::Arc::new(trust),
        enumerate: false,
        retry_delay: std::time::Duration::from_secs_f64(c.retry_delay),
        senders: std::sync::Arc::new(crate::senders::Senders::resolve(c.senders)?),
        policy: None,
        bisect: false,
    })
}

fn scan_config(args: &ScanArgs) -> anyhow::Result<crate::scan::ScanConfig> {
    // The partner wants to know which common senders fail.
    let all = vec!["all".to_owned()];
    let senders = if args.sender.is_empty() && args.report == Some(ReportKind::Partner) {
        &all
    } else {
        &args.sender
    };
    let mut cfg = common_config(&Common {
        ehlo: args.ehlo.as_deref(),
        per_host: args.per_host,
        delay_ms: args.delay,
        max_connections: args.max_connections,
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        retry_delay: args.retry_delay,
        ca_file: args.ca_file.as_deref(),
        senders,
    })?;
    cfg.sni_override = args.sni.clone();
    cfg.no_sni = args.no_sni;
    if let Some(at) = args.at {
        cfg.at = at;
    }
    cfg.enumerate = args.enumerate;
    let require_dane = cfg
        .senders
        .profiles
        .iter()
        .any(|p| p.level == crate::senders::Level::DaneOnly);
    cfg.policy = policy_config(args, require_dane)?;
    cfg.bisect = args.bisect;
    Ok(cfg)
}

/// DANE and MTA-STS: on with --mx unless turned off, else on request.
fn policy_config(
    args: &ScanArgs,
    require_dane: bool,
) -> anyhow::Result<Option<std::sync::Arc<crate::policy::PolicyConfig>>> {
    let dane = (args.mx || args.dane) && !args.no_dane;
    let mta_sts = (args.mx || args.mta_sts) && !args.no_mta_sts;
    if !dane && !mta_sts {
        return Ok(None);
    }
    let resolver =
        crate::policy::dnssec::Resolver::new(args.dns, std::time::Duration::from_secs_f64(args.timeout.min(10.0)));
    Ok(Some(std::sync::Arc::new(crate::policy::PolicyConfig::new(
        resolver,
        dane,
        mta_sts,
        require_dane,
        args.ca_file.as_deref().map(std::path::PathBuf::from),
        parse_resolve(&args.resolve)?,
    ))))
}

fn emulate(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    use crate::emulate::profile::Profile;
    use anyhow::Context as _;
    if args.list_profiles {
        print!("{}", crate::emulate::list_profiles()?);
        return Ok(ExitCode::SUCCESS);
    }
    let profile = match (&args.profile, &args.config) {
        (Some(name), _) => Profile::shipped(name).context("reading --profile")?,
        (None, Some(path)) => Profile::from_file(path).context("reading --config")?,
        (None, None) => anyhow::bail!("reading the command line: name a --profile or a --config FILE"),
    };
    let opts = crate::emulate::Options {
        profile,
        listen: args.listen,
        json: args.json,
        smtp: args.front.map(|f| f == Front::Smtp),
        hostname: args.hostname,
        certs: args.cert,
        keys: args.key,
        exit_after: args.exit_after.map(|n| n as usize),
        rtt_ms: args.rtt,
        quiet: args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime
        .block_on(crate::emulate::run(opts))
        .context("running the emulator")?;
    Ok(ExitCode::SUCCESS)
}

fn mail_log(args: &LogArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let scan = common_config(&Common {
        ehlo: args.ehlo.as_deref(),
        per_host: args.per_host,
        delay_ms: args.delay,
        max_connections: args.max_connections,
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        retry_delay: args.retry_delay,
        ca_file: args.ca_file.as_deref(),
        senders: &args.sender,
    })?;
    let mut log = crate::maillog::Log::new(time::OffsetDateTime::now_utc());
    for path in &args.files {
        crate::maillog::run::read_file(path, &mut log)?;
    }
    let (destinations, counts) = log.finish();
    if !args.quiet {
        eprintln!("{}", crate::maillog::run::describe(&counts, destinations.len()));
    }
    let output = if args.json {
        crate::output::Output::Json
    } else {
        crate::output::Output::Terminal {
            colour: crate::style::colour_stdout(args.no_color),
        }
    };
    let cfg = crate::maillog::run::LogConfig {
        scan,
        output,
        concurrency: args.concurrency as usize,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let all_ok = runtime
        .block_on(crate::maillog::run::run(destinations, cfg))
        .context("scanning the log's destinations")?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let cfg = common_config(&Common {
        ehlo: None,
        per_host: 2,
        delay_ms: 0,
        max_connections: None,
        connect_timeout: 5.0,
        timeout: 10.0,
        // The receivers are in this process: a second look at a dropped
        // hello need not wait as long as a real MX's rate limit.
        retry_delay: 1.0,
        ca_file: None,
        senders: &args.sender,
    })?;
    let output = if args.json {
        crate::demo::Output::Json
    } else {
        crate::demo::Output::Terminal {
            colour: crate::style::colour_stdout(args.no_color),
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let all_ok = runtime
        .block_on(crate::demo::run(cfg, output))
        .context("running the demo")?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
