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
use crate::scrub::Scrubber;

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

/// The parts of an HTTP answer the adapters read.
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// `Retry-After`, already parsed.
    pub retry_after: Option<Duration>,
    /// For a 3xx: where it points, as [`redirect`] describes it (never the path or
    /// query, which may carry tokens).
    pub location: Option<String>,
    /// The run's secrets, hidden from every excerpt of the body.
    pub scrubber: &'a Scrubber,
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
    // 303 See Other is how a server says "done, the result is over there": a create
    // may have been carried out.
    if response.status == 303 {
        return unknown(batch, &redirected(response), Some(303));
    }
    match vendor {
        Vendor::Arctos => arctos::classify(batch, response),
        Vendor::Quanshi => quanshi::classify(batch, response),
        Vendor::Aicc => aicc::classify(batch, response),
    }
}

/// HTTP statuses that mean the same for every vendor (SPEC §4).
fn transport_meaning(response: &Response) -> Option<Verdict> {
    let message = || body_excerpt(response);
    match response.status {
        // ferry never follows a redirect (it would carry credentials to a host the config
        // never named, and turn a POST into a GET): the base URL does not lead to the API.
        300..=399 if response.status != 303 => Some(Verdict::EndpointMissing {
            status: response.status,
            message: redirected(response),
        }),
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
        body_excerpt(response)
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
        200 => unreadable(batch, response, not_json(response.body)),
        s => failed(
            batch,
            Code::HttpError,
            s,
            format!("HTTP {s}{}", body_excerpt(response)),
        ),
    })
}

/// Why a body is not an answer: an HTML page usually means base_url leads to a web
/// page, a login page or a proxy's error page rather than to the API.
pub fn not_json(body: &[u8]) -> &'static str {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |at| &body[at..body.len().min(at + 64)]);
    let lower = String::from_utf8_lossy(start).to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        "an HTML page, not JSON: check that base_url leads to the API, not to a web page or a proxy"
    } else {
        "not JSON"
    }
}

/// Where a 3xx points, for messages: the scheme, host and port of `Location` (resolved
/// against the request's URL), and what that says about `base_url`. Never the path or
/// query, which may carry tokens.
pub fn redirect(request_url: &reqwest::Url, location: Option<&str>) -> String {
    let Some(to) = location.and_then(|l| request_url.join(l.trim()).ok()) else {
        return "without a usable Location; check base_url (http:// or https://, and any path prefix the API needs)".into();
    };
    let origin = |u: &reqwest::Url| {
        format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    };
    let hint = if to.scheme() != request_url.scheme() {
        format!(
            "base_url probably has the wrong scheme: use {}:// in base_url",
            to.scheme()
        )
    } else if to.host_str() == request_url.host_str()
        && to.port_or_known_default() == request_url.port_or_known_default()
    {
        "same host, another path: base_url probably lacks the path prefix the API needs (or has one too many)".into()
    } else {
        "another host: base_url probably points at an old address or a login page; check it with the vendor".into()
    };
    format!("to {} ({hint})", origin(&to))
}

/// The message for a redirect ferry did not follow.
fn redirected(response: &Response) -> String {
    format!(
        "HTTP {} redirect {}; ferry does not follow redirects, fix base_url in ferry.toml",
        response.status,
        response.location.as_deref().unwrap_or("without a Location")
    )
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

/// A short, single-line excerpt of an answer's body for messages, secrets hidden:
/// `: <excerpt>` or nothing.
pub fn body_excerpt(response: &Response) -> String {
    response.scrubber.excerpt(response.body)
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

/// The most characters of a vendor's own message that ferry keeps: it is copied into
/// every row of a batch, so a 4 MiB `msg` must not become 100 × 4 MiB of reports.
const VENDOR_TEXT_CHARS: usize = 500;

/// A vendor's message field (`msg`, `message`, `returnDesc`), cut to a length a report
/// cell and a person can use; empty when absent or not a string.
pub(crate) fn vendor_text(value: Option<&serde_json::Value>) -> String {
    let text = value.and_then(serde_json::Value::as_str).unwrap_or("");
    let mut chars = text.chars();
    let kept: String = chars.by_ref().take(VENDOR_TEXT_CHARS).collect();
    if chars.next().is_some() {
        format!("{kept}… (cut at {VENDOR_TEXT_CHARS} characters)")
    } else {
        kept
    }
}

#[cfg(test)]
mod vendor_text_tests {
    use super::*;

    /// Review of issue 9: a 4 MiB `msg` was copied into every row of a batch.
    #[test]
    fn a_vendor_message_is_cut_to_a_length_a_report_can_hold() {
        let long = serde_json::json!("x".repeat(4 * 1024 * 1024));
        let cut = vendor_text(Some(&long));
        assert!(cut.starts_with(&"x".repeat(VENDOR_TEXT_CHARS)));
        assert!(
            cut.ends_with("… (cut at 500 characters)"),
            "{}",
            &cut[cut.len() - 40..]
        );
        assert_eq!(vendor_text(Some(&serde_json::json!("ok"))), "ok");
        assert_eq!(vendor_text(Some(&serde_json::json!(42))), "");
        assert_eq!(vendor_text(None), "");
    }
}
