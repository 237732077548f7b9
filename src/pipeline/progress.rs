//! What the user watches while a run sends: live counters, a progress bar on a
//! terminal, a log line every ten seconds otherwise (cron).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stop::Stop;

/// Live counters for progress and the failure limit.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub succeeded: AtomicU64,
}

impl Progress {
    /// Counts failed rows (of any stage) and stops the run once more than
    /// `--max-failed-rows` have failed.
    pub fn add_failed(&self, n: u64, stop: &Stop, max: Option<u64>) {
        let failed = self.failed.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(max) = max.filter(|max| failed > *max) {
            stop.abort(format!(
                "{failed} rows failed, more than --max-failed-rows {max}"
            ));
        }
    }
}

/// A progress bar on a terminal; a log line every ten seconds otherwise (cron).
pub async fn report_progress(progress: Arc<Progress>, total: u64, stop: Arc<Stop>) {
    use std::io::IsTerminal;
    let started = Instant::now();
    // Rows are counted failed when they fail and done when reported: a moment apart,
    // so what is shown never has more failures than rows done.
    let now = || {
        let done = progress.done.load(Ordering::Relaxed);
        let failed = progress.failed.load(Ordering::Relaxed).min(done);
        let per_sec = (done as f64 / started.elapsed().as_secs_f64().max(0.001)).round() as u64;
        (done, failed, per_sec)
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        loop {
            let (done, failed, per_sec) = now();
            bar.set_position(done);
            let left = total.saturating_sub(done);
            let eta = match per_sec {
                0 => "?".to_string(),
                r => format!("{}s", left / r),
            };
            bar.set_message(if stop.stopped() {
                "stopping…".to_string()
            } else {
                format!("{per_sec}/s  ETA {eta}  {failed} failed")
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let (done, failed, rows_per_sec) = now();
            tracing::info!(done, total, failed, rows_per_sec, "progress");
        }
    }
}
