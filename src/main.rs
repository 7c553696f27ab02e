//! The `mta-sts-scan` binary: parses flags into the library's config, runs the subcommand, and
//! turns the result into an exit status.

mod cli;
mod logging;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};
use futures::StreamExt;
use serde::Serialize;

use cli::{
    CheckArgs, Cli, ColorChoice, Command, CompletionsArgs, DemoArgs, DiffArgs, LabArgs, LogFormat,
    McpArgs, ReportArgs, ScanArgs, ServeArgs, StatsArgs,
};
use mta_sts_scan::html_report::{self, ReportBuilder};
use mta_sts_scan::output::store::expand_sources;
use mta_sts_scan::output::{OutputTarget, read_results};
use mta_sts_scan::report::{DomainReport, Outcome, format_millis};
use mta_sts_scan::scan::fail_on::FailOn;
use mta_sts_scan::scan::job::run_job;
use mta_sts_scan::scan::stats::{RunInfo, Statistics, Summary};

/// Exit status of a scan stopped by a signal (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;
/// Exit status of a completed scan with a row that `--fail-on` names.
const EXIT_FAIL_ON: u8 = 1;
/// Exit status for bad arguments and errors.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let color = cli::requested_color(&arguments, std::env::var_os(cli::COLOR_VARIABLE));
    let parsed = Cli::command()
        .color(color.for_clap())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => return report_usage_error(&error),
    };
    let log = Stderr(cli.log_format);
    if let Some(warning) = logging::init(cli.verbose, log.is_json(), std::env::var("RUST_LOG").ok())
    {
        log.info(&format!("warning: {warning}"));
    }
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            log.error(&format!("cannot start the async runtime: {error}"));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => check(args, cli.color).await,
            Command::Scan(args) => scan(*args, log).await,
            Command::Stats(args) => stats(args),
            Command::Diff(args) => diff(args, log),
            Command::Report(args) => report(args, log),
            Command::Demo(args) => demo(args, log).await,
            Command::Lab(args) => lab(args, log).await,
            Command::Serve(args) => serve(args, log).await,
            Command::Mcp(args) => mcp(args).await,
            Command::Completions(args) => completions(&args),
        }
    });
    // The input reader may be blocked reading a stdin that never closes: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(message) => {
            log.error(&message);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Help and version go to stdout as clap writes them; argument errors go to stderr, as a JSON
/// line when the arguments or the environment ask for `--log-format json`.
fn report_usage_error(error: &clap::Error) -> ExitCode {
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let format = cli::requested_log_format(&arguments, std::env::var_os(cli::LOG_FORMAT_VARIABLE));
    if !error.use_stderr() || format == LogFormat::Text {
        error.exit();
    }
    let message = error.render().to_string();
    let message = message.trim_end();
    Stderr(format).error(message.strip_prefix("error: ").unwrap_or(message));
    ExitCode::from(EXIT_ERROR)
}

/// Everything the binary writes to stderr, as text for a person or as JSON lines for a job.
#[derive(Debug, Clone, Copy)]
struct Stderr(LogFormat);

#[derive(Serialize)]
struct MessageLine<'a> {
    level: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    level: &'static str,
    event: &'static str,
    summary: Summary<'a>,
}

#[derive(Serialize)]
struct DemoDoneLine<'a> {
    level: &'static str,
    event: &'static str,
    directory: &'a std::path::Path,
    results: &'a std::path::Path,
    summary: &'a std::path::Path,
    /// The HTML report (a key added after the first release: consumers ignore unknown keys).
    report: &'a std::path::Path,
    interrupted: bool,
}

#[derive(Serialize)]
struct LabReadyLine<'a> {
    level: &'static str,
    event: &'static str,
    dns: String,
    https_port: u16,
    ca_file: &'a std::path::Path,
    flags_file: &'a std::path::Path,
    flags: &'a str,
    domain_list: Option<&'a std::path::Path>,
    domains: Option<u64>,
}

#[derive(Serialize)]
struct RequestLine<'a> {
    level: &'static str,
    event: &'static str,
    #[serde(flatten)]
    entry: &'a mta_sts_scan::serve::AccessLogEntry,
}

#[derive(Serialize)]
struct ServeLine {
    level: &'static str,
    event: &'static str,
    address: String,
}

impl Stderr {
    fn is_json(self) -> bool {
        self.0 == LogFormat::Json
    }

    /// One JSON line (for the JSON format only).
    fn json_line(self, line: &impl Serialize) {
        match serde_json::to_string(line) {
            Ok(text) => eprintln!("{text}"),
            Err(error) => eprintln!(
                "{{\"level\":\"error\",\"message\":\"cannot write a log line as JSON: {}\"}}",
                error.to_string().replace(['"', '\\'], "'")
            ),
        }
    }

    fn error(self, message: &str) {
        if self.is_json() {
            self.json_line(&MessageLine {
                level: "error",
                message,
            });
        } else {
            eprintln!("error: {message}");
        }
    }

    fn info(self, message: &str) {
        if self.is_json() {
            self.json_line(&MessageLine {
                level: "info",
                message,
            });
        } else {
            eprintln!("{message}");
        }
    }

    /// One access log line: `CLIENT METHOD PATH STATUS DURATION`, or a `request` event.
    fn request(self, entry: &mta_sts_scan::serve::AccessLogEntry) {
        if self.is_json() {
            self.json_line(&RequestLine {
                level: "info",
                event: "request",
                entry,
            });
        } else {
            let client = entry
                .client
                .map_or_else(|| "-".to_owned(), |client| client.to_string());
            eprintln!(
                "{client} {} {} {} {} ms",
                entry.method, entry.path, entry.status, entry.duration_ms
            );
        }
    }

    /// The end-of-scan summary: the table, or one `summary` event.
    fn summary(self, statistics: &Statistics, run: &RunInfo) {
        if self.is_json() {
            self.json_line(&SummaryLine {
                level: "info",
                event: "summary",
                summary: statistics.summary(run),
            });
        } else {
            eprint!("{}", statistics.render_table(run));
        }
    }
}

/// Domains checked at once by `check` with several domains.
const CHECK_CONCURRENCY: usize = 8;

/// `check DOMAIN...`: 0 valid, 1 invalid or absent, 2 error or input error; with several
/// domains the worst. Reports come out in the order given.
async fn check(args: CheckArgs, color: ColorChoice) -> Result<ExitCode, String> {
    let config = args.net.to_config()?;
    let validator = config.build_validator()?;
    let domains = check_domains(&args.domains)?;
    // One domain named on the command line keeps the pretty JSON object; anything else is
    // JSON Lines, one object per line.
    let json_lines = args.json && (domains.len() != 1 || args.domains.iter().any(|d| d == "-"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = color.enabled(std::io::stdout().is_terminal(), no_color);
    let mut reports = futures::stream::iter(domains.iter())
        .map(|domain| validator.check_input(domain, None))
        .buffered(CHECK_CONCURRENCY);
    let mut worst = 0u8;
    let mut first = true;
    while let Some(report) = reports.next().await {
        let mut stdout = std::io::stdout().lock();
        write_check_report(&mut stdout, &report, args.json, json_lines, color, first)
            .map_err(|e| format!("cannot write to standard output: {e}"))?;
        first = false;
        worst = worst.max(match report.outcome {
            Outcome::Valid => 0,
            Outcome::Invalid | Outcome::Absent => 1,
            Outcome::Error | Outcome::InputError => 2,
        });
    }
    Ok(ExitCode::from(worst))
}

/// The domains of `check`: as given, with `-` replaced by standard input's lines (blank lines
/// and `#` comments skipped). Read whole: `check` is for a handful, `scan` for lists.
fn check_domains(args: &[String]) -> Result<Vec<String>, String> {
    let mut domains = Vec::new();
    for arg in args {
        if arg != "-" {
            domains.push(arg.clone());
            continue;
        }
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                domains.push(line.to_owned());
            }
        }
    }
    Ok(domains)
}

fn write_check_report(
    out: &mut impl Write,
    report: &DomainReport,
    json: bool,
    json_lines: bool,
    color: bool,
    first: bool,
) -> std::io::Result<()> {
    let to_io = |e: serde_json::Error| std::io::Error::other(e.to_string());
    if json_lines {
        writeln!(out, "{}", serde_json::to_string(report).map_err(to_io)?)
    } else if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(report).map_err(to_io)?
        )
    } else {
        if !first {
            writeln!(out)?;
        }
        write!(out, "{}", mta_sts_scan::text_report::render(report, color))
    }
}

/// `scan INPUT`: 0 completed, 2 bad arguments / input / output, 130 interrupted.
async fn scan(args: ScanArgs, log: Stderr) -> Result<ExitCode, String> {
    let fail_on = FailOn::parse(&args.fail_on)?;
    let show_progress = !args.quiet && !log.is_json() && std::io::stderr().is_terminal();
    let (job, config) = args.to_job(show_progress)?;
    let report = match (&args.report, &job.output) {
        (None, _) => None,
        (Some(_), OutputTarget::Stdout) => {
            return Err(
                "--report needs an output file (-o PATH): the report reads the results back"
                    .to_owned(),
            );
        }
        (Some(path), OutputTarget::File(results)) => {
            let path = match job.shard {
                Some(shard) => shard.output_path(path),
                None => path.clone(),
            };
            // Fail before scanning, not after, when the report cannot be written.
            std::fs::File::create(&path)
                .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
            Some((path, results.clone()))
        }
    };
    if job.settings.concurrency < args.concurrency {
        log.info(&format!(
            "note: --concurrency {} lowered to {}: at --dns-rate {} more domains would wait out their --domain-timeout",
            args.concurrency, job.settings.concurrency, args.dns_rate
        ));
    }
    let result = run_job(&job, &config, shutdown_signal()).await?;
    if !args.quiet {
        log.summary(&result.statistics, &result.run);
    }
    if let Some((path, results)) = report {
        let mut builder = ReportBuilder::new(html_report::DEFAULT_MAX_ROWS);
        builder.add_file(&results, Some(job.format))?;
        // The numbers are the scan's own statistics, those of its summary.
        let html = builder.render_with(&result.statistics, &result.run)?;
        html_report::write_report(&path, &html)?;
        if !args.quiet {
            log.info(&format!("Report: {}", path.display()));
        }
    }
    let failures = fail_on.failures(&result.statistics);
    if !failures.is_empty() {
        let list: Vec<String> = failures
            .iter()
            .map(|(condition, rows)| format!("{condition} ({rows} rows)"))
            .collect();
        log.info(&format!(
            "--fail-on matched: {}; exit status 1",
            list.join(", ")
        ));
    }
    Ok(if result.run.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if !failures.is_empty() {
        ExitCode::from(EXIT_FAIL_ON)
    } else {
        ExitCode::SUCCESS
    })
}

/// `report FILE...`: the HTML report of result files.
fn report(args: ReportArgs, log: Stderr) -> Result<ExitCode, String> {
    let mut builder = ReportBuilder::new(args.max_rows);
    for path in &args.files {
        builder.add_file(path, None)?;
    }
    let run = html_report::run_info_for_files(
        &args.files,
        builder.statistics(),
        args.summary.as_deref(),
    )?;
    let html = builder.render(&run)?;
    html_report::write_report(&args.output, &html)?;
    log.info(&format!("Report: {}", args.output.display()));
    Ok(ExitCode::SUCCESS)
}

/// `stats FILE...`: merges the files' statistics (each file counted on its own, then summed).
fn stats(args: StatsArgs) -> Result<ExitCode, String> {
    let mut total = Statistics::new();
    for pattern in &args.files {
        // Globs (`s3://lake/dt=*/part-*.parquet`, quoted local ones) name every match.
        for source in expand_sources(&pattern.to_string_lossy())? {
            let path = std::path::PathBuf::from(source);
            let mut file_statistics = Statistics::new();
            for row in read_results(&path, None)? {
                let report = row.map_err(|e| format!("{}: {e}", path.display()))?;
                file_statistics.add(&report);
            }
            total += &file_statistics;
        }
    }
    for path in &args.mx_tables {
        for row in mta_sts_scan::output::mx_table::read_mx_table(path)? {
            total.add_mx_row(&row);
        }
    }
    let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    let run = RunInfo {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        input: names.join(" "),
        started: total.first_scanned_at.map(format_millis),
        finished: total.last_scanned_at.map(format_millis),
        ..RunInfo::default()
    };
    if args.json {
        let json = serde_json::to_string_pretty(&total.summary(&run)).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{}", total.render_table(&run));
    }
    Ok(ExitCode::SUCCESS)
}

/// `diff OLD NEW`: 0 whatever changed, 1 when a `--fail-on-change` kind occurred.
fn diff(args: DiffArgs, log: Stderr) -> Result<ExitCode, String> {
    let (job, fail_on) = args.to_job()?;
    let summary = mta_sts_scan::diff::run_diff(&job)?;
    if !args.quiet {
        if log.is_json() {
            log.json_line(&serde_json::json!({
                "level": "info",
                "event": "diff_summary",
                "summary": summary.to_json(&job.old, &job.new),
            }));
        } else {
            eprint!("{}", summary.render_table(&job.old, &job.new));
        }
    }
    let failed: Vec<&str> = fail_on
        .iter()
        .filter(|kind| summary.count(**kind) > 0)
        .map(|kind| kind.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    log.info(&format!(
        "changes of kind {} (--fail-on-change)",
        failed.join(", ")
    ));
    Ok(ExitCode::from(1))
}

/// Resolves at the first Ctrl-C or SIGTERM. The handlers are registered when this is called (a
/// signal that comes while the scan is still starting is not lost), and a second signal ends
/// the process at once with status 130, for a user who will not wait for the domains in flight.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    async fn next(signal: &mut Option<Signal>) {
        match signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            () = next(&mut interrupt) => {}
            () = next(&mut terminate) => {}
        }
        tokio::spawn(async move {
            tokio::select! {
                () = next(&mut interrupt) => {}
                () = next(&mut terminate) => {}
            }
            eprintln!("second signal: stopping without waiting for the domains in flight");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        });
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// `demo`: the scan on the built-in test internet.
async fn demo(args: DemoArgs, log: Stderr) -> Result<ExitCode, String> {
    let format = mta_sts_scan::output::Format::from_name(&args.format)
        .ok_or_else(|| format!("unknown --format {}", args.format))?;
    let show_progress = !args.quiet && !log.is_json() && std::io::stderr().is_terminal();
    log.info("Starting the built-in test internet and scanning the demo list (offline)...");
    let demo =
        mta_sts_scan::lab::demo::run_demo(args.dir, format, show_progress, shutdown_signal())
            .await?;
    log.summary(&demo.job.statistics, &demo.job.run);
    let report = demo.directory.join("report.html");
    let mut builder = ReportBuilder::new(html_report::DEFAULT_MAX_ROWS);
    builder.add_file(&demo.results, Some(format))?;
    html_report::write_report(
        &report,
        &builder.render_with(&demo.job.statistics, &demo.job.run)?,
    )?;
    if log.is_json() {
        log.json_line(&DemoDoneLine {
            level: "info",
            event: "demo_done",
            directory: &demo.directory,
            results: &demo.results,
            summary: &demo.summary,
            report: &report,
            interrupted: demo.job.run.interrupted,
        });
    } else {
        eprintln!();
        eprintln!("Results: {}", demo.results.display());
        eprintln!("Summary: {}", demo.summary.display());
        eprintln!("MX table: {}", demo.mx_table.display());
        eprintln!("Report:  {}", report.display());
        eprintln!("Try:     mta-sts-scan stats {}", demo.results.display());
    }
    Ok(if demo.job.run.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `lab`: the test internet as a standalone server.
async fn lab(args: LabArgs, log: Stderr) -> Result<ExitCode, String> {
    use mta_sts_scan::lab::{LabOptions, TestInternet, scenarios::realistic_mix};
    let delay = args.delay.unwrap_or_default();
    let lab = TestInternet::start(LabOptions {
        dns_delay: delay,
        http_delay: delay,
    })
    .await
    .map_err(|e| format!("cannot start the test internet: {e}"))?;
    std::fs::write(&args.ca_out, lab.ca_pem())
        .map_err(|e| format!("cannot write {}: {e}", args.ca_out.display()))?;
    let flags = format!(
        "--resolver {} --policy-port {} --smtp-port {} --ca-file {} --allow-private-addresses\n",
        lab.dns_address,
        lab.https_port,
        lab.smtp.port(),
        args.ca_out.display()
    );
    std::fs::write(&args.flags_out, &flags)
        .map_err(|e| format!("cannot write {}: {e}", args.flags_out.display()))?;
    if let Some(path) = &args.write_list {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for n in 0..args.domains {
            writeln!(out, "{}", realistic_mix(n)).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
        if !log.is_json() {
            eprintln!("wrote {} domains to {}", args.domains, path.display());
        }
    }
    if log.is_json() {
        log.json_line(&LabReadyLine {
            level: "info",
            event: "lab_ready",
            dns: lab.dns_address.to_string(),
            https_port: lab.https_port,
            ca_file: &args.ca_out,
            flags_file: &args.flags_out,
            flags: flags.trim_end(),
            domain_list: args.write_list.as_deref(),
            domains: args.write_list.as_ref().map(|_| args.domains),
        });
    } else {
        eprintln!(
            "test internet running; scanner flags (also in {}):",
            args.flags_out.display()
        );
        eprint!("  {flags}");
        eprintln!("Ctrl-C to stop.");
    }
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// MX hosts whose probe results a server keeps (`serve --probe-mx`).
const SERVE_MX_CACHE_HOSTS: usize = 10_000;

/// `serve`: the check as an HTTP API until Ctrl-C or SIGTERM.
async fn serve(args: ServeArgs, log: Stderr) -> Result<ExitCode, String> {
    let (mut config, mut settings) = args.to_settings()?;
    // A server runs for weeks: keep the MX results of at most 10,000 hosts (about 11 MB), so
    // memory stays flat and old results are probed again.
    if let Some(mx) = config.mx_probe.as_mut() {
        mx.cache_hosts = Some(SERVE_MX_CACHE_HOSTS);
    }
    settings.access_log = Some(mta_sts_scan::serve::AccessLog::new(move |entry| {
        log.request(entry)
    }));
    let validator = Arc::new(config.build_validator()?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    if log.is_json() {
        log.json_line(&ServeLine {
            level: "info",
            event: "listening",
            address: address.to_string(),
        });
    } else {
        eprintln!(
            "listening on http://{address} (GET {}?domain=example.com, GET {}, GET {}, MCP at {}); Ctrl-C to stop",
            mta_sts_scan::serve::CHECK_PATH,
            mta_sts_scan::serve::HEALTH_PATH,
            mta_sts_scan::serve::OPENAPI_PATH,
            mta_sts_scan::serve::MCP_PATH
        );
    }
    mta_sts_scan::serve::serve(listener, validator, settings, shutdown_signal()).await?;
    if log.is_json() {
        log.json_line(&ServeLine {
            level: "info",
            event: "stopped",
            address: address.to_string(),
        });
    } else {
        eprintln!("stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// `mcp`: the MCP server on stdin/stdout until the assistant closes stdin.
async fn mcp(args: McpArgs) -> Result<ExitCode, String> {
    let mut config = args.to_config()?;
    if let Some(mx) = config.mx_probe.as_mut() {
        mx.cache_hosts = Some(SERVE_MX_CACHE_HOSTS);
    }
    let validator = Arc::new(config.build_validator()?);
    let runner = mta_sts_scan::serve::checks::CheckRunner::new(
        Arc::new(validator),
        cli::MCP_CONCURRENT_CHECKS,
        args.request_timeout,
    )?;
    mta_sts_scan::serve::mcp::serve_stdio(runner).await?;
    Ok(ExitCode::SUCCESS)
}

/// `completions SHELL`: the completion script on stdout.
fn completions(args: &CompletionsArgs) -> Result<ExitCode, String> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "mta-sts-scan", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the completion script: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit on open files to the hard limit: the resolver opens a UDP socket per
/// query, so a scan holds about three descriptors per domain in flight, and the usual soft limit
/// of 1024 would turn a high `--concurrency` into spurious lookup failures.
#[cfg(unix)]
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() {}
