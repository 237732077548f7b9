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

pub mod retry;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Mutex as AsyncMutex;

use crate::batch::Batch;
use crate::config::{ArctosAuth, Auth, ConfigError, Secret, Target};
use crate::kinds::Kind;
use crate::outcome::{Outcome, Stage, Trail};
use crate::problem::{Code, Problem};
use crate::scrub::Scrubber;
use crate::targets::{self, arctos, Credentials, Request, Response, RowResult, Verdict};
pub use retry::Backoff;

/// The most of an answer ferry reads. The vendors' answers are a few kilobytes (a
/// Quanshi answer for a batch of 10,000 calls about 2 MB); a longer one is not an
/// answer ferry can use, and reading it would let a broken server fill the memory.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Why a run stops sending altogether (exit 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abort {
    AuthRefused(String),
    EndpointMissing(String),
    /// A secret could not be loaded: a config error, found before anything is sent.
    Config(String),
}

impl Abort {
    pub fn message(&self) -> &str {
        match self {
            Abort::AuthRefused(m) | Abort::EndpointMissing(m) | Abort::Config(m) => m,
        }
    }

    /// Why the run stops, for the summary and `unprocessed.csv`.
    pub fn reason(&self) -> String {
        match self {
            Abort::AuthRefused(m) => format!("authentication refused: {m}"),
            Abort::EndpointMissing(m) | Abort::Config(m) => m.clone(),
        }
    }

    fn scrubbed(self, scrubber: &Scrubber) -> Abort {
        match self {
            Abort::AuthRefused(m) => Abort::AuthRefused(scrubber.scrub(&m)),
            Abort::EndpointMissing(m) => Abort::EndpointMissing(scrubber.scrub(&m)),
            Abort::Config(m) => Abort::Config(scrubber.scrub(&m)),
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
    halted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// An HTTP answer, read within bounds.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    /// For a 3xx: where it points (see `targets::redirect`).
    location: Option<String>,
    body: Vec<u8>,
}

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
    pub fn halt_on(mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Sender {
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
        let sent = self.send_to_the_end(batch).await;
        // A vendor may quote a secret back ("token X is invalid"): no secret may reach
        // a report or a log through its messages.
        let scrubber = self.scrubber();
        match sent {
            Sent::Done {
                mut outcomes,
                trail,
            } => {
                for outcome in &mut outcomes {
                    // A remote id is the vendor's text too.
                    if let Outcome::Succeeded {
                        remote_id: Some(id),
                        ..
                    } = outcome
                    {
                        *id = scrubber.scrub(id);
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

    async fn send_to_the_end(&self, batch: &Batch) -> Sent {
        let mut trail = Trail::default();
        let mut retries = 0u32;
        let mut relogged = false;
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
            if self.halted.load(Ordering::SeqCst) {
                return Sent::Halted { trail };
            }
            let answer = self.post(&request, &mut trail).await;
            let verdict = match answer {
                Ok(answer) => {
                    if let Some(id) = (self.target.vendor == crate::kinds::Vendor::Quanshi)
                        .then(|| targets::quanshi::server_request_id(&answer.body))
                        .flatten()
                    {
                        trail.server_request_ids.push(self.scrub(&id));
                    }
                    let scrubber = self.scrubber();
                    let response = answer.response(&scrubber);
                    targets::classify(self.target.vendor, batch, &response)
                }
                Err(failure) => failure.verdict(batch, self.idempotent),
            };
            let retry_after = match verdict {
                Verdict::Rows(results) => {
                    let unknown = results
                        .iter()
                        .any(|r| matches!(r, RowResult::Unknown { .. }));
                    if unknown && self.idempotent && retries < self.target.max_retries {
                        None
                    } else {
                        return Sent::Done {
                            outcomes: batch
                                .rows
                                .iter()
                                .zip(results)
                                .map(|(row, r)| to_outcome(r, &row.warnings))
                                .collect(),
                            trail,
                        };
                    }
                }
                Verdict::Retry {
                    status,
                    after,
                    message,
                } => {
                    if status == 429 {
                        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                        self.pause(after.unwrap_or(self.backoff.delay(retries + 1, None)));
                    }
                    if retries >= self.target.max_retries {
                        let stage = if status == 0 {
                            Stage::Transport
                        } else {
                            Stage::Remote
                        };
                        let code = if status == 0 {
                            Code::Transport
                        } else {
                            Code::HttpError
                        };
                        let outcome = Outcome::Failed {
                            stage,
                            problems: vec![Problem::new(
                                code,
                                "",
                                format!("gave up after {} attempts: {message}; rerun later to try again", retries + 1),
                            )],
                            http_status: (status != 0).then_some(status),
                        };
                        return Sent::Done {
                            outcomes: batch.rows.iter().map(|_| outcome.clone()).collect(),
                            trail,
                        };
                    }
                    after
                }
                Verdict::AuthRefused { message, .. } => {
                    if !relogged && self.can_log_in() {
                        relogged = true;
                        if let Err(abort) = self.credentials(Some(generation)).await {
                            return Sent::Aborted { abort, trail };
                        }
                        continue;
                    }
                    return Sent::Aborted {
                        abort: Abort::AuthRefused(message),
                        trail,
                    };
                }
                Verdict::EndpointMissing { message, .. } => {
                    return Sent::Aborted {
                        abort: Abort::EndpointMissing(message),
                        trail,
                    }
                }
            };
            retries += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            let wait = self.backoff.delay(retries, retry_after);
            tracing::debug!(
                retry = retries,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
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
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    /// One HTTP attempt with a fresh `X-Request-Id`, its answer read within bounds. The
    /// caller has waited for its turn.
    async fn post(&self, request: &Request, trail: &mut Trail) -> Result<Answer, Failure> {
        let request_id = uuid::Uuid::new_v4().to_string();
        trail.request_ids.push(request_id.clone());
        let url = join_url(&self.target.base_url, &request.path);
        let mut builder = self
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-Request-Id", &request_id)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.expose());
        }
        let asked = Instant::now();
        // The whole attempt, body included, within the timeout: a server that drips an
        // answer a byte at a time does not hold a row (or the run) for ever.
        let deadline = tokio::time::Instant::now() + self.target.timeout;
        let response = builder.send().await.map_err(|e| {
            let failure = Failure::from_reqwest(e);
            self.counters
                .unanswered_in_a_row
                .fetch_add(1, Ordering::Relaxed);
            if !failure.not_sent {
                // Connected: the vendor may have seen it.
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(request_id, path = %request.path, error = %self.scrub(&failure.message), "no answer");
            failure
        })?;
        self.counters.answered(asked.elapsed());
        let status = response.status().as_u16();
        // Never the body or headers: they carry tokens.
        tracing::debug!(request_id, path = %request.path, status, "answer");
        let headers = response.headers();
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
            if id != request_id {
                trail.server_request_ids.push(self.scrub(id));
            }
        }
        let location = (300..400).contains(&status).then(|| {
            let asked_at =
                reqwest::Url::parse(&url).unwrap_or_else(|_| self.target.base_url.clone());
            let header = headers.get("location").and_then(|v| v.to_str().ok());
            targets::redirect(&asked_at, header)
        });
        let body = read_body(response, deadline, self.target.timeout).await.inspect_err(|failure| {
            tracing::debug!(request_id, path = %request.path, status, error = %self.scrub(&failure.message), "answer not read");
        })?;
        Ok(Answer {
            status,
            retry_after,
            location,
            body,
        })
    }

    fn can_log_in(&self) -> bool {
        matches!(self.target.auth, Auth::Arctos(ArctosAuth::Login { .. }))
    }

    /// The current credentials; with `stale = Some(generation)`, replaced by a new
    /// login unless another request already did that.
    async fn credentials(&self, stale: Option<u64>) -> Result<(u64, Credentials), Abort> {
        let mut slot = self.credentials.lock().await;
        if let Some((generation, creds)) = slot.as_ref() {
            if stale != Some(*generation) {
                return Ok((*generation, creds.clone()));
            }
        }
        let generation = slot.as_ref().map_or(0, |(g, _)| g + 1);
        let creds = self.load_credentials().await?;
        *slot = Some((generation, creds.clone()));
        Ok((generation, creds))
    }

    async fn load_credentials(&self) -> Result<Credentials, Abort> {
        let load = |source: &crate::config::SecretSource, key: &str| {
            let secret = source
                .load(&format!("targets.{}.{key}", self.target.name))
                .map_err(|e| Abort::Config(e.to_string()))?;
            self.learn(&secret);
            Ok(secret)
        };
        Ok(match &self.target.auth {
            Auth::Arctos(ArctosAuth::Token(t)) => Credentials {
                bearer: Some(load(t, "token")?),
                ..Credentials::default()
            },
            Auth::Arctos(ArctosAuth::Login {
                license_key,
                user_id,
                client_id,
            }) => {
                let key = load(license_key, "license_key")?;
                let token = self.log_in(&key, user_id, client_id).await?;
                Credentials {
                    bearer: Some(token),
                    ..Credentials::default()
                }
            }
            Auth::Quanshi { token } => Credentials {
                body_token: Some(load(token, "token")?),
                ..Credentials::default()
            },
            Auth::Aicc { app_key, token } => Credentials {
                app_key: Some(load(app_key, "app_key")?),
                bearer: token.as_ref().map(|t| load(t, "token")).transpose()?,
                ..Credentials::default()
            },
        })
    }

    /// arctos: license key → authorization code → access token. The code expires in
    /// ten minutes, so it is exchanged at once.
    async fn log_in(
        &self,
        license_key: &Secret,
        user_id: &str,
        client_id: &str,
    ) -> Result<Secret, Abort> {
        let request = arctos::code_request(&self.target, license_key, user_id);
        let code = self.login_step("auth code", &request, "code").await?;
        let request = arctos::login_request(&self.target, client_id, &code);
        self.login_step("login", &request, "access_token").await
    }

    /// One login request, retried like any other on 429/502/503/504 and lost
    /// connections; any other refusal stops the run.
    async fn login_step(
        &self,
        what: &str,
        request: &Request,
        field: &str,
    ) -> Result<Secret, Abort> {
        let mut retries = 0;
        loop {
            // A login request takes a rate-limit permit like any other.
            self.wait_turn().await;
            let answer = self.post(request, &mut Trail::default()).await;
            let retry_after = match &answer {
                Ok(a) if matches!(a.status, 429 | 502 | 503 | 504) => Some(a.retry_after),
                Err(_) => Some(None),
                Ok(_) => None,
            };
            if let Some(after) = retry_after.filter(|_| retries < self.target.max_retries) {
                retries += 1;
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff.delay(retries, after)).await;
                continue;
            }
            let refused =
                |e: String| Abort::AuthRefused(format!("arctos login ({what}) refused: {e}"));
            let answer = answer.map_err(|f| refused(f.message))?;
            if let Some(location) = &answer.location {
                return Err(Abort::EndpointMissing(format!(
                    "arctos login ({what}): HTTP {} redirect {location}; ferry does not follow redirects, fix base_url in ferry.toml",
                    answer.status
                )));
            }
            let scrubber = self.scrubber();
            let issued = arctos::login_answer(&answer.response(&scrubber), field);
            drop(scrubber);
            // The code and the token are secrets from the moment they exist.
            if let Ok(secret) = &issued {
                self.learn(secret);
            }
            return issued.map_err(refused);
        }
    }
}

impl Answer {
    fn response<'a>(&'a self, scrubber: &'a Scrubber) -> Response<'a> {
        Response {
            status: self.status,
            body: &self.body,
            retry_after: self.retry_after,
            location: self.location.clone(),
            scrubber,
        }
    }
}

/// Reads an answer's body up to [`MAX_ANSWER_BYTES`], chunk by chunk, until `deadline`.
/// A longer or slower answer is a failure after the request reached the vendor: unknown
/// for a create, retried for an idempotent update. Never more than the cap is held.
async fn read_body(
    mut response: reqwest::Response,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let status = response.status().as_u16();
    let cut = |why: String| Failure {
        not_sent: false,
        status: Some(status),
        message: format!("HTTP {status} {why}"),
    };
    let too_long = || {
        cut(format!(
            "with an answer longer than {} MiB, the most ferry reads; ferry stopped reading it",
            MAX_ANSWER_BYTES / (1024 * 1024)
        ))
    };
    let announced = response.content_length().unwrap_or(0);
    if announced > MAX_ANSWER_BYTES as u64 {
        return Err(too_long());
    }
    let mut body = Vec::with_capacity(announced as usize);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                return Err(cut(format!(
                    "with an answer still arriving when the timeout ran out ({:.1} s after the request; timeout_secs)",
                    timeout.as_secs_f64()
                )))
            }
            Ok(Err(e)) => {
                let mut failure = Failure::from_reqwest(e);
                failure.status = Some(status);
                failure.message = format!("HTTP {status} with an answer cut short: {}", failure.message);
                return Err(failure);
            }
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
}

/// `base_url` + endpoint path, keeping any path prefix of the base.
fn join_url(base: &reqwest::Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

/// A request that got no answer ferry could read.
struct Failure {
    /// The connection was never made: the vendor cannot have seen the request.
    not_sent: bool,
    /// The answer's status, when one came but its body could not be read.
    status: Option<u16>,
    message: String,
}

impl Failure {
    fn from_reqwest(e: reqwest::Error) -> Failure {
        let not_sent = e.is_connect() || e.is_builder();
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "connection failed"
        };
        // reqwest's messages carry the URL, never headers or bodies.
        let mut message = format!("{what}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        Failure {
            not_sent,
            status: None,
            message,
        }
    }

    fn verdict(self, batch: &Batch, idempotent: bool) -> Verdict {
        if self.not_sent || idempotent {
            return Verdict::Retry {
                status: 0,
                after: None,
                message: self.message,
            };
        }
        targets::unknown(batch, &self.message, self.status)
    }
}

fn to_outcome(result: RowResult, row_warnings: &[Problem]) -> Outcome {
    match result {
        RowResult::Succeeded { remote_id, warning } => Outcome::Succeeded {
            remote_id,
            warnings: row_warnings.iter().cloned().chain(warning).collect(),
        },
        RowResult::Failed {
            problem,
            http_status,
        } => Outcome::Failed {
            stage: Stage::Remote,
            problems: vec![problem],
            http_status,
        },
        RowResult::Unknown {
            problem,
            http_status,
        } => Outcome::Failed {
            stage: Stage::Unknown,
            problems: vec![problem],
            http_status,
        },
    }
}
