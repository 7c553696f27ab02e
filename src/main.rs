//! The `mta-sts-scan` binary: parses flags into the library's config, runs the subcommand, and
//! turns the result into an exit status.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use cli::{CheckArgs, Cli, Command};
use mta_sts_scan::report::Outcome;

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
