//! Sending: every request of a run goes through here, under the target's rate limit
//! and concurrency, with retries, backoff and re-login. A retry takes a rate-limit
//! permit like a first attempt, and a 429 pauses the whole target.
//!
//! The one rule that keeps rows from being created twice: a create whose request may
//! have reached the vendor (a timeout, a reset after sending, an unreadable answer) is
//! never repeated here; it is reported `unknown`. Only a connection that was never
//! made is retried, and task-status updates, which are idempotent.
//!
//! Everything a vendor says passes through here, so this is where its words are
//! scrubbed of every credential the run has held (`scrub`), and where an answer is read
//! within bounds: at most [`MAX_ANSWER_BYTES`], and done within the target's timeout.
//!
//! The parts: `step` is the retry policy, a small state machine (`Done | Retry(after) |
//! Relogin | Abort`) that the loop here follows; `http` is one attempt on the wire;
//! `auth` loads the credentials and carries out the arctos login; `retry` the backoff.

mod auth;
mod http;
pub mod retry;
mod step;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Mutex as AsyncMutex;

use crate::batch::Batch;
use crate::config::{ConfigError, Secret, Target};
use crate::kinds::Kind;
use crate::outcome::{Outcome, Trail};
use crate::problem::{Code, Problem};
use crate::scrub::Scrubber;
use crate::targets::{self, Credentials, Request, Verdict};
pub use crate::targets::{AuthRefused, EndpointMissing};
pub use retry::Backoff;
use step::{Course, Step};

/// The most of an answer ferry reads. The vendors' answers are a few kilobytes (a
/// Quanshi answer for a batch of 10,000 calls about 2 MB); a longer one is not an
/// answer ferry can use, and reading it would let a broken server fill the memory.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Why a run stops sending altogether (exit 3).
#[derive(Clone, Debug, thiserror::Error)]
pub enum Abort {
    #[error("{0}")]
    AuthRefused(AuthRefused),
    #[error("{0}")]
    EndpointMissing(EndpointMissing),
    /// A secret could not be loaded: a config error, found before anything is sent.
    #[error("{0}")]
    Config(ConfigError),
}

/// Compared by what they say: a config error's causes (an io error) have no equality.
impl PartialEq for Abort {
    fn eq(&self, other: &Abort) -> bool {
        match (self, other) {
            (Abort::AuthRefused(a), Abort::AuthRefused(b)) => a == b,
            (Abort::EndpointMissing(a), Abort::EndpointMissing(b)) => a == b,
            (Abort::Config(a), Abort::Config(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Abort {
    /// What happened, for people.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// Why the run stops, for the summary and `unprocessed.csv`.
    pub fn reason(&self) -> String {
        match self {
            Abort::AuthRefused(refused) => format!("authentication refused: {refused}"),
            Abort::EndpointMissing(_) | Abort::Config(_) => self.to_string(),
        }
    }

    fn scrubbed(self, scrubber: &Scrubber) -> Abort {
        match self {
            Abort::AuthRefused(r) => Abort::AuthRefused(AuthRefused {
                message: scrubber.scrub(&r.message),
                ..r
            }),
            Abort::EndpointMissing(m) => Abort::EndpointMissing(EndpointMissing {
                message: scrubber.scrub(&m.message),
                ..m
            }),
            // ferry's own words, naming a config key and never a secret's value.
            Abort::Config(e) => Abort::Config(e),
        }
    }
}

/// What became of a batch.
#[derive(Debug)]
pub enum Sent {
    /// One outcome per batch row, in order.
    Done {
        outcomes: Vec<Outcome>,
        trail: Trail,
    },
    /// The batch was not carried out, and nothing more should be sent.
    Aborted { abort: Abort, trail: Trail },
    /// The run stopped (an interrupt, an abort) while this batch waited for its turn or
    /// for a retry: it was not carried out.
    Halted { trail: Trail },
}

/// Counters for the summary, and what the run watches while it sends.
#[derive(Default, Debug)]
pub struct Counters {
    /// Attempts that reached a server (an answer, or a connection that was made).
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    /// Attempts in a row that got no answer at all (refused, reset, timed out), reset
    /// by any answer: a dead or silent endpoint is an abort, not a failure per row.
    pub unanswered_in_a_row: AtomicU64,
    /// How long the vendor takes to answer: a moving average, in microseconds (0 until
    /// the first answer), for sizing the concurrency.
    latency_micros: AtomicU64,
}

impl Counters {
    /// The vendor's typical answer time so far.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    fn answered(&self, took: Duration) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.unanswered_in_a_row.store(0, Ordering::Relaxed);
        let sample = took.as_micros().clamp(1, u128::from(u32::MAX)) as u64;
        // Racing updates may lose a sample; an estimate does not mind.
        let old = self.latency_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 4 + sample) / 5
        };
        self.latency_micros.store(new.max(1), Ordering::Relaxed);
    }
}

pub struct Sender {
    client: reqwest::Client,
    target: Target,
    idempotent: bool,
    limiter: DefaultDirectRateLimiter,
    /// Set by a 429: nobody sends to the target before this instant.
    paused_until: Mutex<Option<Instant>>,
    credentials: AsyncMutex<Option<(u64, Credentials)>>,
    /// Every secret this run has held (loaded, or issued by a login), in every form.
    scrubber: RwLock<Scrubber>,
    backoff: Backoff,
    pub counters: Counters,
    /// Set when the run stops: no attempt starts after it, whatever was waiting.
    halted: std::sync::Arc<Halt>,
}

/// The run's stop as the sender sees it: a flag, and a wake-up for whatever waits (a
/// `Retry-After` of up to 120 s, a slow rate's next permit), so that an interrupted run
/// ends at once rather than when the wait is over.
#[derive(Default)]
pub struct Halt {
    set: AtomicBool,
    woken: tokio::sync::Notify,
}

impl Halt {
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.woken.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Waits for `wait`, or until the halt is set, whichever comes first.
    async fn or_until_set(&self, wait: impl std::future::Future<Output = ()>) {
        let woken = self.woken.notified();
        tokio::pin!(woken);
        // Registered before the flag is read: a `set` in between still wakes it.
        woken.as_mut().enable();
        if self.is_set() {
            return;
        }
        tokio::select! {
            () = wait => {}
            () = woken => {}
        }
    }
}

/// The longest server request id kept whole; real ones are UUIDs or shorter.
const SERVER_ID_CHARS: usize = 128;

impl Sender {
    pub fn new(target: Target, kind: Kind, backoff: Backoff) -> Result<Sender, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(target.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(target.concurrency.unwrap_or(64))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry X-APP-Key or a body token to a host the config never
            // named, and turn a POST into a GET: a 3xx is reported, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(std::sync::Arc::new(e)))?;
        let period = Duration::from_secs_f64(1.0 / target.rate);
        let burst = NonZeroU32::new(target.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .ok_or(ConfigError::RateTooHigh)?
            .allow_burst(burst);
        Ok(Sender {
            client,
            idempotent: kind == Kind::TaskStatus,
            limiter: RateLimiter::direct(quota),
            paused_until: Mutex::new(None),
            credentials: AsyncMutex::new(None),
            scrubber: RwLock::new(Scrubber::new()),
            target,
            backoff,
            counters: Counters::default(),
            halted: Default::default(),
        })
    }

    /// Shares the run's stop flag: once it is set, no new attempt leaves.
    pub fn halt_on(mut self, flag: std::sync::Arc<Halt>) -> Sender {
        self.halted = flag;
        self
    }

    /// The target's host and port, for messages: never the whole URL, whose user part
    /// could hold a password.
    pub fn host(&self) -> String {
        let url = &self.target.base_url;
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => "the target".to_string(),
        }
    }

    /// Loads the credentials (and logs in, for arctos with a license key) before the
    /// first row is sent, so a bad secret stops the run at once.
    pub async fn authenticate(&self) -> Result<(), Abort> {
        let loaded = self.credentials(None).await.map(|_| ());
        loaded.map_err(|abort| abort.scrubbed(&self.scrubber()))
    }

    /// Sends one batch to its final outcome.
    pub async fn send(&self, batch: &Batch) -> Sent {
        self.send_noting(batch, &AtomicBool::new(false)).await
    }

    /// Sends one batch to its final outcome, and sets `left` before its first request
    /// leaves: until then, stopping it at once sends nothing.
    pub async fn send_noting(&self, batch: &Batch, left: &AtomicBool) -> Sent {
        let sent = self.send_to_the_end(batch, left).await;
        // A vendor may quote a secret back ("token X is invalid"): no secret may reach
        // a report or a log through its messages.
        let scrubber = self.scrubber();
        match sent {
            Sent::Done {
                mut outcomes,
                trail,
            } => {
                for outcome in &mut outcomes {
                    // A remote id is the vendor's text too, but also data that later
                    // rows send back (a task_num): masked, it would name the wrong
                    // record. One that holds a secret is not kept at all.
                    if let Outcome::Succeeded {
                        remote_id,
                        warnings,
                    } = outcome
                    {
                        if remote_id
                            .as_deref()
                            .is_some_and(|id| scrubber.holds_secret(id))
                        {
                            *remote_id = None;
                            warnings.push(Problem::new(
                                Code::VendorWarning,
                                "",
                                "the vendor's id for this record holds a credential of this run, so ferry did not record it: find the record at the vendor by its key",
                            ));
                        }
                    }
                    match outcome {
                        Outcome::Succeeded { warnings: list, .. }
                        | Outcome::Failed { problems: list, .. } => {
                            for p in list {
                                p.message = scrubber.scrub(&p.message);
                            }
                        }
                        Outcome::Skipped { problem } | Outcome::Unprocessed { problem } => {
                            problem.message = scrubber.scrub(&problem.message);
                        }
                    }
                }
                Sent::Done { outcomes, trail }
            }
            Sent::Halted { trail } => Sent::Halted { trail },
            Sent::Aborted { abort, trail } => Sent::Aborted {
                abort: abort.scrubbed(&scrubber),
                trail,
            },
        }
    }

    /// `text` with every secret of the run hidden: for anything built from a vendor's
    /// answer that leaves the sender some other way.
    pub fn scrub(&self, text: &str) -> String {
        self.scrubber().scrub(text)
    }

    /// A request id the server gave, scrubbed, then cut to `SERVER_ID_CHARS`: it is copied
    /// into every row of the batch, for every attempt, so an id of megabytes from a
    /// broken or hostile server would multiply into gigabytes of memory and reports.
    fn note_server_request_id(&self, trail: &mut Trail, id: &str) {
        let id = self.scrub(id);
        let mut chars = id.chars();
        let mut kept: String = chars.by_ref().take(SERVER_ID_CHARS).collect();
        if chars.next().is_some() {
            kept.push('…');
        }
        trail.server_request_ids.push(kept);
    }

    fn scrubber(&self) -> std::sync::RwLockReadGuard<'_, Scrubber> {
        self.scrubber.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a secret for scrubbing, before it is first sent or used.
    fn learn(&self, secret: &Secret) {
        self.scrubber
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(secret);
    }

    /// Follows one batch from attempt to attempt until a step ends it.
    async fn send_to_the_end(&self, batch: &Batch, left: &AtomicBool) -> Sent {
        let mut trail = Trail::default();
        let mut course = Course::new(self.target.max_retries, self.idempotent, self.can_log_in());
        loop {
            let (generation, creds) = match self.credentials(None).await {
                Ok(c) => c,
                Err(abort) => return Sent::Aborted { abort, trail },
            };
            let request = targets::build(&self.target, &creds, batch);
            // The wait for a turn (rate limit, a 429 pause) can be long: a run stopped
            // meanwhile sends nothing more. A retry only follows an attempt that was not
            // carried out, so a halted batch is not carried out.
            self.wait_turn().await;
            if self.halted.is_set() {
                return Sent::Halted { trail };
            }
            left.store(true, Ordering::SeqCst);
            let verdict = self.attempt(batch, &request, &mut trail).await;
            if let Verdict::Retry {
                status: Some(429),
                after,
                ..
            } = &verdict
            {
                self.throttle(*after, course.retries() + 1);
            }
            match course.next(batch, verdict) {
                Step::Done(outcomes) => return Sent::Done { outcomes, trail },
                Step::Retry(after) => self.wait_retry(course.retries(), after).await,
                Step::Relogin => {
                    if let Err(abort) = self.credentials(Some(generation)).await {
                        return Sent::Aborted { abort, trail };
                    }
                }
                Step::Abort(abort) => return Sent::Aborted { abort, trail },
            }
        }
    }

    /// One attempt, read into a verdict; the vendor's own request id joins the trail.
    async fn attempt(&self, batch: &Batch, request: &Request, trail: &mut Trail) -> Verdict {
        let answer = match self.post(request, trail).await {
            Ok(answer) => answer,
            Err(failure) => return failure.verdict(batch, self.idempotent),
        };
        if let Some(id) = targets::server_request_id(self.target.vendor, &answer.body) {
            self.note_server_request_id(trail, &id);
        }
        let scrubber = self.scrubber();
        targets::classify(batch, &answer.response(&scrubber))
    }

    /// A 429: the whole target pauses, for the server's `Retry-After` or else for the
    /// backoff of the retry to come.
    fn throttle(&self, after: Option<Duration>, retry: u32) {
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        self.pause(after.unwrap_or_else(|| self.backoff.delay(retry, None)));
    }

    /// Waits before retry number `retry`.
    async fn wait_retry(&self, retry: u32, after: Option<Duration>) {
        let wait = self.backoff.delay(retry, after);
        tracing::debug!(retry, wait_ms = wait.as_millis() as u64, "retrying");
        self.halted.or_until_set(tokio::time::sleep(wait)).await;
        // Counted once it may leave: a run stopped meanwhile sends no retry.
        if !self.halted.is_set() {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// Waits out a 429 pause, then for a rate-limit permit.
    async fn wait_turn(&self) {
        let turn = async {
            loop {
                let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
                match until {
                    Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                    _ => break,
                }
            }
            self.limiter.until_ready().await;
        };
        self.halted.or_until_set(turn).await;
    }
}
