//! Target adapters: each vendor's wire format. An adapter turns a batch into the
//! vendor's exact request and reads the vendor's answer into one result per row. It
//! knows nothing of retries, rate limits, state or files (those live in `send/`).

pub mod aicc;
pub mod arctos;
pub mod quanshi;

use std::time::Duration;

use crate::batch::Batch;
use crate::config::{Secret, Target};
use crate::kinds::Vendor;
use crate::problem::{Code, Problem};

/// A request ready for the wire (`POST base_url + path` with a JSON body).
pub struct Request {
    pub path: String,
    /// Headers besides Content-Type and X-Request-Id; may hold secrets.
    pub headers: Vec<(&'static str, Secret)>,
    /// May hold a secret (Quanshi's token): never log it.
    pub body: Vec<u8>,
}

/// The credentials a request is built with, already loaded.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// arctos access token, or AICC's optional bearer token.
    pub bearer: Option<Secret>,
    /// AICC `X-APP-Key`.
    pub app_key: Option<Secret>,
    /// Quanshi's body `token`.
    pub body_token: Option<Secret>,
}

impl Credentials {
    /// `text` with every credential value replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        [&self.bearer, &self.app_key, &self.body_token]
            .into_iter()
            .flatten()
            .map(Secret::expose)
            .filter(|s| !s.is_empty())
            .fold(text.to_string(), |text, secret| text.replace(secret, "***"))
    }
}

/// The parts of an HTTP answer the adapters read.
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// `Retry-After`, already parsed.
    pub retry_after: Option<Duration>,
}

/// What an answer means for the batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// A final result for every row of the batch, in batch order.
    Rows(Vec<RowResult>),
    /// Worth trying again (429, 502, 503, 504).
    Retry {
        status: u16,
        after: Option<Duration>,
        message: String,
    },
    /// 401/403 (or Quanshi's `code` 401/403): log in again where possible, else abort.
    AuthRefused { status: u16, message: String },
    /// The endpoint itself does not exist (404 without a vendor answer): abort.
    EndpointMissing { status: u16, message: String },
}

/// The fate of one row of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum RowResult {
    Succeeded {
        remote_id: Option<String>,
        warning: Option<Problem>,
    },
    Failed {
        problem: Problem,
        http_status: Option<u16>,
    },
    /// The request may have been carried out; nobody can tell.
    Unknown {
        problem: Problem,
        http_status: Option<u16>,
    },
}

/// Builds the request for a batch.
pub fn build(target: &Target, creds: &Credentials, batch: &Batch) -> Request {
    match target.vendor {
        Vendor::Arctos => arctos::build(target, creds, batch),
        Vendor::Quanshi => quanshi::build(target, creds, batch),
        Vendor::Aicc => aicc::build(target, creds, batch),
    }
}

/// Reads an answer. `idempotent`: the request may be repeated safely (task-status),
/// so an unreadable answer is retried rather than reported unknown.
pub fn classify(vendor: Vendor, batch: &Batch, response: &Response) -> Verdict {
    if let Some(verdict) = transport_meaning(response) {
        return verdict;
    }
    match vendor {
        Vendor::Arctos => arctos::classify(batch, response),
        Vendor::Quanshi => quanshi::classify(batch, response),
        Vendor::Aicc => aicc::classify(batch, response),
    }
}

/// HTTP statuses that mean the same for every vendor (SPEC §4).
fn transport_meaning(response: &Response) -> Option<Verdict> {
    let message = || body_excerpt(response.body);
    match response.status {
        429 | 502 | 503 | 504 => Some(Verdict::Retry {
            status: response.status,
            after: response.retry_after,
            message: format!("HTTP {}{}", response.status, message()),
        }),
        401 | 403 => Some(Verdict::AuthRefused {
            status: response.status,
            message: format!("HTTP {}: access refused{}", response.status, message()),
        }),
        // A 404 that carries the vendor's own status field is about a record; anything
        // else (an HTML page, a gateway's `{"message": "Not Found"}`) means the path.
        404 if !is_vendor_answer(response.body) => Some(Verdict::EndpointMissing {
            status: 404,
            message: format!(
                "HTTP 404: the endpoint does not exist; check base_url and paths in ferry.toml{}",
                message()
            ),
        }),
        _ => None,
    }
}

/// Whether a body is one of the vendors' own answers (it has their status field).
fn is_vendor_answer(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.as_object().map(|o| {
                ["status", "code", "returnCode"]
                    .iter()
                    .any(|k| o.contains_key(*k))
            })
        })
        .unwrap_or(false)
}

/// The same result for every row of the batch.
pub fn all_rows(batch: &Batch, result: RowResult) -> Verdict {
    Verdict::Rows(batch.rows.iter().map(|_| result.clone()).collect())
}

/// An answer that could not be read: for a create, the vendor may have carried it out.
pub fn unreadable(batch: &Batch, response: &Response, why: &str) -> Verdict {
    let what = format!(
        "HTTP {} with an unreadable answer ({why}){}",
        response.status,
        body_excerpt(response.body)
    );
    unknown(batch, &what, Some(response.status))
}

/// Every row's outcome is unknown: `what` happened after the request may have reached
/// the vendor. One message for every such case, since the advice is the same.
pub fn unknown(batch: &Batch, what: &str, http_status: Option<u16>) -> Verdict {
    all_rows(
        batch,
        RowResult::Unknown {
            problem: Problem::new(
                Code::OutcomeUnknown,
                "",
                format!(
                    "{what}; the vendor may have carried it out, so ferry did not send it again: check the vendor, then rerun with --retry-unknown if it is missing"
                ),
            ),
            http_status,
        },
    )
}

/// The answer's JSON body; an answer that is not JSON is unknown when it came with a
/// 200 (the vendor may have carried the request out) and an HTTP failure otherwise.
pub fn json_body(batch: &Batch, response: &Response) -> Result<serde_json::Value, Verdict> {
    serde_json::from_slice(response.body).map_err(|_| match response.status {
        200 => unreadable(batch, response, "not JSON"),
        s => failed(
            batch,
            Code::HttpError,
            s,
            format!("HTTP {s}{}", body_excerpt(response.body)),
        ),
    })
}

/// A request body; the items are plain data that always serialise.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("request bodies always serialise")
}

/// A failure that is final for the whole batch.
pub fn failed(batch: &Batch, code: Code, status: u16, message: String) -> Verdict {
    all_rows(
        batch,
        RowResult::Failed {
            problem: Problem::new(code, "", message),
            http_status: Some(status),
        },
    )
}

/// A short, single-line excerpt of a body for messages: `: <excerpt>` or nothing.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return String::new();
    }
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        format!(": {short}…")
    } else {
        format!(": {short}")
    }
}

/// Reads a JSON field that vendors send as a number or a string (`"status": 1` or `"1"`).
pub fn number_or_string(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a vendor message says the record is already there.
pub fn says_exists(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exist")
        || m.contains("duplicate")
        || message.contains("已存在")
        || message.contains("重复")
}
