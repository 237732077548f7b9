//! Shared helpers for the wire-level vendor tests (`tests/it/vendors.rs`) and the secret
//! hygiene tests (`tests/it/secrets.rs`): targets built from a real `ferry.toml` text,
//! batches built by validating manifest rows, and an httpmock server whose mocks match
//! the exact path, headers and JSON body, answer from a script (one reply per attempt)
//! and record every request they see, so request ids can be compared attempt by attempt.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry::batch::{Batch, BatchRow, Batcher};
use ferry::config::{Config, Target};
use ferry::kinds::{Columns, Ctx, Item, Kind, RowCells, TaskRef};
use ferry::send::Backoff;
use httpmock::{HttpMockRequest, HttpMockResponse, Method::POST, Mock, MockServer};
use serde_json::Value;

pub const CREATE_TASK: &str = "/api/task/do_add";
pub const ADD_MODERATOR: &str = "/api/task/service/do_add";
pub const ADD_PUBLISHER: &str = "/api/task/customer/do_add";
pub const AUTH_CODE: &str = "/api/auth/code";
pub const AUTH_LOGIN: &str = "/api/auth/login";
pub const CREATE_CALL: &str = "/eventopenapi/event/call/create";
pub const CREATE_AGENT_SETTINGS: &str = "/apiaccess/CC-Management/v1/openapp/agentsettings/create";

/// Retries in milliseconds, not seconds.
pub fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    }
}

/// A name no other test (or test process) uses, for environment variables and files.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sets a fresh environment variable to `value` and returns its name. Every test uses
/// its own names, so parallel tests never see each other's values.
pub fn secret_env(prefix: &str, value: &str) -> String {
    let name = unique(prefix);
    std::env::set_var(&name, value);
    name
}

/// `[targets.<name>]` of a config text, checked by the real `Config::parse`.
pub fn target(toml: &str, name: &str) -> Target {
    let config = Config::parse(toml).unwrap_or_else(|e| panic!("config refused: {e}\n{toml}"));
    config
        .targets
        .get(name)
        .unwrap_or_else(|| panic!("no target {name}"))
        .clone()
}

/// Validates manifest rows of `kind` (header + cells) the way `ferry run` does and turns
/// them into batch rows; a row that does not validate fails the test.
pub fn rows(kind: Kind, ctx: &Ctx, header: &[&str], cells: &[&[&str]]) -> Vec<BatchRow> {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let columns = Columns::map(kind, &header, &HashMap::new(), &[]).expect("the header maps");
    cells
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            let record = RowCells {
                cells: &cells,
                columns: &columns,
            };
            let valid = kind
                .validate(&record, ctx)
                .unwrap_or_else(|r| panic!("row {row:?} does not validate: {:?}", r.problems));
            let task_num = match task_ref(&valid.item) {
                Some(TaskRef::TaskNum(t)) => Some(t.clone()),
                _ => None,
            };
            BatchRow {
                row: i as u64 + 2,
                key: valid.key,
                item: valid.item,
                warnings: valid.warnings,
                task_num,
                resend: false,
            }
        })
        .collect()
}

pub fn batch(kind: Kind, ctx: &Ctx, header: &[&str], cells: &[&[&str]]) -> Batch {
    one_batch(kind, rows(kind, ctx, header, cells))
}

/// The rows as the one batch `ferry run` would send them in; rows that would not share
/// a request fail the test.
pub fn one_batch(kind: Kind, rows: Vec<BatchRow>) -> Batch {
    let mut batcher = Batcher::new(kind, rows.len());
    let mut batches: Vec<Batch> = rows
        .into_iter()
        .flat_map(|r| batcher.push(r, ()))
        .map(|ready| ready.batch)
        .collect();
    batches.extend(batcher.finish().into_iter().map(|ready| ready.batch));
    assert_eq!(batches.len(), 1, "the rows do not share one request");
    batches.remove(0)
}

fn task_ref(item: &Item) -> Option<&TaskRef> {
    match item {
        Item::Moderator(m) => Some(&m.task),
        Item::Publisher(p) => Some(&p.task),
        Item::TaskStatus(s) => Some(&s.task),
        _ => None,
    }
}

/// One answer of a script.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json;charset=UTF-8".into(),
            )],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the server received it.
    pub at: Instant,
}

impl Seen {
    fn of(req: &HttpMockRequest) -> Seen {
        Seen {
            at: Instant::now(),
            path: req.uri().path().to_string(),
            method: req.method_str().to_string(),
            headers: req
                .headers_vec()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: req.body_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn request_id(&self) -> String {
        self.header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id on {self:?}"))
            .to_string()
    }
}

/// Requests recorded by one or more mocks, in arrival order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn on(&self, path: &str) -> Vec<Seen> {
        self.all().into_iter().filter(|s| s.path == path).collect()
    }

    pub fn request_ids(&self, path: &str) -> Vec<String> {
        self.on(path).iter().map(Seen::request_id).collect()
    }

    fn push(&self, seen: Seen) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
    }
}

/// What a mock insists on, besides `POST` and `Content-Type: application/json`.
pub struct Expect<'a> {
    pub path: &'a str,
    /// Exact header values (names are case-insensitive).
    pub headers: Vec<(&'a str, String)>,
    /// Headers that must not be sent.
    pub absent: Vec<&'a str>,
    /// The exact JSON body: any extra field, `""` or `null` fails the match.
    pub body: Value,
}

impl<'a> Expect<'a> {
    pub fn new(path: &'a str, body: Value) -> Expect<'a> {
        Expect {
            path,
            headers: Vec::new(),
            absent: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Expect<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Expect<'a> {
        self.header("Authorization", format!("Bearer {token}"))
    }

    pub fn without(mut self, name: &'a str) -> Expect<'a> {
        self.absent.push(name);
        self
    }
}

/// A mock server with a catch-all that records (and answers 418 to) every request no
/// exact mock matched, so a wrong body shows up as a readable test failure.
pub struct Server {
    pub server: MockServer,
    pub log: Log,
    pub unmatched: Log,
}

impl Server {
    pub async fn start() -> Server {
        Server {
            server: MockServer::start_async().await,
            log: Log::default(),
            unmatched: Log::default(),
        }
    }

    pub fn start_blocking() -> Server {
        Server {
            server: MockServer::start(),
            log: Log::default(),
            unmatched: Log::default(),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// An exact mock that answers `replies` in order (the last one repeats).
    pub async fn expect(&self, expect: Expect<'_>, replies: Vec<Reply>) -> Mock<'_> {
        let script = script(replies, self.log.clone());
        self.server
            .mock_async(|when, then| {
                let mut when = when
                    .method(POST)
                    .path(expect.path)
                    .header("content-type", "application/json")
                    .header_exists("x-request-id");
                for (name, value) in &expect.headers {
                    when = when.header(*name, value.clone());
                }
                for name in &expect.absent {
                    when = when.header_missing(*name);
                }
                when.json_body(expect.body.clone());
                then.respond_with(script);
            })
            .await
    }

    pub fn expect_blocking(&self, expect: Expect<'_>, replies: Vec<Reply>) -> Mock<'_> {
        let script = script(replies, self.log.clone());
        self.server.mock(|when, then| {
            let mut when = when
                .method(POST)
                .path(expect.path)
                .header("content-type", "application/json")
                .header_exists("x-request-id");
            for (name, value) in &expect.headers {
                when = when.header(*name, value.clone());
            }
            for name in &expect.absent {
                when = when.header_missing(*name);
            }
            when.json_body(expect.body.clone());
            then.respond_with(script);
        })
    }

    /// Answers every request on `path`, whatever it carries, from a script.
    pub async fn any_on(&self, path: &str, replies: Vec<Reply>) -> Mock<'_> {
        let script = script(replies, self.log.clone());
        self.server
            .mock_async(|when, then| {
                when.path(path);
                then.respond_with(script);
            })
            .await
    }

    pub fn any_on_blocking(&self, path: &str, replies: Vec<Reply>) -> Mock<'_> {
        let script = script(replies, self.log.clone());
        self.server.mock(|when, then| {
            when.path(path);
            then.respond_with(script);
        })
    }

    /// Installs the catch-all; call after the exact mocks (the first matching mock wins).
    pub async fn catch_all(&self) {
        let log = self.unmatched.clone();
        self.server
            .mock_async(|when, then| {
                when.any_request();
                then.respond_with(move |req| {
                    log.push(Seen::of(req));
                    HttpMockResponse {
                        status: Some(418),
                        headers: None,
                        body: Some("no exact mock matched this request".into()),
                    }
                });
            })
            .await;
    }

    pub fn catch_all_blocking(&self) {
        let log = self.unmatched.clone();
        self.server.mock(|when, then| {
            when.any_request();
            then.respond_with(move |req| {
                log.push(Seen::of(req));
                HttpMockResponse {
                    status: Some(418),
                    headers: None,
                    body: Some("no exact mock matched this request".into()),
                }
            });
        });
    }

    /// Fails with every request that no exact mock matched.
    pub fn assert_all_matched(&self) {
        let unmatched = self.unmatched.all();
        assert!(
            unmatched.is_empty(),
            "requests that matched no exact mock (wrong path, header or body):\n{}",
            unmatched
                .iter()
                .map(|s| format!(
                    "  {} {}\n    headers: {:?}\n    body: {}",
                    s.method, s.path, s.headers, s.body
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn script(
    replies: Vec<Reply>,
    log: Log,
) -> impl Fn(&HttpMockRequest) -> HttpMockResponse + Send + Sync + 'static {
    assert!(!replies.is_empty(), "a script needs at least one reply");
    let next = AtomicUsize::new(0);
    move |req| {
        log.push(Seen::of(req));
        let i = next.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
        let reply = &replies[i];
        HttpMockResponse {
            status: Some(reply.status),
            headers: Some(reply.headers.clone()),
            body: Some(reply.body.clone().into()),
        }
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex, as `X-Request-Id` must be.
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    port
}

/// A loopback HTTP/1.1 server that misbehaves on purpose, for what httpmock cannot do
/// (endless and dripping bodies, lengths that lie): each connection's request is read
/// (head and `Content-Length` body), counted, and handed to `answer`, which writes
/// whatever it likes until it is done or the client hangs up.
pub struct RawServer {
    pub port: u16,
    /// Request heads (request line and headers), in arrival order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// What a [`RawServer`] does with a connection after reading its request.
pub type RawAnswer = Arc<dyn Fn(&mut std::net::TcpStream) -> std::io::Result<()> + Send + Sync>;

impl RawServer {
    pub fn start(answer: RawAnswer) -> RawServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a raw server");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        // The accept loop ends with the test process; each connection has its thread.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (answer, seen) = (Arc::clone(&answer), Arc::clone(&seen));
                std::thread::spawn(move || {
                    if let Some(head) = read_request(&mut stream) {
                        seen.lock().unwrap_or_else(|p| p.into_inner()).push(head);
                        let _ = answer(&mut stream);
                    }
                });
            }
        });
        RawServer { port, requests }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn count(&self) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Reads one request (head and `Content-Length` body); returns the head.
fn read_request(stream: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

/// Misbehaving answers for a [`RawServer`].
pub mod raw {
    use std::io::Write;
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::Duration;

    use super::RawAnswer;

    /// A 200 that announces `length` bytes and sends as many as the client takes.
    pub fn announced(length: u64) -> RawAnswer {
        Arc::new(move |s: &mut TcpStream| {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            )?;
            let chunk = vec![b' '; 64 * 1024];
            loop {
                s.write_all(&chunk)?;
            }
        })
    }

    /// A 200 with a chunked body that never ends.
    pub fn endless_chunked() -> RawAnswer {
        Arc::new(|s: &mut TcpStream| {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            )?;
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                write!(s, "{:x}\r\n", chunk.len())?;
                s.write_all(&chunk)?;
                s.write_all(b"\r\n")?;
            }
        })
    }

    /// A 200 whose body comes one byte every `every`, never finishing.
    pub fn drip(every: Duration) -> RawAnswer {
        Arc::new(move |s: &mut TcpStream| {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            )?;
            loop {
                s.write_all(b" ")?;
                s.flush()?;
                std::thread::sleep(every);
            }
        })
    }

    /// A complete answer: status, content type and body.
    pub fn whole(status: u16, headers: &str, body: &str) -> RawAnswer {
        let text = format!(
            "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        Arc::new(move |s: &mut TcpStream| s.write_all(text.as_bytes()))
    }
}
