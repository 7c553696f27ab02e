//! The `mta-sts-scan` binary: parses flags into the library's config, runs the subcommand, and
//! turns the result into an exit status.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use cli::{CheckArgs, Cli, Command, DemoArgs, LabArgs, ScanArgs, StatsArgs};
use mta_sts_scan::output::read_results;
use mta_sts_scan::report::{Outcome, format_millis};
use mta_sts_scan::scan::job::run_job;
use mta_sts_scan::scan::stats::{RunInfo, Statistics};

/// Exit status of a scan stopped by a signal (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => check(args).await,
            Command::Scan(args) => scan(args).await,
            Command::Stats(args) => stats(args),
            Command::Demo(args) => demo(args).await,
            Command::Lab(args) => lab(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// `check DOMAIN`: 0 valid, 1 invalid or absent, 2 error or input error.
async fn check(args: CheckArgs) -> Result<ExitCode, String> {
    let config = args.net.to_config()?;
    let validator = config.build_validator()?;
    let report = validator.check_input(&args.domain, None).await;
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| writeln!(stdout, "{json}").map_err(|e| e.to_string()))
    } else {
        let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write!(
            stdout,
            "{}",
            mta_sts_scan::text_report::render(&report, color)
        )
        .map_err(|e| e.to_string())
    };
    written?;
    Ok(ExitCode::from(match report.outcome {
        Outcome::Valid => 0,
        Outcome::Invalid | Outcome::Absent => 1,
        Outcome::Error | Outcome::InputError => 2,
    }))
}

/// `scan INPUT`: 0 completed, 2 bad arguments / input / output, 130 interrupted.
async fn scan(args: ScanArgs) -> Result<ExitCode, String> {
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let (job, config) = args.to_job(show_progress)?;
    let result = run_job(&job, &config, shutdown_signal()).await?;
    if !args.quiet {
        eprint!("{}", result.statistics.render_table(&result.run));
    }
    Ok(if result.run.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `stats FILE...`: merges the files' statistics (each file counted on its own, then summed).
fn stats(args: StatsArgs) -> Result<ExitCode, String> {
    let mut total = Statistics::new();
    for path in &args.files {
        let mut file_statistics = Statistics::new();
        for row in read_results(path, None)? {
            let report = row.map_err(|e| format!("{}: {e}", path.display()))?;
            file_statistics.add(&report);
        }
        total += &file_statistics;
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

/// Resolves at Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// `demo`: the scan on the built-in test internet.
async fn demo(args: DemoArgs) -> Result<ExitCode, String> {
    let format = mta_sts_scan::output::Format::from_name(&args.format)
        .ok_or_else(|| format!("unknown --format {}", args.format))?;
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    eprintln!("Starting the built-in test internet and scanning the demo list (offline)...");
    let demo =
        mta_sts_scan::lab::demo::run_demo(args.dir, format, show_progress, shutdown_signal())
            .await?;
    eprint!("{}", demo.job.statistics.render_table(&demo.job.run));
    eprintln!();
    eprintln!("Results: {}", demo.results.display());
    eprintln!("Summary: {}", demo.summary.display());
    eprintln!("Try:     mta-sts-scan stats {}", demo.results.display());
    Ok(if demo.job.run.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `lab`: the test internet as a standalone server.
async fn lab(args: LabArgs) -> Result<ExitCode, String> {
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
        "--resolver {} --policy-port {} --ca-file {} --allow-private-addresses\n",
        lab.dns_address,
        lab.https_port,
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
        eprintln!("wrote {} domains to {}", args.domains, path.display());
    }
    eprintln!(
        "test internet running; scanner flags (also in {}):",
        args.flags_out.display()
    );
    eprint!("  {flags}");
    eprintln!("Ctrl-C to stop.");
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}
