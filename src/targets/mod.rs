//! Target adapters: each vendor's wire format. A vendor file builds the vendor's exact
//! request from its typed batch, reads the vendor's answer (a serde type of its own)
//! into one result per row, and owns the vendor's quirks: arctos's login, Quanshi's
//! `requestId`, each vendor's "already exists" rule. This module holds what is the same
//! for every vendor: what HTTP statuses mean, and the messages for answers that cannot
//! be read. It says which answers are worth trying again; whether and when to try,
//! rate limits, state and files are `send/`'s business.

pub mod aicc;
pub mod answer;
pub mod arctos;
pub mod quanshi;

use std::time::Duration;

use crate::batch::{Batch, Payload};
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
    /// Worth trying again: a [`retryable`] status, or no HTTP answer at all (`status`
    /// `None`: a connection never made, or lost on a request that may be repeated).
    Retry {
        status: Option<u16>,
        after: Option<Duration>,
        message: String,
    },
    /// 401/403 (or Quanshi's `code` 401/403): log in again where possible, else abort.
    AuthRefused(AuthRefused),
    /// The endpoint itself is not where the config says: abort.
    EndpointMissing(EndpointMissing),
}

/// The vendor refused the credentials: a request's 401/403, Quanshi's `code` 401/403, or
/// an arctos login step that did not issue what it should.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthRefused {
    /// The HTTP status (Quanshi's `code`); `None` when no answer came at all.
    pub status: Option<u16>,
    /// What was refused and what the vendor said, for people.
    pub message: String,
}

/// The endpoint does not exist where `base_url` and `paths` lead: a 404 that is not a
/// vendor's answer, or a redirect ferry will not follow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EndpointMissing {
    pub status: u16,
    /// What happened and what to fix in `ferry.toml`, for people.
    pub message: String,
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

/// HTTP statuses worth trying again, for every vendor and for logins alike (SPEC §4):
/// the one list of them.
const RETRYABLE: [u16; 4] = [429, 502, 503, 504];

/// Whether an HTTP status is worth trying again.
pub fn retryable(status: u16) -> bool {
    RETRYABLE.contains(&status)
}

/// Builds the request for a batch.
pub fn build(target: &Target, creds: &Credentials, batch: &Batch) -> Request {
    match &batch.payload {
        Payload::Arctos(body) => arctos::build(target, creds, body),
        Payload::Quanshi(calls) => quanshi::build(target, creds, calls),
        Payload::Aicc(setting) => aicc::build(target, creds, setting),
    }
}

/// Reads an answer to a batch: first what a status means for every vendor, then the
/// vendor's own reading.
pub fn classify(batch: &Batch, response: &Response) -> Verdict {
    if let Some(verdict) = transport_meaning(response) {
        return verdict;
    }
    // 303 See Other is how a server says "done, the result is over there": a create
    // may have been carried out.
    if response.status == 303 {
        return unknown(batch, &redirected(response), Some(303));
    }
    match &batch.payload {
        Payload::Arctos(_) => arctos::classify(batch, response),
        Payload::Quanshi(calls) => quanshi::classify(batch, calls, response),
        Payload::Aicc(_) => aicc::classify(batch, response),
    }
}

/// The vendor's own id for a request, when its answers carry one (Quanshi's
/// `requestId`), whatever the answer says otherwise: for the row's trail.
pub fn server_request_id(vendor: Vendor, body: &[u8]) -> Option<String> {
    match vendor {
        Vendor::Quanshi => quanshi::server_request_id(body),
        Vendor::Arctos | Vendor::Aicc => None,
    }
}

/// HTTP statuses that mean the same for every vendor (SPEC §4).
fn transport_meaning(response: &Response) -> Option<Verdict> {
    let status = response.status;
    let message = || body_excerpt(response);
    match status {
        // ferry never follows a redirect (it would carry credentials to a host the config
        // never named, and turn a POST into a GET): the base URL does not lead to the API.
        300..=399 if status != 303 => Some(Verdict::EndpointMissing(EndpointMissing {
            status,
            message: redirected(response),
        })),
        _ if retryable(status) => Some(Verdict::Retry {
            status: Some(status),
            after: response.retry_after,
            message: format!("HTTP {status}{}", message()),
        }),
        401 | 403 => Some(Verdict::AuthRefused(AuthRefused {
            status: Some(status),
            message: format!("HTTP {status}: access refused{}", message()),
        })),
        // A 404 that carries the vendor's own status field is about a record; anything
        // else (an HTML page, a gateway's `{"message": "Not Found"}`) means the path.
        404 if !is_vendor_answer(response.body) => {
            Some(Verdict::EndpointMissing(EndpointMissing {
                status,
                message: format!(
                    "HTTP 404: the endpoint does not exist; check base_url and paths in ferry.toml{}",
                    message()
                ),
            }))
        }
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

/// Whether an HTTP status says the request was carried out: any 2xx, not only the
/// documented 200. A 201 or 202 read as a failure would be sent again by the next run,
/// and the vendor would hold the record twice; its body says how the request went.
pub fn success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The answer read into the vendor's answer type `T` (see [`answer`]); an answer that is
/// not JSON is unknown when it came with a 200 (the vendor may have carried the request
/// out) and an HTTP failure otherwise.
pub fn read_answer<T>(batch: &Batch, response: &Response) -> Result<T, Verdict>
where
    T: serde::de::DeserializeOwned + Default,
{
    answer::parse(response.body).map_err(|_| match response.status {
        s if success(s) => unreadable(batch, response, not_json(response.body)),
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

/// Whether a vendor message says the record is already there.
pub fn says_exists(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exist")
        || m.contains("duplicate")
        || message.contains("已存在")
        || message.contains("重复")
}

/// A row the vendor refused in an HTTP 200 answer: final, the vendor's reason quoted.
pub fn rejected(message: String) -> RowResult {
    RowResult::Failed {
        problem: Problem::new(Code::VendorRejected, "", message),
        http_status: Some(200),
    }
}

/// The shared half of every vendor's "already exists" rule: a deliberate resend (a row
/// whose earlier outcome was unknown) that the vendor refuses because it already has the
/// record was carried out by that earlier attempt. Each vendor file decides when its
/// answer says so; this is what the row becomes then.
pub fn existed_before(remote_id: Option<String>, message: &str) -> RowResult {
    RowResult::Succeeded {
        remote_id,
        warning: Some(Problem::new(
            Code::ExistedBefore,
            "",
            format!("the vendor already had this record from an earlier attempt whose outcome was unknown ({message})"),
        )),
    }
}
