//! One `run` per subcommand: turn the parsed flags into the library's settings, call
//! the pipeline, print what a person needs, and decide the exit code.

use std::io::Write;

use std::time::Duration;

use crate::cli::{Cli, Command, ManifestArgs, ReconcileArgs, RunArgs, SandboxArgs, ValidateArgs};
use crate::config::{limits, Config, SANDBOX_TARGET};
use crate::error::{check_flag, Error, Usage};
use crate::exit::Exit;
use crate::pipeline::run::{self, RunReport};
use crate::pipeline::{self, Input};
use crate::send::Backoff;

/// Runs the command and returns the process exit code.
pub fn execute(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Validate(args) => validate(args),
        Command::Run(args) => run_command(args),
        Command::Reconcile(args) => reconcile(args),
        Command::Sandbox(args) => sandbox(args),
        Command::Demo(args) => crate::demo::demo(args),
    };
    match result {
        Ok(exit) => exit.code(),
        Err(e) => {
            let exit_code = e.exit().code();
            if crate::logging::json() {
                tracing::error!(event = "fatal", exit_code, "{e}");
            } else {
                eprintln!("error: {e}");
            }
            exit_code
        }
    }
}

/// `validate` sends nothing, so an interrupt (SIGINT or SIGTERM, not only Ctrl-C) simply
/// ends it with the code that says so, 130; its report folder then has no summary.json.
fn exit_130_on_interrupt() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(pipeline::stop::shutdown_signal());
        tracing::warn!("interrupted; nothing was sent, and the reports are incomplete");
        std::process::exit(Exit::Interrupted.code());
    });
}

/// The problem table both `validate` and `run` print: each code with its rows.
fn print_problems(out: &mut impl Write, problems: &crate::report::ProblemTable) {
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n  {:<28} {:>9}  example rows", "problem", "rows");
    for (code, count, rows) in problems.rows() {
        let rows: Vec<String> = rows.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "  {:<28} {:>9}  {}",
            code.as_str(),
            count,
            rows.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\nDetails per row (field, message, what to do) are in failed.csv.\n"
    );
}

/// Under `--log-format json`, the end of a command as one log event.
fn log_summary(s: &crate::report::Summary, dir: &std::path::Path) {
    if !crate::logging::json() {
        return;
    }
    let c = &s.counts;
    tracing::info!(
        event = "summary",
        run_id = %s.run_id,
        command = s.command,
        kind = s.kind,
        target = s.target.as_deref().unwrap_or(""),
        manifest = %s.manifest,
        total = c.total,
        succeeded = c.succeeded,
        failed = c.failed_total,
        skipped = c.skipped,
        unprocessed = c.unprocessed,
        requests_sent = s.requests.sent,
        duration_secs = s.duration_secs,
        report_dir = %dir.display(),
        state = s.state.as_deref().unwrap_or(""),
        aborted = s.aborted.as_deref().unwrap_or(""),
        resume = resume_command(s).as_deref().unwrap_or(""),
        exit_code = s.exit_code.code(),
        "{} finished with exit code {}",
        s.command,
        s.exit_code.code()
    );
}

/// After an abort (3) or an interrupt (130): the command that finishes the job — this
/// one again, into a new report folder, and without the flags that send done or
/// doubtful rows again (`--force`, `--retry-unknown`): rows done are then skipped. A
/// manifest read from standard input must be given again. None when the state is gone:
/// without it no row would be skipped, and the command would send them all again.
fn resume_command(s: &crate::report::Summary) -> Option<String> {
    if !s.exit_code.stopped_early() {
        return None;
    }
    if s.state
        .as_ref()
        .is_some_and(|state| !std::path::Path::new(state).exists())
    {
        return None;
    }
    let mut words = Vec::new();
    let mut stdin = false;
    // args_os: an argument that is not UTF-8 (a file name) must not panic here.
    let mut args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let flag = arg.split('=').next().unwrap_or_default();
        match flag {
            "--report-dir" if !arg.contains('=') => {
                args.next();
            }
            "--report-dir" | "--overwrite" | "--force" | "--retry-unknown" => {}
            _ => {
                stdin |= crate::manifest::is_stdin(std::path::Path::new(&arg));
                words.push(shell_quote(&arg));
            }
        }
    }
    let command = format!("ferry {}", words.join(" "));
    Some(if stdin {
        format!("{command}  (with the same manifest on standard input)")
    } else {
        command
    })
}

/// A word as a POSIX shell reads it back.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn validate(mut args: ValidateArgs) -> Result<Exit, Error> {
    exit_130_on_interrupt();
    let (name, _spooled) = prepare_manifest(&mut args.manifest)?;
    let config = Config::discover(args.manifest.config.as_deref())?;
    let report = pipeline::validate(&input(&args.manifest, name), &config)?;
    let c = &report.summary.counts;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}: {} rows of {}: {} valid, {} failed",
        report.summary.manifest, c.total, report.summary.kind, c.succeeded, c.failed_total
    );
    print_problems(&mut out, &report.problems);
    let _ = writeln!(out, "reports: {}", report.dir.display());
    log_summary(&report.summary, &report.dir);
    Ok(report.summary.exit_code)
}

fn run_command(mut args: RunArgs) -> Result<Exit, Error> {
    let config = Config::discover(args.manifest.config.as_deref())?;
    let (name, _spooled) = prepare_manifest(&mut args.manifest)?;
    let runtime = run::runtime()?;
    let report = runtime.block_on(async {
        let sandbox = if args.at.target.as_deref() == Some(SANDBOX_TARGET) {
            let options = crate::sandbox::Options {
                addr: ([127, 0, 0, 1], 0).into(),
                ..crate::sandbox::Options::default()
            };
            let sandbox = crate::sandbox::start(options)
                .await
                .map_err(Error::SandboxStart)?;
            tracing::info!(url = %sandbox.base_url(), "built-in sandbox started");
            Some(sandbox)
        } else {
            None
        };
        let url = sandbox
            .as_ref()
            .map(|s| reqwest::Url::parse(&s.base_url()).expect("the sandbox URL is valid"));
        let settings = run_settings(&args, input(&args.manifest, name), &config, url)?;
        run::run(settings, &config).await
    })?;
    print_run_summary(&report);
    Ok(report.summary.exit_code)
}

/// The manifest flags, turned into the input every command reads.
fn input(m: &ManifestArgs, name: String) -> Input {
    Input {
        source: m.source(),
        name,
        kind: m.kind,
        event_id: m.event_id,
        report_dir: m.report_dir.clone(),
        overwrite: m.overwrite,
    }
}

/// Resolves `--target` (or the built-in sandbox) and the flag overrides.
fn run_settings(
    args: &RunArgs,
    input: Input,
    config: &Config,
    sandbox_url: Option<reqwest::Url>,
) -> Result<run::Settings, Error> {
    let kind = input.kind;
    let mut target = match (args.at.target.as_deref(), sandbox_url) {
        (Some(SANDBOX_TARGET), Some(url)) => crate::sandbox::target(kind, url),
        (name, _) => config.target_for(kind, name)?.clone(),
    };
    if let Some(rate) = args.rate {
        check_flag("--rate", rate, limits::RATE)?;
        target.rate = rate;
        if target.burst as f64 > rate.ceil() {
            target.burst = rate.ceil() as u32;
        }
    }
    if let Some(c) = args.concurrency {
        check_flag("--concurrency", c, limits::CONCURRENCY)?;
        target.concurrency = Some(c);
    }
    if let Some(b) = args.batch_size {
        check_flag("--batch-size", b, limits::BATCH_SIZE)?;
        target.batch_size = b;
    }
    Ok(run::Settings {
        input,
        target,
        state_path: config.state_path(args.at.state.as_deref()),
        wait_lock: args.wait_lock.map(Duration::from_secs),
        max_failed_rows: args.max_failed_rows,
        force: args.force,
        retry_unknown: args.retry_unknown,
        backoff: Backoff::default(),
    })
}

fn reconcile(mut args: ReconcileArgs) -> Result<Exit, Error> {
    exit_130_on_interrupt();
    let config = Config::discover(args.manifest.config.as_deref())?;
    let (name, _spooled) = prepare_manifest(&mut args.manifest)?;
    let m = &args.manifest;
    let target = match args.at.target.as_deref() {
        Some(SANDBOX_TARGET) => SANDBOX_TARGET.to_string(),
        name => config.target_for(m.kind, name)?.name.clone(),
    };
    let settings = crate::reconcile::Settings {
        input: input(m, name),
        target,
        state_path: config.state_path(args.at.state.as_deref()),
    };
    let report = crate::reconcile::reconcile(&settings, &config)?;
    let s = &report.summary;
    let c = &s.counts;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} ({}, target {}): {} rows: {} done, {} failed, {} in doubt, {} never attempted",
        s.manifest,
        s.kind,
        settings.target,
        c.total,
        c.succeeded,
        c.failed_total - report.in_doubt,
        report.in_doubt,
        c.unprocessed
    );
    print_problems(&mut out, &report.problems);
    let _ = writeln!(out, "state: {}", settings.state_path.display());
    let _ = writeln!(out, "reports: {}", report.dir.display());
    log_summary(s, &report.dir);
    Ok(s.exit_code)
}

/// Checks the manifest flags and, for `-`, copies standard input to a temporary file
/// (it is read more than once, and hashed) that lives as long as the returned guard.
/// Returns the manifest's name for messages and the summary.
fn prepare_manifest(m: &mut ManifestArgs) -> Result<(String, Option<tempfile::TempPath>), Error> {
    if let Some(id) = m.event_id.filter(|id| *id < 1) {
        return Err(Usage::EventId(id).into());
    }
    if !crate::manifest::is_stdin(&m.manifest) {
        return Ok((crate::manifest::display_name(&m.manifest), None));
    }
    if m.format.is_none() {
        return Err(Usage::StdinNeedsFormat.into());
    }
    let spooled = crate::manifest::spool(std::io::stdin().lock())?;
    m.manifest = spooled.to_path_buf();
    Ok((crate::manifest::STDIN_NAME.to_string(), Some(spooled)))
}

pub fn print_run_summary(report: &RunReport) {
    let s = &report.summary;
    let c = &s.counts;
    let mut out = std::io::stdout().lock();
    // Reports that failed hold fewer rows than the manifest: the counts are what they
    // took before failing, and the state holds the rest.
    let rows = match report.report_error {
        None => format!("{} rows", c.total),
        Some(_) => format!("reports incomplete, {} rows reported", c.total),
    };
    let _ = writeln!(
        out,
        "{} → {} ({}): {rows}: {} succeeded, {} failed, {} skipped, {} unprocessed, in {:.1} s",
        s.manifest,
        s.target.as_deref().unwrap_or("-"),
        s.kind,
        c.succeeded,
        c.failed_total,
        c.skipped,
        c.unprocessed,
        s.duration_secs
    );
    if c.failed_total > 0 {
        let stages: Vec<String> = c
            .failed
            .iter()
            .map(|(stage, n)| format!("{stage} {n}"))
            .collect();
        let _ = writeln!(out, "  failed by stage: {}", stages.join(", "));
    }
    let _ = writeln!(
        out,
        "  requests: {} sent, {} retries, {} throttled (429), {:.1}/s",
        s.requests.sent, s.requests.retries, s.requests.throttled_429, s.requests.achieved_rate
    );
    if let Some(why) = &s.aborted {
        let _ = writeln!(out, "  stopped early: {why}");
    }
    print_problems(&mut out, &report.problems);
    if let Some(command) = resume_command(s) {
        let _ = writeln!(out, "to finish the job (done rows are skipped): {command}");
    }
    if let Some(state) = &s.state {
        let _ = writeln!(out, "state: {state}");
    }
    match &report.report_error {
        None => {
            let _ = writeln!(out, "reports: {}", report.dir.display());
        }
        Some(e) => {
            let _ = writeln!(
                out,
                "reports: {} is incomplete ({e}); the state holds every outcome: run the same command again with a new --report-dir (done rows are skipped)",
                report.dir.display()
            );
        }
    }
    log_summary(s, &report.dir);
}

fn sandbox(args: SandboxArgs) -> Result<Exit, Error> {
    for (name, p) in [
        ("--fail-rate", args.fail_rate),
        ("--throttle-rate", args.throttle_rate),
        ("--drop-rate", args.drop_rate),
    ] {
        check_flag(name, p, 0.0..=1.0)?;
    }
    // A delay past a clock's range would panic at the first request.
    check_flag("--latency-ms", args.latency_ms, 0..=600_000)?;
    if let Some(n) = args.rate_limit {
        check_flag("--rate-limit", n, 1..=1_000_000)?;
    }
    let options = crate::sandbox::Options {
        addr: args.addr,
        latency_ms: args.latency_ms,
        fail_rate: args.fail_rate,
        throttle_rate: args.throttle_rate,
        rate_limit: args.rate_limit,
        drop_rate: args.drop_rate,
        seed: args.seed,
        ..crate::sandbox::Options::default()
    };
    run::runtime()?
        .block_on(crate::sandbox::serve(options))
        .map_err(|source| Error::Sandbox {
            addr: args.addr,
            source,
        })?;
    Ok(Exit::Done)
}
