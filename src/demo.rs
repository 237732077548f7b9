//! `ferry demo`: every sample manifest, in dependency order, against a sandbox started
//! in this process. The samples are built into the binary, so it works from anywhere.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::error::{Error, Usage};
use crate::exit::Exit;
use crate::kinds::Kind;
use crate::manifest::Source;
use crate::pipeline::run::{self, Settings};
use crate::pipeline::Input;
use crate::send::Backoff;

/// The samples, in the order their references need: tasks first.
pub const SAMPLES: &[(Kind, &str, &str)] = &[
    (
        Kind::Appointments,
        "appointments.csv",
        include_str!("../samples/appointments.csv"),
    ),
    (
        Kind::Moderators,
        "moderators.csv",
        include_str!("../samples/moderators.csv"),
    ),
    (
        Kind::Publishers,
        "publishers.csv",
        include_str!("../samples/publishers.csv"),
    ),
    (
        Kind::TaskStatus,
        "task-status.csv",
        include_str!("../samples/task-status.csv"),
    ),
    (
        Kind::Calls,
        "calls.csv",
        include_str!("../samples/calls.csv"),
    ),
    (
        Kind::AgentSettings,
        "agent-settings.json",
        include_str!("../samples/agent-settings.json"),
    ),
];

pub const SAMPLE_CONFIG: &str = include_str!("../samples/ferry.toml");

/// Marks a folder as a demo's, so that a later demo may reuse it.
const DEMO_MARKER: &str = ".ferry-demo";

/// The demo writes a state and reports into its folder and clears them when it runs
/// again: only in a folder that is new, empty, or an earlier demo's — never in one that
/// holds anything else (`--report-dir .ferry` would otherwise replace a real state).
fn claim_demo_folder(dir: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let ours = dir.join(DEMO_MARKER).exists();
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(io(e)),
    };
    if !ours && !empty {
        return Err(Usage::DemoFolderTaken(dir.to_path_buf()).into());
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(dir.join(DEMO_MARKER), "made by ferry demo\n").map_err(io)
}

pub fn demo(args: DemoArgs) -> Result<Exit, Error> {
    let dir = args.report_dir.unwrap_or_else(|| {
        crate::pipeline::default_report_dir(&format!(
            "demo-{}",
            crate::pipeline::run_id(chrono::Utc::now())
        ))
    });
    let config = Config::parse(SAMPLE_CONFIG)?;
    claim_demo_folder(&dir)?;
    let samples_dir = dir.join("samples");
    std::fs::create_dir_all(&samples_dir).map_err(|source| Error::Io {
        path: samples_dir.clone(),
        source,
    })?;
    for (_, name, text) in SAMPLES {
        let path = samples_dir.join(name);
        std::fs::write(&path, text).map_err(|source| Error::Io { path, source })?;
    }
    let state_path = dir.join("state.db");
    // A fresh state each time, so the demo shows the same thing every time it runs (the
    // folder is the demo's own: see claim_demo_folder).
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("state.db{suffix}")));
    }

    let runtime = run::runtime()?;
    let reports = runtime.block_on(async {
        let sandbox = crate::sandbox::start(crate::sandbox::Options {
            addr: ([127, 0, 0, 1], 0).into(),
            ..crate::sandbox::Options::default()
        })
        .await
        .map_err(Error::SandboxStart)?;
        let url = reqwest::Url::parse(&sandbox.base_url()).expect("the sandbox URL is valid");
        let mut reports = Vec::new();
        for (kind, name, _) in SAMPLES {
            let input = Input {
                source: Source {
                    path: samples_dir.join(name),
                    format: None,
                    encoding: None,
                    sheet: None,
                },
                name: format!("samples/{name}"),
                kind: *kind,
                event_id: None,
                report_dir: Some(dir.join(kind.name())),
                // A demo run again into the same folder replaces its own reports.
                overwrite: true,
            };
            let settings = Settings {
                input,
                target: crate::sandbox::target(*kind, url.clone()),
                state_path: state_path.clone(),
                wait_lock: None,
                max_failed_rows: None,
                force: false,
                retry_unknown: false,
                backoff: Backoff::default(),
            };
            reports.push(run::run(settings, &config).await?);
        }
        let stats = sandbox.stats();
        sandbox.shutdown().await;
        Ok::<_, Error>((reports, stats))
    });
    let (reports, stats) = reports?;
    print_table(&dir, &reports, &stats);
    // The samples hold deliberate mistakes: failed rows are the point, not a failure.
    let stopped = reports
        .iter()
        .map(|r| r.summary.exit_code)
        .find(|exit| !matches!(exit, Exit::Done | Exit::RowsFailed));
    Ok(stopped.unwrap_or(Exit::Done))
}

fn print_table(dir: &Path, reports: &[run::RunReport], stats: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ferry demo: every sample sent to a built-in sandbox\n");
    let _ = writeln!(
        out,
        "  {:<15} {:>5} {:>10} {:>7} {:>8}  reports",
        "kind", "rows", "succeeded", "failed", "requests"
    );
    for r in reports {
        let s = &r.summary;
        let _ = writeln!(
            out,
            "  {:<15} {:>5} {:>10} {:>7} {:>8}  {}",
            s.kind,
            s.counts.total,
            s.counts.succeeded,
            s.counts.failed_total,
            s.requests.sent,
            relative(&r.dir).display()
        );
    }
    let _ = writeln!(
        out,
        "\nThe samples include deliberate mistakes; each failed row is explained in its failed.csv\n(field, problem code, what to do). Sandbox records created: {}",
        stats.get("created").map(|c| c.to_string()).unwrap_or_default()
    );
    let _ = writeln!(out, "Everything is in {}", relative(dir).display());
}

fn relative(p: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
}
