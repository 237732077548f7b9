//! The command line: flags as clap structs (their doc comments are the help), turned
//! once into the settings the library reads.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kinds::Kind;
use crate::manifest::{Format, Source};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Carries manifests of appointments, participants, call lists and agent settings into the arctos, Quanshi and Huawei AICC APIs, and accounts for every row.",
    after_help = "Start with `ferry demo`: it runs every sample against a built-in sandbox.\nExit codes: 0 all rows done, 1 some rows failed, 2 usage/config/manifest error (nothing sent), 3 aborted, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log lines as text or as JSON objects (one per line, for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a manifest and write the report folder; sends nothing.
    #[command(
        after_help = "Examples (each runs as written from ferry's repository root):\n  ferry validate samples/calls.csv --kind calls --config samples/ferry.toml\n  ferry validate samples/publishers.csv --kind publishers --report-dir checks/\n  cat samples/agent-settings.json | ferry validate - --format json --kind agent-settings"
    )]
    Validate(ValidateArgs),
    /// Validate, send in rate-limited batches, record every row, write the reports.
    #[command(
        after_help = "Examples (each runs as written from ferry's repository root):\n  ferry run samples/appointments.csv --kind appointments --target sandbox\n  ferry run samples/calls.csv --kind calls --config samples/ferry.toml --target sandbox --rate 5\n  ferry run samples/publishers.csv --kind publishers --target sandbox --retry-unknown"
    )]
    Run(RunArgs),
    /// Where every row of a manifest stands now, from the state: done, failed, in doubt
    /// or never attempted. Sends nothing; exit 0 when every row is done.
    #[command(
        after_help = "Run it on the original sheet after any number of fix-and-feed-back rounds.\nExamples (each runs as written from ferry's repository root, after the run examples):\n  ferry reconcile samples/appointments.csv --kind appointments --target sandbox\n  ferry reconcile samples/calls.csv --kind calls --config samples/ferry.toml --target sandbox"
    )]
    Reconcile(ReconcileArgs),
    /// Serve fake arctos, Quanshi and AICC endpoints on loopback, with fault injection.
    #[command(
        after_help = "Examples:\n  ferry sandbox\n  ferry sandbox --addr 127.0.0.1:9000 --latency-ms 100 --throttle-rate 0.05 --seed 7"
    )]
    Sandbox(SandboxArgs),
    /// Run every sample manifest against a built-in sandbox and show the reports.
    #[command(after_help = "Example:\n  cargo run --release -- demo")]
    Demo(DemoArgs),
}

/// Where the manifest is and how to read it.
#[derive(Args, Debug, Clone)]
pub struct ManifestArgs {
    /// The manifest: .csv, .tsv, .json, .jsonl/.ndjson or .xlsx; `-` for standard input.
    pub manifest: PathBuf,
    /// What the manifest holds.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// The file format, when the extension does not say (required for `-`).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Text encoding: utf-8 (default), gb18030, gbk, big5, utf-16, utf-16le, utf-16be,
    /// windows-1252.
    #[arg(long)]
    pub encoding: Option<String>,
    /// XLSX sheet to read (default: the first visible one; for a report.xlsx of ferry's
    /// own, fed back, its `failed` sheet).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Quanshi event for every row without an `eventId` cell (kind calls).
    #[arg(long)]
    pub event_id: Option<i64>,
    /// Config file (default: ./ferry.toml, else $FERRY_CONFIG).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Report folder (default: ferry-reports/<run-id>/). It must not be the manifest's
    /// folder, and must be new or empty unless --overwrite is given.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Replace the reports of an earlier run in --report-dir (ferry's own files only).
    #[arg(long)]
    pub overwrite: bool,
}

impl ManifestArgs {
    pub fn source(&self) -> Source {
        Source {
            path: self.manifest.clone(),
            format: self.format,
            encoding: self.encoding.clone(),
            sheet: self.sheet.clone(),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
}

/// Which target's records, in which state.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Target section of the config; `sandbox` is the built-in sandbox on loopback.
    #[arg(long)]
    pub target: Option<String>,
    /// State database: what earlier runs did, per target, kind and record key. Default:
    /// `state` in the config, else `.ferry/state.db` beside the config file (or in the
    /// working directory when there is none).
    #[arg(long)]
    pub state: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub at: TargetArgs,
    /// When another run holds the state, wait up to SECS for it instead of exiting 2.
    #[arg(long, value_name = "SECS")]
    pub wait_lock: Option<u64>,
    /// Requests per second (overrides the target's `rate`).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight at once (overrides `concurrency`).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Rows per request for kinds that batch (overrides `batch_size`).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Abort (exit 3) once more than this many rows have failed.
    #[arg(long)]
    pub max_failed_rows: Option<u64>,
    /// Send rows again even if an earlier run recorded them as succeeded.
    #[arg(long)]
    pub force: bool,
    /// Send again the rows whose outcome was unknown (the vendor may then say they exist).
    #[arg(long)]
    pub retry_unknown: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub at: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Address to listen on: loopback only (127.x.x.x, [::1] or localhost), since the
    /// sandbox has no real authentication.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = loopback_addr)]
    pub addr: std::net::SocketAddr,
    /// Delay every answer by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests answered 503 (0.0–1.0), not carried out.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Answer 429 beyond this many requests per second.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Share of requests carried out and then answered by closing the connection.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Seed for the fault dice, so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Folder for the demo's report folders (default: ferry-reports/demo-<run-id>/).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
}

/// `--addr` of `ferry sandbox`: `HOST:PORT` where the host is a loopback address or
/// `localhost` (which is bound as 127.0.0.1); anything else is refused with the reason.
fn loopback_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let (host, port) = text
        .rsplit_once(':')
        .ok_or("give HOST:PORT, such as 127.0.0.1:8080")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port: give a number from 0 to 65535"))?;
    let ip: IpAddr = match url::Host::parse(host) {
        Ok(url::Host::Ipv4(ip)) => ip.into(),
        Ok(url::Host::Ipv6(ip)) => ip.into(),
        Ok(url::Host::Domain(name)) if name == "localhost" => Ipv4Addr::LOCALHOST.into(),
        // Any other name could resolve to anything, now or later.
        _ => return Err(crate::sandbox::LOOPBACK_ONLY.to_string()),
    };
    if !ip.is_loopback() {
        return Err(crate::sandbox::LOOPBACK_ONLY.to_string());
    }
    Ok(SocketAddr::new(ip, port))
}
