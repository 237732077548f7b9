//! A faithful local stand-in for the three vendors (SPEC §7): arctos, Quanshi and AICC
//! endpoints with the vendors' request and response shapes, in-memory state, and fault
//! flags (latency, 503s, 429s, a rate limit, dropped connections) driven by a seeded RNG,
//! so that ferry's retries and reports can be rehearsed without a network.
//!
//! Each vendor lives in its own file and only turns a request into a [`Reply`]; this file
//! owns the server, the routing, the fault injection and the one lock over all state.

mod aicc;
mod arctos;
mod faults;
mod fields;
mod quanshi;
mod stats;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::target::defaults;
use crate::config::{
    endpoints, ArctosAuth, Auth, Paths, Secret, SecretSource, Target, SANDBOX_TARGET,
};
use crate::kinds::{Kind, Vendor};

use faults::{Fault, Faults};
use stats::Stats;

/// Why `Options::addr` must be a loopback address (SPEC §7), said where it is refused.
pub const LOOPBACK_ONLY: &str = "the sandbox serves on loopback only: it has no real \
    authentication (its credentials are well-known test values), so anyone who could reach \
    it could use it; give 127.0.0.1:PORT (or another 127.x.x.x), [::1]:PORT or localhost:PORT";

/// How the sandbox behaves. `Default` is `127.0.0.1:8080`, no faults, seed 1.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen, on loopback only; port 0 picks a free port (see
    /// [`Sandbox::addr`]).
    pub addr: SocketAddr,
    /// Every vendor request is answered this much later.
    pub latency_ms: u64,
    /// Probability of HTTP 503 instead of carrying a request out.
    pub fail_rate: f64,
    /// Probability of HTTP 429 (`Retry-After: 1`) instead of carrying a request out.
    pub throttle_rate: f64,
    /// At most this many vendor requests per one-second window; the rest get 429.
    pub rate_limit: Option<u32>,
    /// Probability of carrying a request out and then closing the connection unanswered.
    pub drop_rate: f64,
    /// Seed of the RNG behind the three rates.
    pub seed: u64,
    pub secrets: Secrets,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            latency_ms: 0,
            fail_rate: 0.0,
            throttle_rate: 0.0,
            rate_limit: None,
            drop_rate: 0.0,
            seed: 1,
            secrets: Secrets::default(),
        }
    }
}

/// The credentials the sandbox accepts. They are well-known test values, not secrets.
#[derive(Clone, Debug)]
pub struct Secrets {
    /// Static arctos bearer token (tokens issued by `/api/auth/login` work as well).
    pub arctos_token: String,
    /// Value of the `arc-license-key` header that `/api/auth/code` requires.
    pub arctos_license_key: String,
    /// The `token` field of Quanshi request bodies.
    pub quanshi_token: String,
    /// The AICC `X-APP-Key` header.
    pub aicc_app_key: String,
}

impl Default for Secrets {
    fn default() -> Secrets {
        Secrets {
            arctos_token: "sandbox-token".to_owned(),
            arctos_license_key: "sandbox-license".to_owned(),
            quanshi_token: "sandbox-token".to_owned(),
            aicc_app_key: "sandbox-app-key".to_owned(),
        }
    }
}

/// The built-in `--target sandbox`: loopback, with the sandbox's own credentials.
pub fn target(kind: Kind, base_url: reqwest::Url) -> Target {
    let fixed = |s: &str| SecretSource::Fixed(Secret::new(s));
    let secrets = Secrets::default();
    let vendor = kind.vendor();
    let auth = match vendor {
        Vendor::Arctos => Auth::Arctos(ArctosAuth::Token(fixed(&secrets.arctos_token))),
        Vendor::Quanshi => Auth::Quanshi {
            token: fixed(&secrets.quanshi_token),
        },
        Vendor::Aicc => Auth::Aicc {
            app_key: fixed(&secrets.aicc_app_key),
            token: None,
        },
    };
    // A loopback server answers fast: a high rate, and a short timeout.
    Target {
        name: SANDBOX_TARGET.into(),
        vendor,
        base_url,
        auth,
        rate: 1000.0,
        burst: 100,
        concurrency: None,
        timeout: Duration::from_secs(10),
        max_retries: defaults::MAX_RETRIES,
        batch_size: defaults::batch_size(vendor),
        paths: Paths {
            update_task_status: Some(endpoints::SANDBOX_UPDATE_TASK_STATUS.into()),
            ..Paths::default()
        },
    }
}

/// A running sandbox. Dropping it, or calling [`Sandbox::shutdown`], stops the server.
pub struct Sandbox {
    /// The address actually bound (the real port when `Options::addr` had port 0).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// `http://ADDR`, the base URL of every vendor.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The same counts as `GET /_sandbox/stats`.
    pub fn stats(&self) -> Value {
        self.shared.lock().stats.to_json()
    }

    /// Stops accepting, lets requests in progress finish (for a few seconds at most) and
    /// closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

/// Binds `options.addr` and serves on the current tokio runtime; returns at once.
pub async fn start(options: Options) -> io::Result<Sandbox> {
    check(&options)?;
    let listener = TcpListener::bind(options.addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(options, addr));
    let (stop, stopped) = watch::channel(false);
    let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
    Ok(Sandbox {
        addr,
        shared,
        stop,
        accept_loop: Some(accept_loop),
    })
}

/// `ferry sandbox`: starts, says where it listens on stdout, and runs until Ctrl-C (or
/// SIGTERM).
pub async fn serve(options: Options) -> io::Result<()> {
    let sandbox = start(options).await?;
    println!("ferry sandbox listening on {}", sandbox.base_url());
    interrupted().await?;
    sandbox.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn interrupted() -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        res = tokio::signal::ctrl_c() => res,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn interrupted() -> io::Result<()> {
    tokio::signal::ctrl_c().await
}

fn check(options: &Options) -> io::Result<()> {
    if !options.addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {LOOPBACK_ONLY}", options.addr),
        ));
    }
    for (name, rate) in [
        ("fail rate", options.fail_rate),
        ("throttle rate", options.throttle_rate),
        ("drop rate", options.drop_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the sandbox {name} must be between 0 and 1, not {rate}"),
            ));
        }
    }
    Ok(())
}

/// How long [`Sandbox::shutdown`] waits for requests in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop_requested(&mut stopped) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared), stopped.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "sandbox: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.abort_all();
    }
}

/// Returns when the sandbox is told to stop or its handle is gone.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    // Small JSON answers: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop_requested(&mut stopped) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "sandbox: connection closed");
    }
}

/// The endpoints the sandbox serves, besides `/_sandbox/stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    CreateTask,
    CreateModerator,
    CreatePublisher,
    UpdateTaskStatus,
    AuthCode,
    AuthLogin,
    CallCreate,
    AgentSettingsCreate,
}

impl Route {
    const ALL: [Route; 8] = [
        Route::CreateTask,
        Route::CreateModerator,
        Route::CreatePublisher,
        Route::UpdateTaskStatus,
        Route::AuthCode,
        Route::AuthLogin,
        Route::CallCreate,
        Route::AgentSettingsCreate,
    ];

    fn path(self) -> &'static str {
        match self {
            Route::CreateTask => endpoints::CREATE_TASK,
            Route::CreateModerator => endpoints::ADD_MODERATOR,
            Route::CreatePublisher => endpoints::ADD_PUBLISHER,
            Route::UpdateTaskStatus => endpoints::SANDBOX_UPDATE_TASK_STATUS,
            Route::AuthCode => endpoints::AUTH_CODE,
            Route::AuthLogin => endpoints::AUTH_LOGIN,
            Route::CallCreate => endpoints::CREATE_CALL,
            Route::AgentSettingsCreate => endpoints::CREATE_AGENT_SETTINGS,
        }
    }

    fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|route| route.path() == path)
    }

    fn answer(self, req: &Req<'_>, state: &mut State) -> Reply {
        match self {
            Route::CreateTask => arctos::create_task(req, state),
            Route::CreateModerator => arctos::create_moderator(req, state),
            Route::CreatePublisher => arctos::create_publisher(req, state),
            Route::UpdateTaskStatus => arctos::update_task_status(req, state),
            Route::AuthCode => arctos::auth_code(req, state),
            Route::AuthLogin => arctos::auth_login(req, state),
            Route::CallCreate => quanshi::create_calls(req, state),
            Route::AgentSettingsCreate => aicc::create_agent_settings(req, state),
        }
    }
}

const STATS_PATH: &str = "/_sandbox/stats";
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Far above any batch ferry sends; keeps a runaway client from filling memory.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What the server shares between connections.
struct Shared {
    secrets: Secrets,
    latency: Duration,
    /// The listening IP, as Quanshi puts its server address into `requestId`.
    host: String,
    state: Mutex<State>,
}

impl Shared {
    fn new(options: Options, addr: SocketAddr) -> Shared {
        Shared {
            latency: Duration::from_millis(options.latency_ms),
            host: addr.ip().to_string(),
            state: Mutex::new(State {
                faults: Faults::new(&options),
                stats: Stats::default(),
                arctos: arctos::Store::default(),
                quanshi: quanshi::Store::default(),
                aicc: aicc::Store::default(),
            }),
            secrets: options.secrets,
        }
    }

    /// A panic in one request must not take the whole sandbox down with a poisoned lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything the sandbox remembers. One lock, held only for the moment a request is
/// decided and carried out, never across an await.
struct State {
    faults: Faults,
    stats: Stats,
    arctos: arctos::Store,
    quanshi: quanshi::Store,
    aicc: aicc::Store,
}

/// What a vendor handler gets to see of a request.
struct Req<'a> {
    headers: &'a HeaderMap,
    /// The body as a JSON object, or why it is not one.
    body: &'a Result<fields::Object, String>,
    secrets: &'a Secrets,
    host: &'a str,
}

/// A vendor's answer: a status and a JSON body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn new(status: StatusCode, body: Value) -> Reply {
        Reply { status, body }
    }

    fn ok(body: Value) -> Reply {
        Reply::new(StatusCode::OK, body)
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct NoAnswer;

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closing the connection without an answer")
    }
}

impl std::error::Error for NoAnswer {}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, NoAnswer> {
    let (parts, body) = req.into_parts();
    let reply = answer(&shared, &parts, body).await?;

    let mut response = Response::new(Full::new(Bytes::from(reply.body.to_string())));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    let request_id = match parts.headers.get(X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .expect("a UUID is a valid header value"),
    };
    headers.insert(X_REQUEST_ID, request_id);
    match reply.status {
        StatusCode::TOO_MANY_REQUESTS => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = if parts.uri.path() == STATS_PATH {
                "GET"
            } else {
                "POST"
            };
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        _ => {}
    }
    Ok(response)
}

/// Routes a request, injects faults and lets the vendor answer. `Err` closes the
/// connection unanswered: on purpose (drop rate), or because the client went away.
async fn answer(shared: &Shared, parts: &Parts, body: Incoming) -> Result<Reply, NoAnswer> {
    let message = |status: StatusCode, text: &str| Ok(Reply::new(status, json!({"message": text})));
    let path = parts.uri.path();
    if path == STATS_PATH {
        if parts.method != Method::GET {
            return message(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        return Ok(Reply::ok(shared.lock().stats.to_json()));
    }
    let Some(route) = Route::from_path(path) else {
        shared.lock().stats.not_found();
        return message(StatusCode::NOT_FOUND, "Resource Not Found");
    };
    if parts.method != Method::POST {
        shared.lock().stats.request(route);
        return message(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            shared.lock().stats.request(route);
            return message(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        Err(_) => return Err(NoAnswer),
    };

    let fault = {
        let mut state = shared.lock();
        state.stats.request(route);
        let fault = state.faults.decide(Instant::now());
        match fault {
            Fault::Throttle => state.stats.throttled += 1,
            Fault::Fail => state.stats.failed_injected += 1,
            Fault::Drop => state.stats.dropped += 1,
            Fault::None => {}
        }
        fault
    };
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    match fault {
        Fault::Throttle => return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        Fault::Fail => return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Fault::None | Fault::Drop => {}
    }
    // Parsed before taking the lock, which every other request is waiting for.
    let body = fields::object(&body);
    let req = Req {
        headers: &parts.headers,
        body: &body,
        secrets: &shared.secrets,
        host: &shared.host,
    };
    let reply = route.answer(&req, &mut shared.lock());
    if fault == Fault::Drop {
        return Err(NoAnswer);
    }
    Ok(reply)
}
