//! ferry's benchmarks: the release `ferry` binary run as a user runs it, as a child
//! process, against `ferry sandbox` as another child. Each benchmark prints one result
//! line with the issue's target beside the number (PASS/MISS). A miss does not fail the
//! run: the numbers depend on the machine and on what else it is doing, so they belong in
//! the README, not in assertions. Only a broken run (a crash, a wrong exit code, a
//! summary that does not add up) makes this program exit non-zero.
//!
//! `cargo bench --bench ferry_bench` runs all six; `cargo bench --bench ferry_bench --
//! validate` runs the ones whose name contains `validate`; `--keep` leaves each
//! benchmark's temporary folder (manifests, reports, logs) in place and prints its path.
//!
//! Peak memory is the child's own `ru_maxrss`, read with `wait4` on its pid, so neither
//! the sandbox (another child) nor this harness is counted. Manifests come from a seeded
//! generator, so every run measures the same bytes.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry::kinds::{appointments, calls, KindField};
use serde_json::Value;

/// Under `cargo bench` this is the bench-profile (release) build of the binary.
const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// The token the sandbox accepts for arctos and Quanshi (a well-known test value).
const SANDBOX_TOKEN: &str = "sandbox-token";

const MIB: f64 = 1024.0 * 1024.0;

/// `--keep`: leave the temporary folders for a look at what ferry wrote.
static KEEP: AtomicBool = AtomicBool::new(false);

struct Bench {
    name: &'static str,
    run: fn() -> Result<()>,
}

const BENCHES: [Bench; 6] = [
    Bench {
        name: "speed",
        run: bench_speed,
    },
    Bench {
        name: "validate",
        run: bench_validate,
    },
    Bench {
        name: "rate",
        run: bench_rate,
    },
    Bench {
        name: "throughput",
        run: bench_throughput,
    },
    Bench {
        name: "memory",
        run: bench_memory,
    },
    Bench {
        name: "hostile",
        run: bench_hostile,
    },
];

fn main() -> ExitCode {
    // cargo adds `--bench`; everything else that is not a flag is a name filter.
    let args: Vec<String> = std::env::args().skip(1).collect();
    KEEP.store(args.iter().any(|a| a == "--keep"), Ordering::Relaxed);
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|b| filters.is_empty() || filters.iter().any(|f| b.name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
        eprintln!(
            "no benchmark matches {filters:?}; the benchmarks are: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    print_machine();
    let mut broken = false;
    for bench in selected {
        println!("\n== {} ==", bench.name);
        if let Err(e) = (bench.run)() {
            println!("{}: ERROR: {e:#}", bench.name);
            broken = true;
        }
    }
    if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_machine() {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!("ferry binary: {FERRY}");
    if !FERRY.contains("/release/") {
        println!("WARNING: that is not a release build; run through `cargo bench`");
    }
    println!("nproc: {cores}, load average (1/5/15 min): {load}");
    println!(
        "Numbers depend on the machine and on its load: compare runs on a quiet machine only."
    );
}

// ---------------------------------------------------------------------------------------
// 0. speed: ferry beside what it is measured against, in one run

const SPEED_VALIDATE_ROWS: u64 = 1_000_000;
const SPEED_CALLS_ROWS: u64 = 1_000_000;
const SPEED_CALLS_TARGET: f64 = 100_000.0;

/// The three numbers users wait on, each beside its baseline: `validate` of a million
/// calls rows beside the Python script a user would write (benches/baseline_validate.py:
/// csv + phonenumbers), a million-row calls `run` beside its target, and appointments
/// (one row per request) beside a bare HTTP client sending the same requests to the same
/// sandbox as fast as it answers (`wrk` is not installed here; see `load_generator`).
fn bench_speed() -> Result<()> {
    let validated = measure_validate(SPEED_VALIDATE_ROWS, 3)?;
    let python = python_validate(&validated.manifest, SPEED_VALIDATE_ROWS)?;
    let calls = memory_run(SPEED_CALLS_ROWS)?;
    let ferry_appointments = measure_appointments()?;
    let bare = load_generator(THROUGHPUT_REQUESTS, 32)?;
    println!("\n  | what | ferry | baseline | ratio |");
    println!("  | --- | --- | --- | --- |");
    let baseline = match python {
        Some(rate) => (
            format!(
                "Python csv + phonenumbers: {} rows/s",
                thousands(rate as u64)
            ),
            format!("{:.1}x faster", validated.rows_per_sec / rate),
        ),
        None => ("python3 with phonenumbers not installed".into(), "-".into()),
    };
    println!(
        "  | validate, {} calls rows | {} rows/s, {:.1} MiB | {} | {} |",
        thousands(SPEED_VALIDATE_ROWS),
        thousands(validated.rows_per_sec as u64),
        validated.rss_mib,
        baseline.0,
        baseline.1
    );
    println!(
        "  | run, {} calls rows (100 a request) | {} rows/s, {:.1} MiB | target {} rows/s | {:.2} of it |",
        thousands(SPEED_CALLS_ROWS),
        thousands(calls.rows_per_sec as u64),
        calls.rss_mib,
        thousands(SPEED_CALLS_TARGET as u64),
        calls.rows_per_sec / SPEED_CALLS_TARGET
    );
    println!(
        "  | run, {} appointments (a row a request) | {} requests/s | bare client: {} requests/s | {:.2} of it |",
        thousands(THROUGHPUT_REQUESTS),
        thousands(ferry_appointments as u64),
        thousands(bare as u64),
        ferry_appointments / bare
    );
    Ok(())
}

/// benches/baseline_validate.py on the same manifest: rows per second (wall clock, one
/// run), or `None` without python3 and phonenumbers.
fn python_validate(manifest: &Path, rows: u64) -> Result<Option<f64>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baseline_validate.py");
    let has_it = Command::new("python3")
        .args(["-c", "import phonenumbers"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_it {
        println!("  baseline: python3 with phonenumbers is not installed; skipped");
        return Ok(None);
    }
    let out = tempdir()?;
    let started = Instant::now();
    let output = Command::new("python3")
        .arg(&script)
        .arg(manifest)
        .arg(out.path())
        .output()?;
    let wall = started.elapsed();
    ensure!(
        output.status.success(),
        "baseline_validate.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "  baseline (Python csv + phonenumbers): {:.1} s wall for {} rows ({})",
        wall.as_secs_f64(),
        thousands(rows),
        String::from_utf8_lossy(&output.stdout).trim()
    );
    Ok(Some(rows as f64 / wall.as_secs_f64()))
}

/// What the sandbox gives a bare client, as `wrk` measures a server: `connections`
/// keep-alive connections, each sending its next request the moment the answer to the
/// last is in, on two threads, with no validation, state or reports. The requests are
/// the appointments ferry sends (a new `out_task_num` each, so every one is created).
/// Returns requests per second.
fn load_generator(requests: u64, connections: usize) -> Result<f64> {
    let dir = tempdir()?;
    let sandbox = Sandbox::start(dir.path(), &[])?;
    let addr = sandbox.addr.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let answered: u64 = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..connections {
            tasks.spawn(keep_posting(addr.clone(), Arc::clone(&next), requests));
        }
        let mut answered = 0;
        while let Some(done) = tasks.join_next().await {
            answered += done??;
        }
        Ok::<_, anyhow::Error>(answered)
    })?;
    let wall = started.elapsed();
    let created = sandbox.stats()?["created"]["appointments"]
        .as_u64()
        .unwrap_or(0);
    ensure!(
        answered == requests && created == requests,
        "bare client: {answered} answers, {created} created, of {requests}"
    );
    let rate = requests as f64 / wall.as_secs_f64();
    println!(
        "  bare client, {} appointments over {connections} connections: {:.2} s, {} requests/s",
        thousands(requests),
        wall.as_secs_f64(),
        thousands(rate as u64)
    );
    Ok(rate)
}

/// One keep-alive connection posting appointments until `next` reaches `requests`;
/// returns how many it sent, each answered 200.
async fn keep_posting(addr: String, next: Arc<AtomicU64>, requests: u64) -> Result<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let mut answer = Vec::with_capacity(4096);
    let mut sent = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= requests {
            return Ok(sent);
        }
        let body = format!(
            r#"{{"business_id":15,"out_task_num":"BARE-{i:07}","task_type":"normal","task_notify":false,"task_time":"{}","branch_code":943,"business_code":2,"room_type":"normal","video":true}}"#,
            1_796_094_000 + i * 60
        );
        let request = format!(
            "POST {CREATE_TASK} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {SANDBOX_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        answer.clear();
        let (head_end, length) = loop {
            if stream.read_buf(&mut answer).await? == 0 {
                bail!("the sandbox closed the connection");
            }
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                ensure!(head.starts_with("http/1.1 200"), "answer: {head}");
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .context("an answer without Content-Length")?;
                break (end + 4, length);
            }
        };
        while answer.len() < head_end + length {
            if stream.read_buf(&mut answer).await? == 0 {
                bail!("the sandbox closed the connection mid-answer");
            }
        }
        sent += 1;
    }
}

// ---------------------------------------------------------------------------------------
// 1. validate

const VALIDATE_SIZES: [(u64, usize); 2] = [(1_000_000, 3), (10_000, 5)];
const VALIDATE_ROWS_PER_SEC: f64 = 500_000.0;
const VALIDATE_RSS_MIB: f64 = 64.0;

/// `ferry validate` of a calls manifest: rows per second (wall clock, median of a few
/// runs) and the child's peak RSS (largest of the runs).
fn bench_validate() -> Result<()> {
    fixed_cost()?;
    for (rows, runs) in VALIDATE_SIZES {
        measure_validate(rows, runs)?;
    }
    Ok(())
}

/// A measured `validate`, with the manifest it read (kept for a baseline to read).
struct Validated {
    rows_per_sec: f64,
    rss_mib: f64,
    manifest: PathBuf,
    _dir: tempfile::TempDir,
}

fn measure_validate(rows: u64, runs: usize) -> Result<Validated> {
    let dir = tempdir()?;
    let manifest = dir.path().join("calls.csv");
    let started = Instant::now();
    let generated = write_calls(&manifest, rows)?;
    println!(
        "  generated {} rows ({} deliberately bad, {:.1} MiB) in {:.2} s",
        thousands(rows),
        thousands(generated.bad),
        fs::metadata(&manifest)?.len() as f64 / MIB,
        started.elapsed().as_secs_f64()
    );
    let mut walls = Vec::new();
    let mut peak_kib = 0;
    for run in 1..=runs {
        let report_dir = dir.path().join(format!("report-{run}"));
        let mut cmd = ferry(dir.path());
        cmd.arg("validate")
            .arg(&manifest)
            .args(["--kind", "calls", "--report-dir"])
            .arg(&report_dir);
        let done = run_measured(&mut cmd, dir.path(), &format!("validate-{run}"))?;
        done.expect_exit(&[0, 1])?;
        let summary = read_summary(&report_dir)?;
        check_counts(&summary, rows, generated.bad, &done, run == 1)?;
        println!(
            "  run {run}: {:.3} s wall, {:.2} s cpu, peak RSS {:.1} MiB",
            done.wall.as_secs_f64(),
            done.cpu.as_secs_f64(),
            done.max_rss_kib as f64 / 1024.0
        );
        walls.push(done.wall);
        peak_kib = peak_kib.max(done.max_rss_kib);
        if !KEEP.load(Ordering::Relaxed) {
            // A million-row report folder is a few hundred MB; do not keep three.
            fs::remove_dir_all(&report_dir).ok();
        }
    }
    let wall = median(&mut walls);
    let rate = rows as f64 / wall.as_secs_f64();
    let rss = peak_kib as f64 / 1024.0;
    println!(
        "validate {} rows: {:.3} s, {} rows/s [target >= {}: {}], peak RSS {:.1} MiB [target < {} MiB: {}]",
        thousands(rows),
        wall.as_secs_f64(),
        thousands(rate as u64),
        thousands(VALIDATE_ROWS_PER_SEC as u64),
        verdict(rate >= VALIDATE_ROWS_PER_SEC),
        rss,
        VALIDATE_RSS_MIB,
        verdict(rss < VALIDATE_RSS_MIB)
    );
    Ok(Validated {
        rows_per_sec: rate,
        rss_mib: rss,
        manifest,
        _dir: dir,
    })
}

/// What one valid row costs: start-up and one-time set-up, paid again by every run, and
/// part of every number after it.
fn fixed_cost() -> Result<()> {
    let dir = tempdir()?;
    let manifest = dir.path().join("one.csv");
    fs::write(
        &manifest,
        "eventId,name,company,countryCode,mobile,areaCode,phone\n542818,张伟,全时,86,13800138000,,\n",
    )?;
    let mut cmd = ferry(dir.path());
    cmd.arg("validate")
        .arg(&manifest)
        .args(["--kind", "calls", "--report-dir"])
        .arg(dir.path().join("report"));
    let done = run_measured(&mut cmd, dir.path(), "validate")?;
    done.expect_exit(&[0])?;
    println!(
        "  fixed cost (a manifest of one valid row): {:.3} s wall, peak RSS {:.1} MiB",
        done.wall.as_secs_f64(),
        done.max_rss_kib as f64 / 1024.0
    );
    Ok(())
}

/// Every row is accounted for, and ferry rejects exactly the rows made bad on purpose
/// (a difference is printed, not fatal: it is either a generator or a validation bug).
fn check_counts(summary: &Value, rows: u64, bad: u64, done: &Finished, say: bool) -> Result<()> {
    let counts = &summary["counts"];
    let total = counts["total"]
        .as_u64()
        .context("summary.json: counts.total")?;
    ensure!(
        total == rows,
        "summary.json counts {total} rows, the manifest has {rows}"
    );
    let failed = counts["failed_total"].as_u64().unwrap_or(0);
    if failed != bad && say {
        println!(
            "  NOTE: ferry failed {failed} rows, the generator made {bad} bad; ferry said:\n{}",
            indent(&done.stdout_text())
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. rate

const RATE_REQUESTS: u64 = 600;
const RATE: f64 = 50.0;
const RATE_BURST: u64 = 5;
const RATE_MIN_SHARE: f64 = 0.98;
/// How often the sandbox's request counter is read to find the busiest second.
const POLL_EVERY: Duration = Duration::from_millis(5);
const CREATE_TASK: &str = "/api/task/do_add";

/// `ferry run --rate 50`, no concurrency configured, against a sandbox that answers after
/// 100 ms: the achieved rate
/// (ferry's summary, and as the sandbox saw it) and the most requests in any one-second
/// window. The sandbox counts a request when it arrives; polling that counter every
/// few milliseconds brackets the busiest window between two bounds.
fn bench_rate() -> Result<()> {
    let dir = tempdir()?;
    let sandbox = Sandbox::start(dir.path(), &["--latency-ms", "100"])?;
    let manifest = dir.path().join("appointments.csv");
    write_appointments(&manifest, RATE_REQUESTS)?;
    let config = write_config(
        dir.path(),
        &format!(
            // No concurrency: ferry sizes it from the rate and the answer time.
            "[targets.arctos]\nbase_url = \"{}\"\ntoken_env = \"ARCTOS_TOKEN\"\nburst = {RATE_BURST}\n",
            sandbox.base_url()
        ),
    )?;
    let report_dir = dir.path().join("report");
    let mut cmd = ferry(dir.path());
    cmd.arg("run")
        .arg(&manifest)
        .args(["--kind", "appointments", "--config"])
        .arg(&config)
        .arg("--report-dir")
        .arg(&report_dir)
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["--rate", &RATE.to_string()]);

    let poller = Poller::start(sandbox.addr.clone());
    let done = run_measured(&mut cmd, dir.path(), "run")?;
    let samples = poller.stop()?;
    done.expect_exit(&[0])?;
    let summary = read_summary(&report_dir)?;
    let succeeded = summary["counts"]["succeeded"].as_u64().unwrap_or(0);
    ensure!(
        succeeded == RATE_REQUESTS,
        "{succeeded} of {RATE_REQUESTS} rows succeeded"
    );
    let achieved = summary["requests"]["achieved_rate"]
        .as_f64()
        .context("summary.json: requests.achieved_rate")?;
    let seen = samples.last().map_or(0, |s| s.1);
    ensure!(
        seen == RATE_REQUESTS,
        "the sandbox saw {seen} requests to {CREATE_TASK}, expected {RATE_REQUESTS}"
    );
    let (low, high) = busiest_second(&samples);
    let steady = steady_rate(&samples);
    println!(
        "  ferry run: {:.2} s wall; sandbox saw {seen} requests, {steady:.2}/s from first to last; \
         counter read {} times, every {} ms",
        done.wall.as_secs_f64(),
        samples.len(),
        POLL_EVERY.as_millis()
    );
    let limit = RATE as u64 + RATE_BURST;
    let window = if low == high {
        format!("{low}")
    } else {
        format!("{low}..{high} (within polling resolution)")
    };
    let window_verdict = if high <= limit {
        "PASS"
    } else if low > limit {
        "MISS"
    } else {
        "UNSURE"
    };
    println!(
        "rate {RATE_REQUESTS} requests at --rate {RATE} burst {RATE_BURST}: achieved {achieved:.2}/s \
         [target >= {:.1}: {}], busiest 1-s window {window} requests [target <= {limit}: {window_verdict}]",
        RATE * RATE_MIN_SHARE,
        verdict(achieved >= RATE * RATE_MIN_SHARE),
    );
    Ok(())
}

/// Bounds on the most requests that arrived within any one second, from counter readings
/// `(seconds since start, count)`. Lower: two readings at most 1 s apart. Upper: a
/// window starting between readings `i` and `i+1` lies inside readings `i` and the first
/// one at least 1 s after reading `i+1`.
fn busiest_second(samples: &[(f64, u64)]) -> (u64, u64) {
    let mut low = 0;
    let mut high = 0;
    for (i, &(t, c)) in samples.iter().enumerate() {
        let within = samples.partition_point(|s| s.0 <= t + 1.0);
        if let Some(&(_, last)) = samples[..within].last() {
            low = low.max(last - c);
        }
        let next = samples.get(i + 1).map_or(t, |s| s.0);
        let cover = samples.partition_point(|s| s.0 < next + 1.0);
        let end = samples.get(cover).or(samples.last()).map_or(c, |s| s.1);
        high = high.max(end - c);
    }
    (low, high)
}

/// Requests per second as the sandbox saw them, from the first reading that counted a
/// request to the first that counted them all.
fn steady_rate(samples: &[(f64, u64)]) -> f64 {
    let total = samples.last().map_or(0, |s| s.1);
    let first = samples.iter().find(|s| s.1 > 0);
    let last = samples.iter().find(|s| s.1 == total);
    match (first, last) {
        (Some(&(t0, c0)), Some(&(t1, c1))) if t1 > t0 => (c1 - c0) as f64 / (t1 - t0),
        _ => 0.0,
    }
}

/// Reads the sandbox's request counter in a loop until stopped.
struct Poller {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<Vec<(f64, u64)>>>,
}

impl Poller {
    fn start(addr: String) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let origin = Instant::now();
            let mut samples = Vec::new();
            loop {
                // Read the flag first, so the last reading comes after the run ended.
                let last = flag.load(Ordering::SeqCst);
                let before = origin.elapsed().as_secs_f64();
                let count = task_requests(&sandbox_stats(&addr)?);
                let after = origin.elapsed().as_secs_f64();
                samples.push(((before + after) / 2.0, count));
                if last {
                    return Ok(samples);
                }
                thread::sleep(POLL_EVERY);
            }
        });
        Poller { stop, thread }
    }

    fn stop(self) -> Result<Vec<(f64, u64)>> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(samples) => samples,
            Err(_) => bail!("the stats poller panicked"),
        }
    }
}

fn task_requests(stats: &Value) -> u64 {
    stats["requests"][CREATE_TASK].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// 3. throughput

const THROUGHPUT_REQUESTS: u64 = 50_000;
const THROUGHPUT_TARGET: f64 = 5_000.0;

/// `ferry run` of appointments with the rate limit out of the way: requests per second.
fn bench_throughput() -> Result<()> {
    measure_appointments().map(|_| ())
}

/// Requests per second while sending, of a `ferry run` of appointments with the rate
/// limit out of the way.
fn measure_appointments() -> Result<f64> {
    let dir = tempdir()?;
    let sandbox = Sandbox::start(dir.path(), &[])?;
    let manifest = dir.path().join("appointments.csv");
    write_appointments(&manifest, THROUGHPUT_REQUESTS)?;
    let config = write_config(
        dir.path(),
        &format!(
            "[targets.arctos]\nbase_url = \"{}\"\ntoken_env = \"ARCTOS_TOKEN\"\nburst = 100000\nconcurrency = 32\n",
            sandbox.base_url()
        ),
    )?;
    let report_dir = dir.path().join("report");
    let mut cmd = ferry(dir.path());
    cmd.arg("run")
        .arg(&manifest)
        .args(["--kind", "appointments", "--config"])
        .arg(&config)
        .arg("--report-dir")
        .arg(&report_dir)
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["--rate", "100000", "--concurrency", "32"]);
    let done = run_measured(&mut cmd, dir.path(), "run")?;
    done.expect_exit(&[0])?;
    let summary = read_summary(&report_dir)?;
    let succeeded = summary["counts"]["succeeded"].as_u64().unwrap_or(0);
    ensure!(
        succeeded == THROUGHPUT_REQUESTS,
        "{succeeded} of {THROUGHPUT_REQUESTS} rows succeeded"
    );
    let achieved = summary["requests"]["achieved_rate"]
        .as_f64()
        .context("summary.json: requests.achieved_rate")?;
    let seen = task_requests(&sandbox.stats()?);
    ensure!(
        seen == THROUGHPUT_REQUESTS,
        "the sandbox saw {seen} requests, expected {THROUGHPUT_REQUESTS}"
    );
    let end_to_end = seen as f64 / done.wall.as_secs_f64();
    println!(
        "  ferry run: {:.2} s wall ({} requests/s end to end, with validation and reports), \
         {:.2} s cpu, peak RSS {:.1} MiB",
        done.wall.as_secs_f64(),
        thousands(end_to_end as u64),
        done.cpu.as_secs_f64(),
        done.max_rss_kib as f64 / 1024.0
    );
    println!(
        "throughput {} requests, --rate 100000 --concurrency 32: {} requests/s while sending \
         [target >= {}: {}]",
        thousands(THROUGHPUT_REQUESTS),
        thousands(achieved as u64),
        thousands(THROUGHPUT_TARGET as u64),
        verdict(achieved >= THROUGHPUT_TARGET)
    );
    Ok(achieved)
}

// ---------------------------------------------------------------------------------------
// 4. memory

/// Two sizes, ten times apart: a peak that does not grow with the rows is flat.
const MEMORY_SIZES: [u64; 2] = [100_000, 1_000_000];
const MEMORY_RSS_MIB: f64 = 100.0;
const CALL_CREATE: &str = "/eventopenapi/event/call/create";

/// `ferry run` of 100,000 and of a million calls (batches of 100): the child's peak RSS
/// at each size, and the rows of report.xlsx checked to be in `ferry_row` order (the
/// workers finish them in another; the million rows are sorted through files on disk).
fn bench_memory() -> Result<()> {
    let mut peaks = Vec::new();
    for rows in MEMORY_SIZES {
        peaks.push(memory_run(rows)?.rss_mib);
    }
    let largest = peaks.last().copied().unwrap_or(0.0);
    println!(
        "memory run of {} / {} calls (batches of 100): peak RSS {} MiB [target < {MEMORY_RSS_MIB} MiB: {}]",
        thousands(MEMORY_SIZES[0]),
        thousands(MEMORY_SIZES[1]),
        peaks.iter().map(|p| format!("{p:.1}")).collect::<Vec<_>>().join(" / "),
        verdict(largest < MEMORY_RSS_MIB)
    );
    Ok(())
}

/// What a measured `ferry run` of calls did.
struct CallsRun {
    rss_mib: f64,
    rows_per_sec: f64,
}

/// One measured `ferry run` of `rows` calls.
fn memory_run(rows: u64) -> Result<CallsRun> {
    let dir = tempdir()?;
    let sandbox = Sandbox::start(dir.path(), &[])?;
    let manifest = dir.path().join("calls.csv");
    let generated = write_calls(&manifest, rows)?;
    let config = write_config(
        dir.path(),
        &format!(
            "[targets.quanshi]\nbase_url = \"{}\"\ntoken_env = \"QUANSHI_TOKEN\"\nbatch_size = 100\nburst = 100000\nconcurrency = 16\n",
            sandbox.base_url()
        ),
    )?;
    let report_dir = dir.path().join("report");
    let mut cmd = ferry(dir.path());
    cmd.arg("run")
        .arg(&manifest)
        .args(["--kind", "calls", "--config"])
        .arg(&config)
        .arg("--report-dir")
        .arg(&report_dir)
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args([
            "--rate",
            "100000",
            "--concurrency",
            "16",
            "--batch-size",
            "100",
        ]);
    let done = run_measured(&mut cmd, dir.path(), "run")?;
    done.expect_exit(&[0, 1])?;
    let summary = read_summary(&report_dir)?;
    let counts = &summary["counts"];
    let total = counts["total"].as_u64().unwrap_or(0);
    ensure!(
        total == rows,
        "summary.json counts {total} rows, the manifest has {rows}"
    );
    let succeeded = counts["succeeded"].as_u64().unwrap_or(0);
    let failed = counts["failed_total"].as_u64().unwrap_or(0);
    let sent = summary["requests"]["sent"].as_u64().unwrap_or(0);
    let seen = sandbox.stats()?["requests"][CALL_CREATE]
        .as_u64()
        .unwrap_or(0);
    println!(
        "  ferry run of {}: {:.1} s wall, {:.1} s cpu; {} rows/s; {} succeeded, {} failed ({} made bad); \
         {} requests sent, {} seen by the sandbox; peak RSS {:.1} MiB",
        thousands(rows),
        done.wall.as_secs_f64(),
        done.cpu.as_secs_f64(),
        thousands((rows as f64 / done.wall.as_secs_f64()) as u64),
        thousands(succeeded),
        thousands(failed),
        thousands(generated.bad),
        thousands(sent),
        thousands(seen),
        rss_mib(&done)
    );
    let in_order = sheet_rows_in_order(&report_dir.join("report.xlsx"), "succeeded")?;
    ensure!(
        in_order == succeeded,
        "report.xlsx: {in_order} rows of the succeeded sheet in ferry_row order, {succeeded} succeeded"
    );
    Ok(CallsRun {
        rss_mib: rss_mib(&done),
        rows_per_sec: rows as f64 / done.wall.as_secs_f64(),
    })
}

/// How many data rows the sheet has, after checking, streamed, that their `ferry_row`
/// (column A, a number) only goes up.
fn sheet_rows_in_order(path: &Path, sheet: &str) -> Result<u64> {
    use calamine::DataRef;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(path)?;
    let mut cells = book.worksheet_cells_reader(sheet)?;
    let (mut rows, mut last) = (0, 0.0);
    while let Some(cell) = cells.next_cell()? {
        let ((row, col), value) = (cell.get_position(), cell.get_value());
        if row == 0 || col != 0 {
            continue;
        }
        let DataRef::Float(n) = value else {
            bail!(
                "{sheet} row {}: ferry_row is {value:?}, not a number",
                row + 1
            );
        };
        ensure!(
            *n > last,
            "{sheet} row {}: ferry_row {n} after {last}",
            row + 1
        );
        (rows, last) = (rows + 1, *n);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// 5. hostile

/// Issue 9's targets: peak RSS for any vendor answer, and for any XLSX file.
const HOSTILE_ANSWER_RSS_MIB: f64 = 300.0;
const HOSTILE_XLSX_RSS_MIB: f64 = 500.0;
/// A hostile case's child is killed once its resident set passes this (a miss either
/// way), so that a bomb that gets through cannot take the machine.
const HOSTILE_RSS_CAP_KIB: u64 = 1024 * 1024;
/// Every case ends in seconds; past this it is taken for hung.
const HOSTILE_TIMEOUT: Duration = Duration::from_secs(120);
const HOSTILE_APPOINTMENTS: u64 = 3;
/// What the `huge` answer announces, and sends if it is read.
const HUGE_ANSWER_BYTES: u64 = 500 * 1024 * 1024;

/// Peak RSS of `ferry run` against answers that never end or never fit, and of `ferry
/// validate` of workbooks (and a CSV line) built to blow up when read.
fn bench_hostile() -> Result<()> {
    hostile_answers()?;
    hostile_workbooks()
}

/// `ferry run` of a few appointments (`timeout_secs = 5`, no retries, all in flight at
/// once) against a server in this process that misbehaves on every request.
fn hostile_answers() -> Result<()> {
    for answer in [Answer::Huge, Answer::Endless, Answer::Drip] {
        let dir = tempdir()?;
        let server = BadServer::start(answer)?;
        let manifest = dir.path().join("appointments.csv");
        write_appointments(&manifest, HOSTILE_APPOINTMENTS)?;
        let config = write_config(
            dir.path(),
            &format!(
                "[targets.arctos]\nbase_url = \"http://{}\"\ntoken_env = \"ARCTOS_TOKEN\"\n\
                 timeout_secs = 5\nmax_retries = 0\nconcurrency = {HOSTILE_APPOINTMENTS}\n",
                server.addr
            ),
        )?;
        let report_dir = dir.path().join("report");
        let mut cmd = ferry(dir.path());
        cmd.arg("run")
            .arg(&manifest)
            .args(["--kind", "appointments", "--config"])
            .arg(&config)
            .arg("--report-dir")
            .arg(&report_dir)
            .arg("--state")
            .arg(dir.path().join("state.db"));
        let done = run_child(
            &mut cmd,
            dir.path(),
            "run",
            HOSTILE_TIMEOUT,
            Some(HOSTILE_RSS_CAP_KIB),
        )?;
        let (requests, written) = server.stop();
        let end = ending(&done)?;
        println!(
            "  {}: the server saw {requests} requests and wrote {:.1} MiB into the sockets; \
             failed rows (stage/code): {}",
            answer.what(),
            written as f64 / MIB,
            failed_stages(&report_dir)
        );
        println!(
            "hostile answer {}: peak RSS {} [target < {HOSTILE_ANSWER_RSS_MIB} MiB: {}], \
             {:.2} s wall, {end}",
            answer.name(),
            peak(&done),
            verdict(done.killed_at_kib.is_none() && rss_mib(&done) < HOSTILE_ANSWER_RSS_MIB),
            done.wall.as_secs_f64(),
        );
    }
    Ok(())
}

/// `ferry validate` of workbooks made to hurt a reader, and of one large honest one.
fn hostile_workbooks() -> Result<()> {
    let dir = tempdir()?;
    let mut cases: Vec<(&str, &str, PathBuf, &str)> = Vec::new();
    let started = Instant::now();

    // Shared strings that expand from a few MiB to 1 GiB.
    let path = dir.path().join("sst-bomb.xlsx");
    hand_made(
        &path,
        &[
            plain("xl/worksheets/sheet1.xml", &shared_string_sheet()),
            Part {
                name: "xl/sharedStrings.xml",
                head: &sst_head(1),
                unit: "<si><t>userId</t></si>",
                times: (1 << 30) / 22,
                tail: "</sst>",
            },
        ],
    )?;
    cases.push((
        "sst-bomb",
        "shared strings expanding to 1 GiB",
        path,
        "agent-settings",
    ));

    // Shared strings as big as every bound allows: 2,000,000 of them (declared and
    // counted) in just under 128 MiB, every one held in memory by calamine.
    let path = dir.path().join("sst-at-bounds.xlsx");
    let text = "x".repeat(50);
    hand_made(
        &path,
        &[
            plain("xl/worksheets/sheet1.xml", &shared_string_sheet()),
            Part {
                name: "xl/sharedStrings.xml",
                head: &format!("{}<si><t>userId</t></si>", sst_head(2_000_000)),
                unit: &format!("<si><t>{text}</t></si>"),
                times: 2_000_000 - 1,
                tail: "</sst>",
            },
        ],
    )?;
    cases.push((
        "sst-at-bounds",
        "2,000,000 shared strings in 126 MiB, just within the bounds",
        path,
        "agent-settings",
    ));

    let path = dir.path().join("sst-declared.xlsx");
    hand_made(
        &path,
        &[
            plain("xl/worksheets/sheet1.xml", &shared_string_sheet()),
            plain(
                "xl/sharedStrings.xml",
                &format!("{}<si><t>userId</t></si></sst>", sst_head(4_000_000_000)),
            ),
        ],
    )?;
    cases.push((
        "sst-declared-4e9",
        "declares 4,000,000,000 shared strings, holds one",
        path,
        "agent-settings",
    ));

    let path = dir.path().join("dimension.xlsx");
    let sheet = format!(
        "{XML_DECL}<worksheet xmlns=\"{MAIN_NS}\"><dimension ref=\"A1:XFD1048576\"/><sheetData>{}{}{}</sheetData></worksheet>",
        inline_row(1, "userId"),
        inline_row(2, "u1"),
        inline_row(3, "u2")
    );
    hand_made(&path, &[plain("xl/worksheets/sheet1.xml", &sheet)])?;
    cases.push((
        "sheet-dimension",
        "claims 1,048,576 rows x 16,384 columns, holds 3 rows",
        path,
        "agent-settings",
    ));

    let path = dir.path().join("far-row.xlsx");
    let sheet = format!(
        "{XML_DECL}<worksheet xmlns=\"{MAIN_NS}\"><dimension ref=\"A1:A4000000000\"/><sheetData>{}{}{}</sheetData></worksheet>",
        inline_row(1, "userId"),
        inline_row(2, "u1"),
        inline_row(4_000_000_000, "u2")
    );
    hand_made(&path, &[plain("xl/worksheets/sheet1.xml", &sheet)])?;
    cases.push((
        "row-4e9",
        "a cell at row 4,000,000,000",
        path,
        "agent-settings",
    ));

    // Cell styles: calamine builds a whole style record for each <xf> of the styles part
    // (held whole, bound 128 MiB) when the workbook is opened.
    let path = dir.path().join("styles.xlsx");
    let inline_sheet = format!(
        "{XML_DECL}<worksheet xmlns=\"{MAIN_NS}\"><sheetData>{}{}</sheetData></worksheet>",
        inline_row(1, "userId"),
        inline_row(2, "u1")
    );
    let unit = "<xf/>";
    hand_made(
        &path,
        &[
            plain("xl/worksheets/sheet1.xml", &inline_sheet),
            Part {
                name: "xl/styles.xml",
                head: &format!("{XML_DECL}<styleSheet xmlns=\"{MAIN_NS}\"><cellXfs count=\"1\">"),
                unit,
                times: (127 << 20) / unit.len() as u64,
                tail: "</cellXfs></styleSheet>",
            },
        ],
    )?;
    cases.push((
        "styles-many",
        "26,633,830 cell styles (<xf/>) in 127 MiB, within the part size",
        path,
        "agent-settings",
    ));

    // A few styles, each given its own copy of one long number format (a tag under the
    // 1 MiB bound on any tag).
    let path = dir.path().join("styles-format.xlsx");
    let code = "0".repeat(1_000_000);
    hand_made(
        &path,
        &[
            plain("xl/worksheets/sheet1.xml", &inline_sheet),
            Part {
                name: "xl/styles.xml",
                head: &format!(
                    "{XML_DECL}<styleSheet xmlns=\"{MAIN_NS}\"><numFmts count=\"1\">\
                     <numFmt numFmtId=\"164\" formatCode=\"{code}\"/></numFmts><cellXfs count=\"1000\">"
                ),
                unit: "<xf numFmtId=\"164\"/>",
                times: 1_000,
                tail: "</cellXfs></styleSheet>",
            },
        ],
    )?;
    cases.push((
        "styles-long-format",
        "1,000 cell styles sharing one 1,000,000-character number format",
        path,
        "agent-settings",
    ));

    // One row as wide and as full as Excel allows: 16,384 inline cells of 32,767
    // characters (512 MiB of text in about 1 MiB of zip), then a row after it.
    let path = dir.path().join("wide-inline.xlsx");
    let cell = format!(
        "<c t=\"inlineStr\"><is><t>{}</t></is></c>",
        "x".repeat(32_767)
    );
    hand_made(
        &path,
        &[Part {
            name: "xl/worksheets/sheet1.xml",
            head: &format!(
                "{XML_DECL}<worksheet xmlns=\"{MAIN_NS}\"><sheetData>{}<row r=\"2\">",
                inline_row(1, "userId")
            ),
            unit: &cell,
            times: 16_384,
            tail: &format!("</row>{}</sheetData></worksheet>", inline_row(3, "u3")),
        }],
    )?;
    cases.push((
        "wide-inline",
        "a row of 16,384 inline cells of 32,767 characters",
        path,
        "agent-settings",
    ));

    // The same row as one CSV line (512 MiB on disk).
    let path = dir.path().join("wide-line.csv");
    write_wide_line(&path)?;
    cases.push((
        "wide-line",
        "a CSV line of 16,384 cells of 32,767 characters",
        path,
        "agent-settings",
    ));

    // An honest workbook, as a spreadsheet saves it: every cell a shared string.
    let csv = dir.path().join("calls.csv");
    let generated = write_calls(&csv, LEGIT_XLSX_ROWS)?;
    let path = dir.path().join("calls.xlsx");
    csv_to_xlsx(&csv, &path)?;
    fs::remove_file(&csv).ok();
    cases.push((
        "legit-200k",
        "200,000 calls rows written by rust_xlsxwriter",
        path,
        "calls",
    ));
    println!(
        "  built {} workbooks in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );

    for (name, what, path, kind) in &cases {
        let report_dir = dir.path().join(format!("report-{name}"));
        let mut cmd = ferry(dir.path());
        cmd.arg("validate")
            .arg(path)
            .args(["--kind", kind, "--report-dir"])
            .arg(&report_dir);
        let done = run_child(
            &mut cmd,
            dir.path(),
            name,
            HOSTILE_TIMEOUT,
            Some(HOSTILE_RSS_CAP_KIB),
        )?;
        let end = ending(&done)?;
        let said = if done.killed_at_kib.is_some() {
            String::new()
        } else if done.status.code() == Some(2) {
            let error = fs::read_to_string(&done.stderr).unwrap_or_default();
            let line = error
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or("(no error line)");
            // The path in front says nothing; the reason is what counts.
            let line = line.split_once(".xlsx: ").map_or(line, |(_, l)| l);
            format!(": {}", line.chars().take(110).collect::<String>())
        } else {
            let summary = read_summary(&report_dir)?;
            if *kind == "calls" {
                check_counts(&summary, LEGIT_XLSX_ROWS, generated.bad, &done, true)?;
            }
            format!(
                ": {} rows read, {} failed",
                summary["counts"]["total"], summary["counts"]["failed_total"]
            )
        };
        println!(
            "  {name}: {what}; {:.1} MiB on disk",
            fs::metadata(path)?.len() as f64 / MIB
        );
        println!(
            "hostile read {name}: peak RSS {} [target < {HOSTILE_XLSX_RSS_MIB} MiB: {}], \
             {:.2} s wall, {end}{said}",
            peak(&done),
            verdict(done.killed_at_kib.is_none() && rss_mib(&done) < HOSTILE_XLSX_RSS_MIB),
            done.wall.as_secs_f64(),
        );
    }
    Ok(())
}

const LEGIT_XLSX_ROWS: u64 = 200_000;

fn rss_mib(done: &Finished) -> f64 {
    done.max_rss_kib as f64 / 1024.0
}

/// `123.4 MiB`, or `> 1024 MiB (killed at ...)` for a child stopped at its cap.
fn peak(done: &Finished) -> String {
    match done.killed_at_kib {
        Some(at) => format!(
            "> {} MiB (killed at {:.0} MiB resident)",
            HOSTILE_RSS_CAP_KIB / 1024,
            at as f64 / 1024.0
        ),
        None => format!("{:.1} MiB", rss_mib(done)),
    }
}

/// How the child ended: `exit N`, or killed at the cap. Any other signal, or a panic, is
/// a broken run.
fn ending(done: &Finished) -> Result<String> {
    if done.killed_at_kib.is_some() {
        return Ok("killed at the memory cap".to_string());
    }
    match done.status.code() {
        Some(code @ 0..=3) => Ok(format!("exit {code}")),
        _ => bail!(
            "ferry ended with {}\nstderr (end):\n{}",
            done.status,
            indent(&tail(
                &fs::read_to_string(&done.stderr).unwrap_or_default(),
                20
            ))
        ),
    }
}

/// `failed.csv`'s rows as `N x stage/code`, one entry per distinct pair.
fn failed_stages(report_dir: &Path) -> String {
    let Ok(text) = fs::read_to_string(report_dir.join("failed.csv")) else {
        return "no failed.csv".to_string();
    };
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let Ok(header) = reader.headers().cloned() else {
        return "failed.csv has no header".to_string();
    };
    let at = |name: &str| header.iter().position(|h| h == name);
    let (Some(stage), Some(code)) = (at("ferry_stage"), at("ferry_error_code")) else {
        return "failed.csv has no ferry_stage/ferry_error_code".to_string();
    };
    let mut pairs: Vec<(String, u64)> = Vec::new();
    for record in reader.records().flatten() {
        let pair = format!("{}/{}", &record[stage], &record[code]);
        match pairs.iter_mut().find(|(p, _)| *p == pair) {
            Some((_, n)) => *n += 1,
            None => pairs.push((pair, 1)),
        }
    }
    if pairs.is_empty() {
        return "none".to_string();
    }
    pairs
        .iter()
        .map(|(p, n)| format!("{n} x {p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the misbehaving server answers to every request.
#[derive(Clone, Copy)]
enum Answer {
    /// A 200 announcing 500 MB with `Content-Length`, and sending them if read.
    Huge,
    /// A 200 with a chunked body that never ends (64 KiB chunks).
    Endless,
    /// A 200 announcing 100,000 bytes and sending one every 100 ms.
    Drip,
}

impl Answer {
    fn name(self) -> &'static str {
        match self {
            Answer::Huge => "huge",
            Answer::Endless => "endless",
            Answer::Drip => "drip",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Answer::Huge => "huge (a 500 MB body with Content-Length)",
            Answer::Endless => "endless (a chunked body that never ends)",
            Answer::Drip => "drip (one byte every 100 ms)",
        }
    }
}

/// A server on 127.0.0.1 that gives every request the same bad [`Answer`], each
/// connection on its own thread; stopped, and every thread joined, on `stop` or drop.
struct BadServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    accept: Option<thread::JoinHandle<()>>,
}

impl BadServer {
    fn start(answer: Answer) -> Result<BadServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the bad server")?;
        // Non-blocking, so that the accept loop sees the stop flag.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let (flag, seen, sent) = (stop.clone(), requests.clone(), written.clone());
        let accept = thread::spawn(move || {
            let mut connections = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (flag, seen, sent) = (flag.clone(), seen.clone(), sent.clone());
                        connections.push(thread::spawn(move || {
                            let _ = misbehave(stream, answer, &flag, &seen, &sent);
                        }));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            for connection in connections {
                let _ = connection.join();
            }
        });
        Ok(BadServer {
            addr,
            stop,
            requests,
            written,
            accept: Some(accept),
        })
    }

    /// Stops the server; returns the requests it saw and the body bytes it wrote.
    fn stop(mut self) -> (u64, u64) {
        self.shut();
        (
            self.requests.load(Ordering::SeqCst),
            self.written.load(Ordering::SeqCst),
        )
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Reads one request, then answers it badly until the client leaves or the server stops.
fn misbehave(
    stream: TcpStream,
    answer: Answer,
    stop: &AtomicBool,
    requests: &AtomicU64,
    written: &AtomicU64,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    // Short, so that a write the client does not take still sees the stop flag.
    stream.set_write_timeout(Some(Duration::from_millis(100)))?;
    let mut out = Out {
        stream,
        stop,
        written,
    };
    read_request(&mut out.stream)?;
    requests.fetch_add(1, Ordering::SeqCst);
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    match answer {
        Answer::Huge => {
            out.head(&format!("{ok}Content-Length: {HUGE_ANSWER_BYTES}\r\n\r\n"))?;
            let chunk = vec![b' '; 64 * 1024];
            let mut left = HUGE_ANSWER_BYTES;
            while left > 0 {
                let n = left.min(chunk.len() as u64);
                out.body(&chunk[..n as usize])?;
                left -= n;
            }
        }
        Answer::Endless => {
            out.head(&format!("{ok}Transfer-Encoding: chunked\r\n\r\n"))?;
            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
            chunk.resize(chunk.len() + 64 * 1024, b'x');
            chunk.extend_from_slice(b"\r\n");
            loop {
                out.body(&chunk)?;
            }
        }
        Answer::Drip => {
            out.head(&format!("{ok}Content-Length: 100000\r\n\r\n"))?;
            for _ in 0..100_000 {
                out.body(b" ")?;
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// A connection's writing end that gives up when the client leaves or the server stops.
struct Out<'a> {
    stream: TcpStream,
    stop: &'a AtomicBool,
    written: &'a AtomicU64,
}

impl Out<'_> {
    fn head(&mut self, text: &str) -> io::Result<()> {
        self.send(text.as_bytes())
    }

    fn body(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.send(bytes)?;
        self.written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.stop.load(Ordering::SeqCst) {
                return Err(io::Error::other("server stopped"));
            }
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Reads a request's head and its `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:")?.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

const XML_DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

/// One XML part of a hand-made workbook: `head`, `unit` `times` times, then `tail`.
struct Part<'a> {
    name: &'a str,
    head: &'a str,
    unit: &'a str,
    times: u64,
    tail: &'a str,
}

fn plain<'a>(name: &'a str, xml: &'a str) -> Part<'a> {
    Part {
        name,
        head: xml,
        unit: "",
        times: 0,
        tail: "",
    }
}

fn sst_head(unique_count: u64) -> String {
    format!("{XML_DECL}<sst xmlns=\"{MAIN_NS}\" count=\"{unique_count}\" uniqueCount=\"{unique_count}\">")
}

/// A sheet whose header is shared string 0 (`userId`, or whatever string 0 is).
fn shared_string_sheet() -> String {
    format!(
        "{XML_DECL}<worksheet xmlns=\"{MAIN_NS}\"><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>{}</sheetData></worksheet>",
        inline_row(2, "u1")
    )
}

fn inline_row(row: u64, value: &str) -> String {
    format!(r#"<row r="{row}"><c r="A{row}" t="inlineStr"><is><t>{value}</t></is></c></row>"#)
}

/// A workbook written part by part, as no spreadsheet would: the package's fixed parts
/// (one sheet) and `parts`, each streamed into the zip, never held whole.
fn hand_made(path: &Path, parts: &[Part]) -> Result<()> {
    let mut zip = zip::ZipWriter::new(io::BufWriter::new(File::create(path)?));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        .large_file(true);
    let fixed = [
        plain(
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        plain(
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        plain(
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        plain(
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
    ];
    for part in fixed.iter().chain(parts) {
        zip.start_file(part.name, options)?;
        zip.write_all(part.head.as_bytes())?;
        if part.times > 0 {
            // Units in blocks of about 64 KiB: a gigabyte in a few thousand writes.
            let per_block = (64 * 1024 / part.unit.len().max(1)).max(1) as u64;
            let block = part.unit.repeat(per_block as usize);
            let mut left = part.times;
            while left >= per_block {
                zip.write_all(block.as_bytes())?;
                left -= per_block;
            }
            zip.write_all(part.unit.repeat(left as usize).as_bytes())?;
        }
        zip.write_all(part.tail.as_bytes())?;
    }
    zip.finish()?.flush()?;
    Ok(())
}

/// A header, one line of 16,384 cells of 32,767 characters, and a short line after it.
fn write_wide_line(path: &Path) -> Result<()> {
    let mut out = io::BufWriter::new(File::create(path)?);
    let cell = "x".repeat(32_767);
    out.write_all(b"userId\nu1")?;
    for _ in 1..16_384 {
        out.write_all(b",")?;
        out.write_all(cell.as_bytes())?;
    }
    out.write_all(b"\nu3\n")?;
    out.flush()?;
    Ok(())
}

/// The CSV's records as one sheet of text cells, saved the way a spreadsheet saves it
/// (a shared-strings table).
fn csv_to_xlsx(csv_path: &Path, xlsx_path: &Path) -> Result<()> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    // Rows go to a temporary file as they are written (the shared strings stay in
    // memory): this harness stays small, and a child's peak is its own (see run_child).
    let sheet = workbook.add_worksheet_with_low_memory()?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(csv_path)?;
    for (row, record) in reader.records().enumerate() {
        let record = record?;
        for (col, cell) in record.iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(u32::try_from(row)?, u16::try_from(col)?, cell)?;
            }
        }
    }
    workbook.save(xlsx_path)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Child processes

/// `ferry` started in `dir`, with the sandbox's tokens and no config found by accident.
fn ferry(dir: &Path) -> Command {
    let mut cmd = Command::new(FERRY);
    cmd.current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env("ARCTOS_TOKEN", SANDBOX_TOKEN)
        .env("QUANSHI_TOKEN", SANDBOX_TOKEN)
        .stdin(Stdio::null());
    cmd
}

/// A child that ran to its end, with what `wait4` said about it.
struct Finished {
    status: ExitStatus,
    wall: Duration,
    /// User plus system time.
    cpu: Duration,
    max_rss_kib: u64,
    /// The resident set (KiB) at which the child was killed for passing its cap.
    killed_at_kib: Option<u64>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Finished {
    fn expect_exit(&self, codes: &[i32]) -> Result<()> {
        match self.status.code() {
            Some(code) if codes.contains(&code) => Ok(()),
            _ => bail!(
                "ferry ended with {} (expected exit code {codes:?})\nstdout:\n{}\nstderr (end):\n{}",
                self.status,
                indent(&self.stdout_text()),
                indent(&tail(&fs::read_to_string(&self.stderr).unwrap_or_default(), 40))
            ),
        }
    }

    fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
}

/// Runs `cmd` to its end, its output in `dir/NAME.stdout|stderr`, and reaps it with
/// `wait4` to get its own peak RSS and CPU time.
fn run_measured(cmd: &mut Command, dir: &Path, name: &str) -> Result<Finished> {
    run_child(cmd, dir, name, CHILD_TIMEOUT, None)
}

/// [`run_measured`] with its own time limit and, with `rss_cap_kib`, a memory cap: a
/// child whose resident set passes it is killed (SIGKILL) and said to be, so that a
/// bomb that gets through is a measured miss, not a machine out of memory.
fn run_child(
    cmd: &mut Command,
    dir: &Path,
    name: &str,
    timeout: Duration,
    rss_cap_kib: Option<u64>,
) -> Result<Finished> {
    let stdout = dir.join(format!("{name}.stdout"));
    let stderr = dir.join(format!("{name}.stderr"));
    cmd.stdout(File::create(&stdout)?)
        .stderr(File::create(&stderr)?);
    let floor_kib = reset_own_peak();
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {FERRY}"))?;
    let Some(reaped) = wait4(&child, started + timeout, rss_cap_kib)? else {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "ferry {name} did not finish within {} s; killed. stderr (end):\n{}",
            timeout.as_secs(),
            indent(&tail(&fs::read_to_string(&stderr).unwrap_or_default(), 40))
        );
    };
    let wall = started.elapsed();
    // Reaped: `Child` must not wait for it again, and dropping it does not.
    drop(child);
    let usage = reaped.usage;
    let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    let max_rss_kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    if max_rss_kib <= floor_kib {
        println!(
            "  NOTE: ferry {name}'s peak RSS ({:.1} MiB) is not above this harness's own ({:.1} \
             MiB), which a child's ru_maxrss includes: ferry's own peak is at most that",
            max_rss_kib as f64 / 1024.0,
            floor_kib as f64 / 1024.0
        );
    }
    Ok(Finished {
        status: reaped.status,
        wall,
        cpu,
        // Linux reports KiB.
        max_rss_kib,
        killed_at_kib: reaped.killed_at_kib,
        stdout,
        stderr,
    })
}

/// A child that runs longer than this is taken for hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a running child is checked; the most it adds to a wall-clock time.
const REAP_EVERY: Duration = Duration::from_millis(1);

/// How often a capped child's resident set is read: a bomb growing at a few GB/s passes
/// its cap by a few tens of MB at most before it is killed.
const RSS_EVERY: Duration = Duration::from_millis(5);

/// A child reaped by [`wait4`].
struct Reaped {
    status: ExitStatus,
    usage: libc::rusage,
    /// `Some(resident KiB)` if it was killed for passing its cap.
    killed_at_kib: Option<u64>,
}

/// Reaps `child` with its resource usage, or returns `None` (child still running) at
/// `deadline`. With `rss_cap_kib`, kills the child once its resident set passes it.
fn wait4(child: &Child, deadline: Instant, rss_cap_kib: Option<u64>) -> io::Result<Option<Reaped>> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed_at_kib = None;
    let mut rss_read = Instant::now();
    loop {
        // SAFETY: both pointers are to live locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            return Ok(Some(Reaped {
                status: ExitStatus::from_raw(status),
                usage,
                killed_at_kib,
            }));
        }
        if let (Some(cap), None) = (rss_cap_kib, killed_at_kib) {
            if rss_read.elapsed() >= RSS_EVERY {
                rss_read = Instant::now();
                let rss = resident_kib(pid);
                if rss > cap {
                    // SAFETY: signals our own child, which has not been reaped yet.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    killed_at_kib = Some(rss);
                }
            }
        }
        if reaped < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(REAP_EVERY);
    }
}

/// Lowers this process's peak RSS to its current RSS, and returns it (KiB).
///
/// A child's `ru_maxrss` is never below its parent's peak at the time of the spawn: the
/// kernel keeps the larger of the two when the child's `exec` drops the parent's memory
/// (and `Command` spawns with vfork, sharing it until then). Resetting the peak first
/// (`/proc/self/clear_refs`, Linux 4.0+) keeps a harness that once held a lot from
/// raising every later number; what is left is reported by `run_child`.
fn reset_own_peak() -> u64 {
    // Heap this harness freed goes back to the system first, so that it is not counted.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    let _ = fs::write("/proc/self/clear_refs", "5");
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A running child's resident set in KiB, from `/proc/PID/statm` (0 if unreadable).
fn resident_kib(pid: libc::pid_t) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page / 1024)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// `ferry sandbox` on a port the kernel picks; stopped (SIGTERM) when dropped.
struct Sandbox {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// Kept open so that the sandbox never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Sandbox {
    fn start(dir: &Path, flags: &[&str]) -> Result<Sandbox> {
        let mut child = Command::new(FERRY)
            .args(["sandbox", "--addr", "127.0.0.1:0"])
            .args(flags)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.join("sandbox.stderr"))?)
            .spawn()
            .with_context(|| format!("cannot start {FERRY} sandbox"))?;
        let mut stdout = BufReader::new(child.stdout.take().context("sandbox stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // "ferry sandbox listening on http://127.0.0.1:PORT"
        let Some(addr) = line
            .trim()
            .rsplit_once("http://")
            .map(|(_, a)| a.to_owned())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the sandbox did not say where it listens (said {line:?}); stderr:\n{}",
                fs::read_to_string(dir.join("sandbox.stderr")).unwrap_or_default()
            );
        };
        Ok(Sandbox {
            child,
            addr,
            _stdout: stdout,
        })
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stats(&self) -> Result<Value> {
        sandbox_stats(&self.addr)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /_sandbox/stats` over a plain socket (one request per connection).
fn sandbox_stats(addr: &str) -> Result<Value> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /_sandbox/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("stats: no end of headers")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "stats: {}",
        head.lines().next().unwrap_or("")
    );
    serde_json::from_str(body).context("stats: not JSON")
}

// ---------------------------------------------------------------------------------------
// Manifests. A small SplitMix64 instead of `rand`, so that the bytes stay the same across
// crate upgrades and the numbers of two runs compare.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The `index`-th of `10^digits` distinct numbers, in a scrambled order: multiplying by
/// a number coprime to 10 permutes the residues modulo `10^digits`, so distinct indexes
/// never give the same number, and keys stay unique however the rows are mixed.
fn scrambled(index: u64, digits: u32) -> String {
    let modulus = 10u64.pow(digits);
    assert!(index < modulus, "{index} numbers of {digits} digits");
    let n = (index * 7_654_321 + 1_234_567) % modulus;
    format!("{n:0width$}", width = digits as usize)
}

fn write_appointments(path: &Path, rows: u64) -> Result<()> {
    let mut rng = Rng(20_240_222);
    let mut out = csv::Writer::from_path(path)?;
    // Every field, in `Field::ALL` order: the cells below follow it.
    out.write_record(appointments::Field::ALL.iter().map(|f| f.name()))?;
    for i in 0..rows {
        let normal = rng.below(2) == 0;
        let task_time = if normal {
            (1_796_094_000 + i * 60).to_string()
        } else {
            String::new()
        };
        out.write_record([
            "15",
            &format!("BENCH-{i:07}"),
            rng.pick(&["loan", "", "insurance"]),
            rng.pick(&["normal", "custom"]),
            rng.pick(&["false", "true", "", "yes"]),
            &task_time,
            rng.pick(&["", "first visit", "follow-up"]),
            rng.pick(&["943", "085", "120"]),
            rng.pick(&["2", "", "7"]),
            if normal { "normal" } else { "realtime" },
            rng.pick(&["true", "false", "Y"]),
        ])?;
    }
    out.flush()?;
    Ok(())
}

struct Generated {
    bad: u64,
}

const NAMES: &[&str] = &[
    "张伟",
    "王芳",
    "李娜",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄强",
    "周杰",
    "吴霞",
    "Lin Wei",
    "Chan Tai Man",
    "John Smith",
    "Chen Mei",
];
const COMPANIES: &[&str] = &[
    "全时",
    "quanshi.com",
    "",
    "华信科技",
    "Acme Ltd",
    "",
    "中和银行",
];
const CN_MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "176", "177", "180", "181", "182",
    "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
];
/// Rows in a thousand that carry one deliberate mistake.
const BAD_PER_MILLE: u64 = 20;

/// A calls manifest: mostly mainland mobiles, some mainland landlines, some Hong Kong,
/// Taiwan and US mobiles, and about 2% rows that ferry must reject.
fn write_calls(path: &Path, rows: u64) -> Result<Generated> {
    let mut calls = Calls {
        rng: Rng(542_818),
        used: [0; 5],
    };
    let mut out = csv::Writer::from_path(path)?;
    use calls::Field;
    out.write_record(
        [
            Field::EventId,
            Field::Name,
            Field::Company,
            Field::CountryCode,
            Field::Mobile,
            Field::AreaCode,
            Field::Phone,
        ]
        .map(Field::name),
    )?;
    let mut bad = 0;
    for i in 0..rows {
        // A few events, in blocks, as a file merged from several lists would be.
        let event = (542_818 + i / 250_000).to_string();
        let name = calls.rng.pick(NAMES);
        let company = calls.rng.pick(COMPANIES);
        let row = if calls.rng.below(1000) < BAD_PER_MILLE {
            bad += 1;
            calls.bad()
        } else {
            calls.good()
        };
        let name = if row.no_name { "" } else { name };
        out.write_record([
            &event,
            name,
            company,
            row.country_code,
            &row.mobile,
            row.area_code,
            &row.phone,
        ])?;
    }
    out.flush()?;
    Ok(Generated { bad })
}

/// The number columns of one calls row.
#[derive(Default)]
struct CallRow {
    country_code: &'static str,
    mobile: String,
    area_code: &'static str,
    phone: String,
    no_name: bool,
}

impl CallRow {
    fn mobile(country_code: &'static str, mobile: String) -> CallRow {
        CallRow {
            country_code,
            mobile,
            ..CallRow::default()
        }
    }

    fn landline(country_code: &'static str, area_code: &'static str, phone: String) -> CallRow {
        CallRow {
            country_code,
            area_code,
            phone,
            ..CallRow::default()
        }
    }
}

/// Separate number spaces, each drawn through [`scrambled`] from its own counter, so no
/// two rows share a number and every row's key is unique.
#[derive(Clone, Copy)]
enum Space {
    CnMobile,
    CnLandline,
    HongKong,
    Taiwan,
    Us,
}

struct Calls {
    rng: Rng,
    /// Numbers used so far, per [`Space`].
    used: [u64; 5],
}

impl Calls {
    fn digits(&mut self, space: Space, digits: u32) -> String {
        let n = scrambled(self.used[space as usize], digits);
        self.used[space as usize] += 1;
        n
    }

    fn cn_mobile(&mut self) -> String {
        let prefix = self.rng.pick(CN_MOBILE_PREFIXES);
        format!("{prefix}{}", self.digits(Space::CnMobile, 8))
    }

    fn good(&mut self) -> CallRow {
        match self.rng.below(1000 - BAD_PER_MILLE) {
            // Mainland landlines, the area code sometimes with its trunk 0.
            0..=79 => {
                let local = format!(
                    "{}{}",
                    self.rng.pick(&["5", "6"]),
                    self.digits(Space::CnLandline, 7)
                );
                let local = if self.rng.below(4) == 0 {
                    format!("{} {}", &local[..4], &local[4..])
                } else {
                    local
                };
                let area = self.rng.pick(&["10", "21", "29", "010", "021"]);
                CallRow::landline(self.rng.pick(&["86", "+86"]), area, local)
            }
            // Hong Kong: 61, 63, 64, 65 and 69 are wholly mobile ranges.
            80..=109 => {
                let second = self.rng.pick(&["1", "3", "4", "5", "9"]);
                let m = format!("6{second}{}", self.digits(Space::HongKong, 6));
                CallRow::mobile(self.rng.pick(&["852", "(852)"]), m)
            }
            // Taiwan, written with the trunk 0 (099 is a personal-number range).
            110..=129 => {
                let m = format!(
                    "09{}{}",
                    1 + self.rng.below(8),
                    self.digits(Space::Taiwan, 7)
                );
                CallRow::mobile(self.rng.pick(&["886", "+886"]), m)
            }
            130..=149 => {
                let area = self.rng.pick(&["212", "415", "646", "312"]);
                let exchange = 2 + self.rng.below(8);
                let m = format!("{area}{exchange}{}", self.digits(Space::Us, 6));
                CallRow::mobile("1", m)
            }
            _ => {
                let m = self.cn_mobile();
                let m = match self.rng.below(20) {
                    0 => format!("{} {} {}", &m[..3], &m[3..7], &m[7..]),
                    1 => format!("{}-{}-{}", &m[..3], &m[3..7], &m[7..]),
                    _ => m,
                };
                CallRow::mobile(self.rng.pick(&["86", "86", "86", "+86", "0086"]), m)
            }
        }
    }

    /// A row with one mistake that ferry must catch.
    fn bad(&mut self) -> CallRow {
        let m = self.cn_mobile();
        match self.rng.below(8) {
            0 => CallRow::mobile("86", m[..5].to_owned()),
            1 => CallRow::mobile("86", format!("{}O{}", &m[..3], &m[4..])),
            2 => CallRow::mobile("86", format!("8.6{}E+12", &m[..10])),
            3 => CallRow {
                phone: format!("6{}", self.digits(Space::CnLandline, 7)),
                area_code: "10",
                ..CallRow::mobile("86", m)
            },
            4 => CallRow::mobile("86", String::new()),
            5 => CallRow::mobile("999", m),
            6 => CallRow::landline("86", "", m),
            _ => CallRow {
                no_name: true,
                ..CallRow::mobile("86", m)
            },
        }
    }
}

fn write_config(dir: &Path, text: &str) -> Result<PathBuf> {
    let path = dir.join("ferry.toml");
    fs::write(&path, text)?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------
// Small helpers

fn tempdir() -> Result<tempfile::TempDir> {
    let keep = KEEP.load(Ordering::Relaxed);
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-")
        .disable_cleanup(keep)
        .tempdir()
        .context("cannot create a temporary directory")?;
    if keep {
        println!("  kept: {}", dir.path().display());
    }
    Ok(dir)
}

fn read_summary(report_dir: &Path) -> Result<Value> {
    let path = report_dir.join("summary.json");
    let text = fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
