//! One attempt on the wire: a POST with a fresh `X-Request-Id`, and its answer read
//! within bounds (at most [`MAX_ANSWER_BYTES`], and done within the target's timeout),
//! or the failure that kept it from being read.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{retry, Sender, MAX_ANSWER_BYTES};
use crate::batch::Batch;
use crate::outcome::Trail;
use crate::scrub::Scrubber;
use crate::targets::{self, Request, Response, Verdict};

/// An HTTP answer, read within bounds.
pub(super) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// For a 3xx: where it points (see `targets::redirect`).
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Sender {
    /// One HTTP attempt with a fresh `X-Request-Id`, its answer read within bounds. The
    /// caller has waited for its turn.
    pub(super) async fn post(
        &self,
        request: &Request,
        trail: &mut Trail,
    ) -> Result<Answer, Failure> {
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
                self.note_server_request_id(trail, id);
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
}

impl Answer {
    pub(super) fn response<'a>(&'a self, scrubber: &'a Scrubber) -> Response<'a> {
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
pub(super) struct Failure {
    /// The connection was never made: the vendor cannot have seen the request.
    pub not_sent: bool,
    /// The answer's status, when one came but its body could not be read.
    pub status: Option<u16>,
    pub message: String,
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

    pub(super) fn verdict(self, batch: &Batch, idempotent: bool) -> Verdict {
        if self.not_sent || idempotent {
            return Verdict::Retry {
                status: None,
                after: None,
                message: self.message,
            };
        }
        targets::unknown(batch, &self.message, self.status)
    }
}
