//! Command-line definitions (clap) and their conversion into the library's validated config.
//! Nothing here does work: `main.rs` dispatches, the library runs.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use mta_sts_scan::config::{MxProbeSettings, ScannerConfig};
use mta_sts_scan::diff::{ChangeKind, DiffJob};
use mta_sts_scan::net::address::AddressPolicy;
use mta_sts_scan::output::store::{Location, Placeholders, is_object_path, mentions_shard};
use mta_sts_scan::output::{Format, OutputTarget};
use mta_sts_scan::scan::job::{InputSource, ScanJob};
use mta_sts_scan::scan::pipeline::ScanSettings;
use mta_sts_scan::scan::shard::Shard;
use mta_sts_scan::serve::ServeSettings;
use mta_sts_scan::serve::auth::ApiKeys;
use mta_sts_scan::serve::client_limit::ClientRate;

/// Environment variable for `--log-format`.
pub const LOG_FORMAT_VARIABLE: &str = "MTA_STS_SCAN_LOG_FORMAT";

#[derive(Debug, Parser)]
#[command(
    name = "mta-sts-scan",
    version,
    // A later flag overrides an earlier one (wrappers and aliases add defaults in front).
    args_override_self = true,
    about = "Check MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) for one domain or millions",
    long_about = None,
    after_help = "Examples:\n  mta-sts-scan check example.com\n  mta-sts-scan scan tranco.csv -o results.parquet --summary summary.json\n  mta-sts-scan stats results.shard-*.parquet\n  mta-sts-scan report results.parquet -o report.html\n  mta-sts-scan serve --listen 127.0.0.1:8080\n  mta-sts-scan mcp\n  mta-sts-scan demo\n  mta-sts-scan lab --write-list lab.txt\n  mta-sts-scan completions bash\n\nFor scheduled jobs: --log-format json (or MTA_STS_SCAN_LOG_FORMAT=json) makes everything on stderr JSON lines.",
)]
pub struct Cli {
    /// How messages and the end-of-scan summary go to stderr: text for people, JSON lines for jobs.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        env = LOG_FORMAT_VARIABLE
    )]
    pub log_format: LogFormat,
    /// Colour in the output for people: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorChoice::Auto,
        env = COLOR_VARIABLE
    )]
    pub color: ColorChoice,
    /// More diagnostics on stderr: -v the scanner's debug lines (one per domain), -vv also the
    /// DNS library's (name servers, retries). RUST_LOG=target=level,... replaces both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Environment variable for `--color`.
pub const COLOR_VARIABLE: &str = "MTA_STS_SCAN_COLOR";

/// When to colour output meant for people (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set (https://no-color.org).
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that `is_terminal` or not; `no_color` is NO_COLOR being set
    /// (to anything but the empty string).
    pub fn enabled(self, is_terminal: bool, no_color: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        }
    }

    /// The same choice for clap's own help and error messages.
    pub fn for_clap(self) -> clap::ColorChoice {
        match self {
            ColorChoice::Auto => clap::ColorChoice::Auto,
            ColorChoice::Always => clap::ColorChoice::Always,
            ColorChoice::Never => clap::ColorChoice::Never,
        }
    }
}

/// The colour choice the arguments or the environment ask for, read without clap (for clap's
/// own output, which comes before parsing is done).
pub fn requested_color(
    args: &[std::ffi::OsString],
    environment_value: Option<std::ffi::OsString>,
) -> ColorChoice {
    let named = |name: &str| ColorChoice::from_str(name.trim(), true).ok();
    let mut requested = environment_value.and_then(|v| named(&v.to_string_lossy()));
    if let Some(value) = requested_flag(args, "--color") {
        requested = named(&value).or(requested);
    }
    requested.unwrap_or(ColorChoice::Auto)
}

/// The last value of `--flag VALUE` / `--flag=VALUE` before any `--`.
fn requested_flag(args: &[std::ffi::OsString], flag: &str) -> Option<String> {
    let mut found = None;
    let mut args = args.iter().map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix(flag) {
            Some("") => args.next().map(|value| value.into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if value.is_some() {
            found = value;
        }
    }
    found
}

/// The form of everything written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines and tables for a person; a progress bar on a terminal.
    Text,
    /// One JSON object per line (`level`, and `message` or `event`); no progress bar.
    Json,
}

/// The log format the arguments or the environment ask for, read without clap: for reporting
/// clap's own errors in the requested form.
pub fn requested_log_format(
    args: &[std::ffi::OsString],
    environment_value: Option<std::ffi::OsString>,
) -> LogFormat {
    let mut requested =
        environment_value.and_then(|value| log_format_named(&value.to_string_lossy()));
    let mut args = args.iter().map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--log-format") {
            Some("") => args.next().map(|value| value.into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if let Some(format) = value.as_deref().and_then(log_format_named) {
            requested = Some(format);
        }
    }
    requested.unwrap_or(LogFormat::Text)
}

fn log_format_named(name: &str) -> Option<LogFormat> {
    LogFormat::from_str(name.trim(), false).ok()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check one domain and explain every finding.
    #[command(
        after_help = "Examples:\n  mta-sts-scan check example.com\n  mta-sts-scan check example.com --json\n  mta-sts-scan check example.com example.org --json\n  cut -d, -f2 suppliers.csv | mta-sts-scan check - --json > reports.jsonl\n\nExit status: 0 valid, 1 invalid or absent, 2 error (lookup failed, bad input or arguments); with several domains, the worst of them."
    )]
    Check(CheckArgs),
    /// Scan a domain list into CSV, Parquet or JSON Lines, with adoption statistics.
    #[command(
        after_help = "Examples:\n  mta-sts-scan scan tranco.csv -o results.parquet --summary summary.json\n  mta-sts-scan scan suppliers.txt -o results.csv\n  cat domains.txt | mta-sts-scan scan - -o - --format jsonl\n  mta-sts-scan scan suppliers.txt -o results.csv --report report.html --fail-on invalid,delivery-at-risk\n\nInput: Tranco-style rank,domain; a header row with a `domain` column (or --column); or one domain per line. Blank lines and # comments are skipped; every other line gives exactly one output row.\n\nExit status: 0 when the scan completed (whatever the verdicts, unless --fail-on matched: then 1), 2 for bad arguments or unreadable input or unwritable output, 130 when interrupted (the output is still closed properly and the partial summary printed)."
    )]
    Scan(Box<ScanArgs>),
    /// Recompute the summary from one or more result files (any format; shards merge).
    #[command(
        after_help = "Examples:\n  mta-sts-scan stats results.parquet\n  mta-sts-scan stats shard-*.csv --json > summary.json"
    )]
    Stats(StatsArgs),
    /// Compare two runs: one row per domain that changed, and a summary of the transitions.
    #[command(
        after_help = "Examples:\n  mta-sts-scan diff last-week.parquet this-week.parquet -o changes.csv\n  mta-sts-scan diff 's3://lake/mta-sts/dt=2026-11-23/*.parquet' 's3://lake/mta-sts/dt=2026-11-30/*.parquet' -o changes.parquet --summary changes.json\n\nChange kinds: outcome, mode, policy_changed_id_kept, id_changed_policy_kept, mx_changed, newly_uncovered, provider_changed, tls_rpt_added, tls_rpt_removed, appeared, disappeared.\n\nExit status: 0 (whatever changed), 1 when a kind named by --fail-on-change occurred, 2 for bad arguments or unreadable files."
    )]
    Diff(DiffArgs),
    /// Write an HTML report (charts, headline numbers, per-domain table) from result files.
    #[command(
        after_help = "Examples:\n  mta-sts-scan report results.parquet -o report.html\n  mta-sts-scan report results.shard-*.csv --summary summary.json -o report.html\n  mta-sts-scan scan suppliers.txt -o results.csv --report report.html\n\nThe page is one self-contained file (styles, script and SVG charts inline: it opens without network access). Its numbers are those of `stats --json`, which it embeds. The per-domain table lists the domains that need action first; past --max-rows it keeps the most urgent rows and says how many it left out."
    )]
    Report(ReportArgs),
    /// Scan the demo list against the built-in test internet (offline) and print the summary.
    #[command(
        after_help = "Examples:\n  mta-sts-scan demo\n  mta-sts-scan demo --dir ./demo-out --format parquet\n\nThe test internet runs inside the process: a DNS server and an HTTPS server on 127.0.0.1 serving one domain per scenario (valid policies, every defect the scanner reports, hostile servers). Nothing leaves the machine."
    )]
    Demo(DemoArgs),
    /// Run the built-in test internet until interrupted, and print the scanner flags that reach it.
    #[command(
        after_help = "Examples:\n  mta-sts-scan lab --write-list lab.txt --domains 100000\n  mta-sts-scan scan lab.txt -o out.parquet $(cat lab-flags.txt)\n\nFor labs, benchmarks and trying the tool offline: its DNS and HTTPS servers listen on 127.0.0.1 only."
    )]
    Lab(LabArgs),
    /// Serve the check over HTTP: GET /v1/security/mta-sts?domain=D gives the `check --json` body; MCP at /mcp.
    #[command(
        after_help = "Examples:\n  mta-sts-scan serve\n  mta-sts-scan serve --listen 0.0.0.0:8080 --max-concurrent 128 --resolver 127.0.0.1\n  mta-sts-scan serve --api-key-file keys.txt --client-rate 60/min --allowed-host mta-sts.example.net\n  curl 'http://127.0.0.1:8080/v1/security/mta-sts?domain=example.com'\n  curl http://127.0.0.1:8080/healthz\n  curl http://127.0.0.1:8080/openapi.json\n\nAnswers: 200 with the report (whatever its outcome), 400 missing or invalid domain, 401 no valid API key (with --api-key-file), 404 unknown path, 405 not GET, 429 over --client-rate (with Retry-After), 503 no check slot freed up before --request-timeout, 504 the check did not finish before it. Every body is JSON. /mcp speaks MCP (streamable HTTP) for AI assistants. One access log line per request goes to stderr.\n\nExit status: 0 after Ctrl-C/SIGTERM (requests in flight are answered first), 2 when the address cannot be bound or the arguments are bad."
    )]
    Serve(ServeArgs),
    /// Serve the check to an AI assistant over MCP (stdio): tools check_mta_sts, explain_issue, check_many.
    #[command(
        after_help = "Examples:\n  mta-sts-scan mcp\n  mta-sts-scan mcp --resolver 9.9.9.9\n\nAn assistant starts it itself; in Claude Desktop's or Cursor's MCP configuration:\n  {\"mcpServers\": {\"mta-sts\": {\"command\": \"mta-sts-scan\", \"args\": [\"mcp\"]}}}\n\nStandard output carries the protocol only; messages go to stderr. It ends when the assistant closes standard input. For MCP over HTTP, use `serve` (endpoint /mcp)."
    )]
    Mcp(McpArgs),
    /// Print a shell completion script to standard output.
    #[command(
        after_help = "Examples:\n  mta-sts-scan completions bash > ~/.local/share/bash-completion/completions/mta-sts-scan\n  mta-sts-scan completions zsh > ~/.zfunc/_mta-sts-scan\n  mta-sts-scan completions fish > ~/.config/fish/completions/mta-sts-scan.fish\n  mta-sts-scan completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT (0.0.0.0:8080 for every interface, in a container).
    #[arg(
        long,
        value_name = "IP:PORT",
        default_value = "127.0.0.1:8080",
        env = "MTA_STS_SCAN_LISTEN"
    )]
    pub listen: SocketAddr,
    /// Checks running at once; a request waits for a free slot until its deadline, then gets 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_concurrent: usize,
    /// Longest a request may take, waiting included; a check still running then gets 504.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Require `Authorization: Bearer KEY` with one of the keys in this file (one per line, at
    /// least 16 characters; # comments). /healthz and /openapi.json stay open.
    #[arg(long, value_name = "PATH", env = "MTA_STS_SCAN_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Requests each client address may make, as N/s, N/min or N/h (a burst of N, then 429
    /// with Retry-After). Behind a proxy every request comes from the proxy's address.
    #[arg(long, value_name = "RATE", env = "MTA_STS_SCAN_CLIENT_RATE", value_parser = ClientRate::parse)]
    pub client_rate: Option<ClientRate>,
    /// The header in which the proxy in front writes the client's address (X-Forwarded-For,
    /// X-Real-IP), for --client-rate and the access log. Only when clients cannot bypass the proxy.
    #[arg(long, value_name = "HEADER", value_parser = parse_header_name)]
    pub client_address_header: Option<axum::http::HeaderName>,
    /// A host name (or host:port) clients use to reach /mcp, besides localhost, 127.0.0.1 and
    /// ::1; repeat for several. MCP requests for other Host headers get 403 (DNS rebinding).
    #[arg(long = "allowed-host", value_name = "HOST", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Longest one check may take (check_many: each domain), waiting included.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    #[command(flatten)]
    pub net: NetArgs,
}

fn parse_header_name(text: &str) -> Result<axum::http::HeaderName, String> {
    axum::http::HeaderName::from_bytes(text.trim().as_bytes())
        .map_err(|_| format!("{text:?} is not an HTTP header name"))
}

/// Checks one `mcp` session runs at once (a check_many call uses up to 16).
pub const MCP_CONCURRENT_CHECKS: usize = 16;

impl McpArgs {
    /// The scanner config these flags describe.
    pub fn to_config(&self) -> Result<ScannerConfig, String> {
        let mut config = self.net.to_config()?;
        config.dns.max_in_flight = config
            .dns
            .max_in_flight
            .max(MCP_CONCURRENT_CHECKS.saturating_mul(4));
        Ok(config)
    }
}

impl ServeArgs {
    /// The scanner config and the server settings these flags describe.
    pub fn to_settings(&self) -> Result<(ScannerConfig, ServeSettings), String> {
        if self.max_concurrent == 0 {
            return Err("--max-concurrent must be at least 1".into());
        }
        let mut config = self.net.to_config()?;
        // Enough resolver slots for every check's three concurrent queries.
        config.dns.max_in_flight = config
            .dns
            .max_in_flight
            .max(self.max_concurrent.saturating_mul(4));
        let api_keys = self
            .api_key_file
            .as_deref()
            .map(ApiKeys::from_file)
            .transpose()?;
        let settings = ServeSettings {
            max_concurrent: self.max_concurrent,
            request_timeout: self.request_timeout,
            api_keys,
            client_rate: self.client_rate,
            client_address_header: self.client_address_header.clone(),
            mcp_allowed_hosts: self.allowed_hosts.clone(),
            access_log: None,
        };
        Ok((config, settings))
    }
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Where to write the lab's root certificate (PEM), for --ca-file.
    #[arg(long, value_name = "PATH", default_value = "lab-ca.pem")]
    pub ca_out: PathBuf,
    /// Where to write the scanner flags that reach the lab (one line).
    #[arg(long, value_name = "PATH", default_value = "lab-flags.txt")]
    pub flags_out: PathBuf,
    /// Also write a domain list of the realistic mix (2% MTA-STS, 10% NXDOMAIN) to this file.
    #[arg(long, value_name = "PATH")]
    pub write_list: Option<PathBuf>,
    /// Number of domains in that list.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub domains: u64,
    /// Delay every DNS and HTTP answer by this long (latency experiments).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub delay: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the list, the results and the summary (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Format of the results file.
    #[arg(long, value_name = "FORMAT", default_value = "csv", value_parser = ["csv", "parquet", "jsonl"])]
    pub format: String,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The domain list: a CSV or text file, or `-` for standard input.
    pub input: String,
    /// Output file, or `-` for standard output (CSV or JSON Lines only). `s3://bucket/key`
    /// writes to an object store (credentials and endpoint from AWS_* variables); `{date}`,
    /// `{shard}` and `{run_id}` in the path are filled in (e.g. `s3://lake/dt={date}/part-{shard}.parquet`).
    #[arg(short, long, value_name = "PATH", default_value = "-")]
    pub output: String,
    /// Output format; by default from the output file's extension, CSV for standard output.
    #[arg(long, value_name = "FORMAT", value_parser = ["csv", "parquet", "jsonl"])]
    pub format: Option<String>,
    /// The header column that holds the domain (default: a column named `domain`).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Domains checked at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        env = "MTA_STS_SCAN_CONCURRENCY"
    )]
    pub concurrency: usize,
    /// DNS queries per second for the whole scan (0 = unlimited). The default is polite to public resolvers.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 300,
        env = "MTA_STS_SCAN_DNS_RATE"
    )]
    pub dns_rate: u32,
    /// Policy fetches (HTTPS requests) per second for the whole scan (0 = unlimited).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 50,
        env = "MTA_STS_SCAN_HTTPS_RATE"
    )]
    pub https_rate: u32,
    /// Longest time one domain may take, all lookups included; past it the row is `error`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub domain_timeout: Duration,
    /// Also write the summary as JSON to this file (or `s3://` object; placeholders as for -o).
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,
    /// No progress bar and no summary table on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Scan only shard K of N (by a stable hash of the domain); `N` alone takes K from
    /// JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID. Output and summary
    /// names get `.shard-K-of-N` before their extension.
    #[arg(long, value_name = "K/N", env = "MTA_STS_SCAN_SHARD")]
    pub shard: Option<String>,
    /// Continue an interrupted scan: rows already in the output file are skipped, the rest
    /// appended (Parquet: added as parts and merged at the end).
    #[arg(long)]
    pub resume: bool,
    /// How often the output is made durable (CSV/JSON Lines: whole lines written; Parquet: a
    /// part file closed). A killed scan loses at most this much work.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// With --probe-mx, also write one row per probed MX host here (CSV, Parquet or JSON Lines
    /// by extension): the spec §7 MX table, to join with the domain rows on `mx_host`.
    #[arg(long, value_name = "PATH")]
    pub mx_output: Option<PathBuf>,
    /// Also write an HTML report of the results to this file (needs an output file, -o PATH).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Exit with status 1 when any row matches one of these (comma-separated): invalid, error,
    /// absent, input-error, delivery-at-risk, or an issue code. The scan still completes and
    /// writes everything.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub fail_on: Vec<String>,
    /// The run's name, for the `{run_id}` placeholder of output paths (default: the UTC start
    /// time, YYYYMMDDTHHMMSSZ). Give every shard of one run the same id.
    #[arg(long, value_name = "ID", env = "MTA_STS_SCAN_RUN_ID")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run: a result file (any format), an `s3://` object, or a quoted glob of shards.
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The later run, likewise.
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Where the changed rows go: a file, an `s3://` object, or `-` for standard output.
    #[arg(short, long, value_name = "PATH", default_value = "-")]
    pub output: String,
    /// Output format; by default from the output file's extension, CSV for standard output.
    #[arg(long, value_name = "FORMAT", value_parser = ["csv", "parquet", "jsonl"])]
    pub format: Option<String>,
    /// Also write the summary (counts per change kind, outcome transitions) as JSON here.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<String>,
    /// Exit with status 1 when any of these change kinds occurred (comma-separated).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub fail_on_change: Vec<String>,
    /// No summary table on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

impl DiffArgs {
    /// The diff job and the change kinds that fail it.
    pub fn to_job(&self) -> Result<(DiffJob, Vec<ChangeKind>), String> {
        let format = match &self.format {
            Some(name) => Format::from_name(name).ok_or_else(|| format!("unknown --format {name}"))?,
            None if self.output == "-" => Format::Csv,
            None => Format::from_path(std::path::Path::new(&self.output)).ok_or_else(|| {
                format!(
                    "cannot tell the format of {} from its extension: use .csv, .parquet or .jsonl, or --format",
                    self.output
                )
            })?,
        };
        let fail_on = self
            .fail_on_change
            .iter()
            .map(|name| {
                ChangeKind::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                    format!(
                        "--fail-on-change: unknown change kind {name:?} (one of {})",
                        known.join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let job = DiffJob {
            old: self.old.clone(),
            new: self.new.clone(),
            output: self.output.clone(),
            format,
            summary: self.summary.clone(),
        };
        Ok((job, fail_on))
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result files written by `scan` (CSV, Parquet or JSON Lines, by extension; shards merge).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(short, long, value_name = "PATH", default_value = "report.html")]
    pub output: PathBuf,
    /// The scan's summary JSON (`scan --summary`): its run metadata (resolver, settings, times)
    /// goes into the report. The numbers are always recomputed from the files.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,
    /// Most rows in the per-domain table (the most urgent are kept).
    #[arg(long, value_name = "N", default_value_t = mta_sts_scan::html_report::DEFAULT_MAX_ROWS)]
    pub max_rows: usize,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Result files written by `scan` (CSV, Parquet or JSON Lines, by extension).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the summary as JSON on standard output instead of the table.
    #[arg(long)]
    pub json: bool,
    /// MX tables written by `scan --mx-output` (repeatable): adds the MX-host funnel (spec §7).
    #[arg(long = "mx-table", value_name = "FILE")]
    pub mx_tables: Vec<PathBuf>,
}

impl ScanArgs {
    /// The scan job and the scanner config these flags describe.
    pub fn to_job(&self, show_progress: bool) -> Result<(ScanJob, ScannerConfig), String> {
        let mut config = self.net.to_config()?;
        config.dns_rate = NonZeroU32::new(self.dns_rate);
        config.https_rate = NonZeroU32::new(self.https_rate);
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "--concurrency must be between 1 and {MAX_CONCURRENCY}"
            ));
        }
        // Domains waiting for DNS rate tokens wait inside their deadline: keep that queue
        // (about three lookups per domain) under half of --domain-timeout.
        let mut concurrency = self.concurrency;
        if let Some(rate) = config.dns_rate {
            let seconds = self.domain_timeout.as_secs().max(1);
            let most = (u64::from(rate.get()) * seconds / 6).max(1);
            concurrency = concurrency.min(usize::try_from(most).unwrap_or(usize::MAX));
        }
        // Enough resolver slots for every domain's three concurrent queries.
        config.dns.max_in_flight = config.dns.max_in_flight.max(concurrency * 4);
        let shard = self
            .shard
            .as_deref()
            .map(|spec| Shard::parse(spec, |name| std::env::var(name).ok()))
            .transpose()?;
        let placeholders = Placeholders::new(
            mta_sts_scan::report::now_millis(),
            shard.map(|shard| (shard.index, shard.count)),
            self.run_id.as_deref(),
        );
        // `{date}`, `{shard}`, `{run_id}` filled in; `.shard-K-of-N` added unless `{shard}` is used.
        let sharded = |template: &str| -> Result<PathBuf, String> {
            let path = PathBuf::from(placeholders.expand(template)?);
            if is_object_path(&path) {
                Location::parse(&path.to_string_lossy())?;
            }
            Ok(match shard {
                Some(shard) if !mentions_shard(template) => shard.output_path(&path),
                _ => path,
            })
        };
        let output = if self.output == "-" {
            OutputTarget::Stdout
        } else {
            OutputTarget::File(sharded(&self.output)?)
        };
        let format = match (&self.format, &output) {
            (Some(name), _) => Format::from_name(name).ok_or_else(|| format!("unknown --format {name}"))?,
            (None, OutputTarget::File(path)) => Format::from_path(path).ok_or_else(|| {
                format!(
                    "cannot tell the format of {} from its extension: use .csv, .parquet or .jsonl, or --format",
                    path.display()
                )
            })?,
            (None, OutputTarget::Stdout) => Format::Csv,
        };
        let job = ScanJob {
            input: InputSource::from_arg(&self.input),
            column: self.column.clone(),
            output,
            format,
            summary: self
                .summary
                .as_ref()
                .map(|path| sharded(&path.to_string_lossy()))
                .transpose()?,
            show_progress,
            shard,
            resume: self.resume,
            mx_output: self
                .mx_output
                .as_ref()
                .map(|path| sharded(&path.to_string_lossy()))
                .transpose()?,
            settings: ScanSettings {
                concurrency,
                domain_timeout: self.domain_timeout,
                flush_interval: self.flush_interval,
            },
        };
        Ok((job, config))
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The domains to check (IDNs are accepted and converted to A-labels); `-` reads one per
    /// line from standard input.
    #[arg(required = true, value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Print the result as JSON (the hosted endpoint's field names plus every column): one
    /// pretty object for one domain, JSON Lines (one object per line) for several.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Network settings shared by every subcommand that looks domains up.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Name server to use, IP or IP:PORT; repeat for failover. Default: /etc/resolv.conf.
    #[arg(
        long = "resolver",
        value_name = "IP[:PORT]",
        env = "MTA_STS_SCAN_RESOLVER",
        value_delimiter = ','
    )]
    pub resolvers: Vec<String>,
    /// Time to wait for one DNS answer (e.g. 800ms, 3s).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration, env = "MTA_STS_SCAN_DNS_TIMEOUT")]
    pub dns_timeout: Duration,
    /// Tries per name server before a lookup fails.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        env = "MTA_STS_SCAN_DNS_ATTEMPTS"
    )]
    pub dns_attempts: usize,
    /// Extra tries, with exponential backoff from 250ms, after a lookup ends in SERVFAIL or a timeout.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        env = "MTA_STS_SCAN_RETRIES"
    )]
    pub retries: u32,
    /// DNS implementation: `scan` (a pool of long-lived UDP sockets, built for bulk scans) or
    /// `hickory` (hickory-resolver, a socket per query).
    #[arg(long, value_name = "ENGINE", default_value = "scan", env = "MTA_STS_SCAN_DNS_ENGINE", value_parser = ["scan", "hickory"])]
    pub dns_engine: String,
    /// Time allowed for the TCP connect and TLS handshake of the policy fetch.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Time allowed for the whole policy fetch, body included.
    #[arg(long = "fetch-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub fetch_timeout: Duration,
    /// Largest policy body read, in bytes; larger is `policy_too_large`.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_policy_bytes: usize,
    /// Extra trusted CA certificates (PEM), added to the trust store chosen by --trust-store.
    #[arg(long, value_name = "PEM", env = "MTA_STS_SCAN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Trust anchors for HTTPS: `mozilla` (a pinned, versioned copy of Mozilla's roots, the
    /// same on every machine) or `system` (the operating system's store).
    #[arg(long, value_name = "STORE", default_value = "mozilla", env = "MTA_STS_SCAN_TRUST_STORE", value_parser = ["mozilla", "system"])]
    pub trust_store: String,
    /// Let the policy fetch connect to loopback, private and other non-public addresses (labs only).
    #[arg(long)]
    pub allow_private_addresses: bool,
    /// Fetch the policy even without a TXT record (finds `policy_without_record`).
    #[arg(long)]
    pub probe_policy: bool,
    /// HTTPS port of policy hosts. RFC 8461 says 443: other values are for labs and tests only.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub policy_port: u16,
    /// HTTPS proxy for policy fetches (none by default, whatever the environment says).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Probe every MX host over SMTP: EHLO, STARTTLS, certificate (spec §7). Off by default:
    /// it connects to third-party mail servers on port 25. Never sends mail.
    #[arg(long, env = "MTA_STS_SCAN_PROBE_MX")]
    pub probe_mx: bool,
    /// MX hosts probed per domain, in preference order.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_mx_probed: usize,
    /// Time allowed for one MX host's whole SMTP exchange (banner to QUIT), after the connect.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub smtp_timeout: Duration,
    /// The name sent in EHLO (default: this machine's host name). Receivers trust a name whose
    /// reverse DNS confirms the scanner's address.
    #[arg(long, value_name = "NAME", env = "MTA_STS_SCAN_EHLO_NAME")]
    pub ehlo_name: Option<String>,
    /// SMTP connections open at once to one address.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub smtp_per_ip: usize,
    /// New SMTP connections per second for the whole scan (0 = unlimited).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub smtp_rate: u32,
    /// SMTP port of MX hosts. Real MX hosts listen on 25: other values are for labs and tests only.
    #[arg(long, value_name = "PORT", default_value_t = 25)]
    pub smtp_port: u16,
}

impl NetArgs {
    /// Turns the flags into the library's validated config.
    pub fn to_config(&self) -> Result<ScannerConfig, String> {
        let mut config = ScannerConfig::default();
        for resolver in &self.resolvers {
            config.dns.nameservers.push(parse_resolver(resolver)?);
        }
        if self.dns_attempts == 0 {
            return Err("--dns-attempts must be at least 1".into());
        }
        config.dns.timeout = self.dns_timeout;
        config.dns.attempts = self.dns_attempts;
        config.dns.retries = self.retries;
        config.dns.engine = self.dns_engine.parse()?;
        config.http.connect_timeout = self.connect_timeout;
        config.http.total_timeout = self.fetch_timeout.max(self.connect_timeout);
        if self.max_policy_bytes == 0 {
            return Err("--max-policy-bytes must be positive".into());
        }
        config.http.body_cap = self.max_policy_bytes;
        config.http.policy_port = self.policy_port;
        config.http.proxy = self.proxy.clone();
        config.http.trust_store = self.trust_store.parse()?;
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --ca-file {}: {e}", path.display()))?;
            config.http.extra_roots_pem = Some(pem);
        }
        config.validation.address_policy = AddressPolicy {
            allow_private: self.allow_private_addresses,
            allow_loopback: false,
        };
        config.validation.probe_policy = self.probe_policy;
        if self.max_mx_probed == 0 {
            return Err("--max-mx-probed must be at least 1".into());
        }
        config.validation.max_mx_probed = self.max_mx_probed;
        if self.probe_mx {
            let ehlo_name = match &self.ehlo_name {
                Some(name) => name.clone(),
                None => machine_host_name(),
            };
            config.mx_probe = Some(MxProbeSettings {
                ehlo_name,
                smtp_timeout: self.smtp_timeout,
                port: self.smtp_port,
                per_ip: self.smtp_per_ip.max(1),
                rate: NonZeroU32::new(self.smtp_rate),
                cache_hosts: None,
            });
        }
        Ok(config)
    }
}

/// This machine's host name, for EHLO (`localhost` when it cannot be read).
fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty() && name.is_ascii() && !name.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Most domains in flight: each holds about three sockets and some memory.
const MAX_CONCURRENCY: usize = 100_000;

/// `IP`, `IP:PORT`, `[IPv6]:PORT`.
fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("--resolver {text:?} is not an IP address or IP:PORT"))
}

/// `250ms`, `3s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 500ms, 3s or 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} must be a positive duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, expected) in [
            ("250ms", Some(Duration::from_millis(250))),
            ("3s", Some(Duration::from_secs(3))),
            ("2m", Some(Duration::from_secs(120))),
            ("5", Some(Duration::from_secs(5))),
            ("0s", None),
            ("fast", None),
            ("3x", None),
            ("99999999999999999999999h", None),
        ] {
            assert_eq!(parse_duration(text).ok(), expected, "{text}");
        }
    }

    #[test]
    fn resolvers() {
        assert_eq!(
            parse_resolver("9.9.9.9").unwrap(),
            "9.9.9.9:53".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("[::1]:53").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert!(parse_resolver("dns.google").is_err());
    }

    #[test]
    fn color_choices() {
        let args = |list: &[&str]| -> Vec<std::ffi::OsString> {
            list.iter().map(std::ffi::OsString::from).collect()
        };
        assert_eq!(
            requested_color(&args(&["check", "--color", "always"]), None),
            ColorChoice::Always
        );
        assert_eq!(
            requested_color(&args(&["--color=never", "check"]), Some("always".into())),
            ColorChoice::Never
        );
        assert_eq!(
            requested_color(&args(&["check"]), Some("ALWAYS".into())),
            ColorChoice::Always
        );
        assert_eq!(
            requested_color(&args(&["check", "--", "--color=always"]), None),
            ColorChoice::Auto
        );
        for (choice, terminal, no_color, expected) in [
            (ColorChoice::Auto, true, false, true),
            (ColorChoice::Auto, true, true, false),
            (ColorChoice::Auto, false, false, false),
            (ColorChoice::Always, false, true, true),
            (ColorChoice::Never, true, false, false),
        ] {
            assert_eq!(
                choice.enabled(terminal, no_color),
                expected,
                "{choice:?} {terminal} {no_color}"
            );
        }
    }

    #[test]
    fn log_format_is_found_without_clap() {
        let args = |list: &[&str]| -> Vec<std::ffi::OsString> {
            list.iter().map(std::ffi::OsString::from).collect()
        };
        let json = Some(std::ffi::OsString::from("json"));
        assert_eq!(
            requested_log_format(&args(&["scan", "--log-format", "json"]), None),
            LogFormat::Json
        );
        assert_eq!(
            requested_log_format(&args(&["--log-format=json", "scan"]), None),
            LogFormat::Json
        );
        assert_eq!(
            requested_log_format(&args(&["scan"]), json.clone()),
            LogFormat::Json
        );
        assert_eq!(
            requested_log_format(&args(&["scan", "--log-format", "text"]), json),
            LogFormat::Text
        );
        assert_eq!(
            requested_log_format(&args(&["scan", "--", "--log-format=json"]), None),
            LogFormat::Text
        );
        assert_eq!(
            requested_log_format(&args(&["scan"]), None),
            LogFormat::Text
        );
    }
}
