//! Why and how a run stops early: an abort (exit 3), or SIGINT/SIGTERM (exit 130).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::exit::Exit;
use crate::outcome::Outcome;
use crate::problem::{Code, Problem};
use crate::send::Halt;

/// Why the run stopped early, if it did.
#[derive(Default)]
pub struct Stop {
    pub aborted: AtomicBool,
    pub interrupted: AtomicBool,
    reason: std::sync::Mutex<Option<String>>,
    /// Shared with the sender: once set, no new attempt leaves.
    pub halt: Arc<Halt>,
    /// A second interrupt: the workers are stopped where they are.
    pub hurried: AtomicBool,
}

impl Stop {
    pub fn abort(&self, reason: String) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.aborted.store(true, Ordering::SeqCst);
        self.halt.set();
    }

    /// `abort`, with `reason` added to an earlier one rather than dropped.
    pub fn abort_also(&self, reason: String) {
        {
            let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(earlier) = r.as_mut() {
                earlier.push_str("; then ");
                earlier.push_str(&reason);
            }
        }
        self.abort(reason);
    }

    pub fn interrupt(&self) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some("interrupted (SIGINT/SIGTERM)".into());
        }
        self.interrupted.store(true, Ordering::SeqCst);
        self.halt.set();
    }

    pub fn stopped(&self) -> bool {
        self.aborted.load(Ordering::SeqCst) || self.interrupted.load(Ordering::SeqCst)
    }

    /// How the run ends, given the rows that failed.
    pub fn exit(&self, failed_rows: u64) -> Exit {
        if self.interrupted.load(Ordering::SeqCst) {
            Exit::Interrupted
        } else if self.aborted.load(Ordering::SeqCst) {
            Exit::Aborted
        } else {
            Exit::finished(failed_rows)
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn unprocessed(&self) -> Outcome {
        self.not_carried_out("not attempted")
    }

    /// A row whose request left but was refused (a 401, a 404 for the endpoint) or not
    /// answered before the stop, and so was not carried out: "not attempted" would
    /// contradict its request ids and attempts.
    pub fn refused(&self) -> Outcome {
        self.not_carried_out("sent, but not carried out")
    }

    fn not_carried_out(&self, what: &str) -> Outcome {
        let why = self.reason().unwrap_or_else(|| "the run stopped".into());
        Outcome::Unprocessed {
            problem: Problem::new(
                Code::NotAttempted,
                "",
                format!("{what}: {why}; fix the cause and run again (done rows are skipped)"),
            ),
        }
    }
}

/// SIGINT/SIGTERM at any stage. Before anything can be sent there is nothing to finish:
/// exit 130 at once. While sending, the first signal lets requests in flight finish and
/// the reports be written; a second stops at once (safe: every row sent is marked in
/// flight in the state, so the next run reports it unknown instead of sending it again).
pub async fn watch_signals(stop: Arc<Stop>, sending: Arc<AtomicBool>, hurry: oneshot::Sender<()>) {
    shutdown_signal().await;
    if !sending.load(Ordering::SeqCst) {
        tracing::warn!("interrupted before anything was sent");
        std::process::exit(Exit::Interrupted.code());
    }
    tracing::warn!("interrupted: finishing requests in flight, then writing the reports (interrupt again to stop at once)");
    stop.interrupt();
    shutdown_signal().await;
    tracing::warn!("stopping at once: requests in flight are reported in doubt (interrupt a third time to exit without reports)");
    stop.hurried.store(true, Ordering::SeqCst);
    let _ = hurry.send(());
    shutdown_signal().await;
    std::process::exit(Exit::Interrupted.code());
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_reason_is_added_to_an_earlier_one_only_when_asked() {
        let stop = Stop::default();
        stop.abort("first".into());
        stop.abort("dropped".into());
        stop.abort_also("why the reports end".into());
        assert_eq!(
            stop.reason().as_deref(),
            Some("first; then why the reports end")
        );
        assert_eq!(stop.exit(0), Exit::Aborted);

        let stop = Stop::default();
        stop.abort_also("alone".into());
        assert_eq!(stop.reason().as_deref(), Some("alone"));
        assert!(stop.halt.is_set());
    }
}
