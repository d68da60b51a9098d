//! A fault proxy in front of the test emulator that behaves like real AWS: each service's own
//! throttling error on a fraction of requests, some 5xx, and for a window after each write
//! the eventual-consistency behaviours a deployer meets on a real account (issue 13, item 2).
//!
//! It is an HTTP/1.1 reverse proxy on a free port of 127.0.0.1, forwarding to the harness's
//! emulator (also on 127.0.0.1); a deployer is pointed at it with `AWS_ENDPOINT_URL`. Every
//! fault is answered by the proxy *before* the request reaches the emulator, so a refused
//! write is never applied and its retry is applied once.
//!
//! - Requests are identified as AWS routes them (`fault_proxy/classify.rs`): the service from
//!   the SigV4 credential scope, the operation from `Action=` (IAM, STS, CloudFormation),
//!   `X-Amz-Target` (SSM) or method and path (Lambda, S3 path-style). Unsigned requests (the
//!   emulator's health check, a template URL the emulator fetches itself) pass through
//!   untouched, as do signed requests for other services.
//! - Throttling and 5xx are drawn per request from a seeded SplitMix64 keyed by operation and
//!   occurrence (`fault_proxy/rng.rs` says why), in each service's own error shape
//!   (`fault_proxy/answers.rs`).
//! - The consistency windows, and the documents behind each, are in
//!   `fault_proxy/consistency.rs`.
//! - What it did is counted ([`FaultProxy::stats`]) and logged per request
//!   ([`FaultProxy::events`]), so a test or a benchmark can report the retries each fault
//!   class caused.
//!
//! The proxy runs on a thread of its own with its own runtime: it keeps serving while a test
//! blocks on `cargo xtask` as a child process, whichever runtime (if any) the test uses. It
//! accepts only 127.0.0.1 connections (it listens there), forwards only to a loopback
//! emulator, holds at most [`MAX_CONNECTIONS`] connections and [`MAX_BODY`] of buffered body
//! per request, and stops, with every connection through it, when dropped.
//!
//! ```no_run
//! use stripstack_tests::fault_proxy::{self, FaultConfig};
//!
//! let (proxy, endpoint) = fault_proxy::start(FaultConfig::aws_like(7));
//! let out = fault_proxy::xtask(&endpoint, &["plan", "--env", "local"]).output().unwrap();
//! println!("{:?}", proxy.stats());
//! ```

mod answers;
mod classify;
mod consistency;
mod rng;

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, CONTENT_LENGTH};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use answers::{Answer, ServerError};
use classify::{Call, Service};
use consistency::Consistency;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Largest request body the proxy buffers (everything but S3 object bodies, which stream):
/// above it, 413. A Lambda zip sent inline is at most 50 MB, about 67 MB in base64.
pub const MAX_BODY: usize = 80 << 20;
/// Largest emulator answer buffered for inspection (function configurations, bucket
/// lifecycle rules): far above any of them.
const MAX_INSPECTED_RESPONSE: usize = 16 << 20;
/// Requests remembered by [`FaultProxy::events`]; older ones are forgotten first.
pub const MAX_EVENTS: usize = 100_000;

/// How the proxy misbehaves.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Seeds every random draw: the same seed gives the same faults to the same sequence of
    /// requests of each operation.
    pub seed: u64,
    /// Fraction of requests answered with the service's throttling error (e.g. 0.20).
    pub throttle: f64,
    /// Fraction of requests answered with a 500 or 503 (half each) in the service's shape.
    pub server_error: f64,
    /// How long a write keeps propagating (`fault_proxy/consistency.rs`); zero: no consistency
    /// faults.
    pub consistency_window: Duration,
    /// Added to every request before it is handled, as a network round trip would.
    pub latency: Duration,
}

impl Default for FaultConfig {
    /// Transparent: no faults, no latency.
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            throttle: 0.0,
            server_error: 0.0,
            consistency_window: Duration::ZERO,
            latency: Duration::ZERO,
        }
    }
}

impl FaultConfig {
    /// Issue 13's "real AWS on a bad day": 20 % throttling, 3 % 5xx, 3 s consistency windows.
    pub fn aws_like(seed: u64) -> Self {
        FaultConfig {
            seed,
            throttle: 0.20,
            server_error: 0.03,
            consistency_window: Duration::from_secs(3),
            latency: Duration::ZERO,
        }
    }

    /// Only `latency` added to each request: the baseline a fault run is compared with.
    pub fn latency_only(latency: Duration) -> Self {
        FaultConfig {
            latency,
            ..FaultConfig::default()
        }
    }

    fn validate(&self) -> std::io::Result<()> {
        let fraction = |value: f64| (0.0..=1.0).contains(&value);
        if !fraction(self.throttle)
            || !fraction(self.server_error)
            || self.throttle + self.server_error > 1.0
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "fault fractions must be in [0, 1] and sum to at most 1 (throttle {}, \
                     server_error {})",
                    self.throttle, self.server_error
                ),
            ));
        }
        Ok(())
    }
}

/// What the proxy did instead of (or to) a forwarded answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The service's throttling error.
    Throttled,
    /// A 500 or 503 in the service's shape.
    ServerError,
    /// S3 `NoSuchBucket` on a just-created bucket.
    NoSuchBucket,
    /// IAM `NoSuchEntity` on a just-created user, role or policy.
    IamNoSuchEntity,
    /// Lambda `InvalidParameterValueException`: a just-created role cannot be assumed yet.
    RoleNotAssumable,
    /// S3 `InvalidArgument`: a just-added invoke permission cannot be validated yet.
    NotificationUnvalidated,
    /// Lambda `ResourceConflictException` while a function is pending or updating.
    FunctionUpdateConflict,
    /// Lambda `InvalidParameterValueException`: the role's just-written permission on an
    /// on-failure destination is not visible to Lambda yet.
    DestinationUnauthorized,
    /// A `GetFunction*` answer rewritten to `Pending`/`InProgress` (forwarded, not an error).
    FunctionStateRewritten,
    /// A bucket configuration read answered with its pre-write value (not an error).
    StaleRead,
    /// A request the proxy could not read, refused with a 400 (or 413).
    Malformed,
    /// The emulator could not be reached: 502.
    Upstream,
}

/// One request through the proxy, for [`FaultProxy::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// Arrival order, from 0.
    pub index: u64,
    /// The SigV4 signing name (`s3`, `iam`…), empty for an unsigned request.
    pub service: String,
    /// The API operation, or a descriptive stand-in.
    pub operation: String,
    /// `None`: forwarded and answered by the emulator unchanged.
    pub fault: Option<Fault>,
    /// The status the client got.
    pub status: u16,
}

/// Counters of everything the proxy did since it started. Each error answer (throttle, 5xx,
/// consistency error) is one retry a well-behaved client makes; the rewritten function
/// states and stale reads are extra polls rather than errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Every request received (including the malformed ones).
    pub requests: u64,
    /// Requests that reached the emulator.
    pub forwarded: u64,
    /// Of those, unsigned ones passed through untouched.
    pub unsigned: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub no_such_bucket: u64,
    pub iam_no_such_entity: u64,
    pub role_not_assumable: u64,
    pub notification_unvalidated: u64,
    pub function_update_conflicts: u64,
    pub destination_unauthorized: u64,
    pub function_states_rewritten: u64,
    pub stale_reads: u64,
    pub malformed: u64,
    pub upstream_errors: u64,
}

impl FaultStats {
    /// How many times `fault` happened.
    pub fn count(&self, fault: Fault) -> u64 {
        match fault {
            Fault::Throttled => self.throttled,
            Fault::ServerError => self.server_errors,
            Fault::NoSuchBucket => self.no_such_bucket,
            Fault::IamNoSuchEntity => self.iam_no_such_entity,
            Fault::RoleNotAssumable => self.role_not_assumable,
            Fault::NotificationUnvalidated => self.notification_unvalidated,
            Fault::FunctionUpdateConflict => self.function_update_conflicts,
            Fault::DestinationUnauthorized => self.destination_unauthorized,
            Fault::FunctionStateRewritten => self.function_states_rewritten,
            Fault::StaleRead => self.stale_reads,
            Fault::Malformed => self.malformed,
            Fault::Upstream => self.upstream_errors,
        }
    }

    fn count_mut(&mut self, fault: Fault) -> &mut u64 {
        match fault {
            Fault::Throttled => &mut self.throttled,
            Fault::ServerError => &mut self.server_errors,
            Fault::NoSuchBucket => &mut self.no_such_bucket,
            Fault::IamNoSuchEntity => &mut self.iam_no_such_entity,
            Fault::RoleNotAssumable => &mut self.role_not_assumable,
            Fault::NotificationUnvalidated => &mut self.notification_unvalidated,
            Fault::FunctionUpdateConflict => &mut self.function_update_conflicts,
            Fault::DestinationUnauthorized => &mut self.destination_unauthorized,
            Fault::FunctionStateRewritten => &mut self.function_states_rewritten,
            Fault::StaleRead => &mut self.stale_reads,
            Fault::Malformed => &mut self.malformed,
            Fault::Upstream => &mut self.upstream_errors,
        }
    }

    /// Error answers given for eventual consistency (each one a retry the client made or
    /// should have made).
    pub fn consistency_errors(&self) -> u64 {
        self.no_such_bucket
            + self.iam_no_such_entity
            + self.role_not_assumable
            + self.notification_unvalidated
            + self.function_update_conflicts
            + self.destination_unauthorized
    }

    /// Every error answer the proxy invented: throttles, 5xx and consistency errors.
    pub fn injected_errors(&self) -> u64 {
        self.throttled + self.server_errors + self.consistency_errors()
    }

    /// The counts since `earlier` (a snapshot of the same proxy), e.g. one deploy's share.
    pub fn since(&self, earlier: &FaultStats) -> FaultStats {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        FaultStats {
            requests: d(self.requests, earlier.requests),
            forwarded: d(self.forwarded, earlier.forwarded),
            unsigned: d(self.unsigned, earlier.unsigned),
            throttled: d(self.throttled, earlier.throttled),
            server_errors: d(self.server_errors, earlier.server_errors),
            no_such_bucket: d(self.no_such_bucket, earlier.no_such_bucket),
            iam_no_such_entity: d(self.iam_no_such_entity, earlier.iam_no_such_entity),
            role_not_assumable: d(self.role_not_assumable, earlier.role_not_assumable),
            notification_unvalidated: d(
                self.notification_unvalidated,
                earlier.notification_unvalidated,
            ),
            function_update_conflicts: d(
                self.function_update_conflicts,
                earlier.function_update_conflicts,
            ),
            destination_unauthorized: d(
                self.destination_unauthorized,
                earlier.destination_unauthorized,
            ),
            function_states_rewritten: d(
                self.function_states_rewritten,
                earlier.function_states_rewritten,
            ),
            stale_reads: d(self.stale_reads, earlier.stale_reads),
            malformed: d(self.malformed, earlier.malformed),
            upstream_errors: d(self.upstream_errors, earlier.upstream_errors),
        }
    }
}

/// One line for a test's or a benchmark's report: `120 requests (98 forwarded): 19 throttled,
/// 3 5xx, 2 NoSuchBucket, …`, naming only the faults that happened.
impl FaultStats {
    /// Each fault class with its count and its name in reports, in a fixed order; the
    /// errors a deployer has to retry are the classes counted by [`Self::injected_errors`].
    pub fn classes(&self) -> [(&'static str, u64); 12] {
        [
            ("throttled", self.throttled),
            ("5xx", self.server_errors),
            ("NoSuchBucket", self.no_such_bucket),
            ("IAM NoSuchEntity", self.iam_no_such_entity),
            ("role not assumable", self.role_not_assumable),
            ("notification unvalidated", self.notification_unvalidated),
            ("function update conflicts", self.function_update_conflicts),
            ("destination unauthorized", self.destination_unauthorized),
            ("function states rewritten", self.function_states_rewritten),
            ("stale reads", self.stale_reads),
            ("malformed", self.malformed),
            ("upstream errors", self.upstream_errors),
        ]
    }
}

impl std::fmt::Display for FaultStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests ({} forwarded)",
            self.requests, self.forwarded
        )?;
        let mut separator = ":";
        for (class, count) in self.classes() {
            if count > 0 {
                write!(f, "{separator} {count} {class}")?;
                separator = ",";
            }
        }
        Ok(())
    }
}

/// A running fault proxy. It stops, with every connection through it, when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    config: FaultConfig,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream`, which must be a
    /// plain-HTTP endpoint on the loopback interface (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, config: FaultConfig) -> std::io::Result<FaultProxy> {
        config.validate()?;
        let upstream = loopback_upstream(upstream)?;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            upstream: format!("http://{upstream}"),
            consistency: Mutex::new(Consistency::new(config.consistency_window)),
            record: Mutex::new(Record::default()),
        });
        let (stop, stopped) = oneshot::channel();
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let serving = shared.clone();
        // A thread and a runtime of its own, so the proxy serves whatever the caller's thread
        // is doing (blocked on a child process, or running another runtime). The runtime is
        // built and dropped on that thread: dropping one inside the caller's async context
        // would panic.
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready.send(Err(err));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                runtime.block_on(serve(listener, serving, stopped));
                // Dropping the runtime here cancels every connection task.
            })?;
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(std::io::Error::other(
                    "the fault proxy's thread ended at start",
                ));
            }
        }
        Ok(FaultProxy {
            addr,
            config,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: where clients connect instead of the emulator.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> FaultStats {
        self.shared.record().stats.clone()
    }

    /// The last [`MAX_EVENTS`] requests, oldest first.
    pub fn events(&self) -> Vec<FaultEvent> {
        self.shared.record().events.iter().cloned().collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone (its thread panicked): nothing left to stop.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Joined so that the port is closed once the proxy is dropped; the thread only
            // has to leave its accept loop and drop its runtime.
            let _ = thread.join();
        }
    }
}

/// Starts a proxy with `config` in front of this test binary's emulator and returns it with
/// its endpoint. Panics, as the harness does, when it cannot start.
pub fn start(config: FaultConfig) -> (FaultProxy, String) {
    let proxy = FaultProxy::start(&crate::endpoint(), config)
        .unwrap_or_else(|err| panic!("cannot start the fault proxy: {err}"));
    let endpoint = proxy.endpoint();
    (proxy, endpoint)
}

/// The environment for an AWS tool run as a child process (`cargo xtask`) through the proxy
/// at `endpoint`: the harness's [`crate::aws_env`] with the endpoint replaced.
pub fn xtask_env(endpoint: &str) -> Vec<(&'static str, String)> {
    crate::aws_env()
        .into_iter()
        .map(|(key, value)| {
            if key == "AWS_ENDPOINT_URL" {
                (key, endpoint.to_string())
            } else {
                (key, value)
            }
        })
        .collect()
}

/// `cargo xtask ARGS…` through the proxy at `endpoint` (otherwise as [`crate::xtask`]).
pub fn xtask(endpoint: &str, args: &[&str]) -> Command {
    let mut command = crate::xtask(args);
    command.envs(xtask_env(endpoint));
    command
}

/// `http://127.0.0.1:PORT` or `http://localhost:PORT` → the socket address; anything else is
/// refused, so the proxy can never be pointed at a real endpoint.
fn loopback_upstream(endpoint: &str) -> std::io::Result<SocketAddr> {
    let invalid = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("upstream {endpoint:?}: {why}"),
        )
    };
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only plain http:// is proxied"))?;
    let authority = rest.trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| invalid("no port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
    match host {
        "127.0.0.1" | "localhost" => Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        _ => Err(invalid("only a loopback (127.0.0.1) emulator is proxied")),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// State shared by the connections of one proxy.
struct Shared {
    config: FaultConfig,
    /// `http://127.0.0.1:PORT` of the emulator.
    upstream: String,
    consistency: Mutex<Consistency>,
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    next_index: u64,
    stats: FaultStats,
    events: VecDeque<FaultEvent>,
    /// Requests seen per `service:Operation`: the occurrence index of each draw.
    occurrences: HashMap<String, u64>,
}

impl Shared {
    /// The record, even if a thread panicked while holding it (counters stay usable).
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn consistency(&self) -> MutexGuard<'_, Consistency> {
        self.consistency
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn arrive(&self) -> u64 {
        let mut record = self.record();
        let index = record.next_index;
        record.next_index += 1;
        record.stats.requests += 1;
        index
    }

    /// Logs the outcome of request `index`.
    fn finish(&self, index: u64, call: Option<&Call>, fault: Option<Fault>, status: StatusCode) {
        let mut record = self.record();
        if let Some(fault) = fault {
            *record.stats.count_mut(fault) += 1;
        }
        // A rewritten answer came from the emulator; every other fault was the proxy's own.
        if matches!(fault, None | Some(Fault::FunctionStateRewritten)) {
            record.stats.forwarded += 1;
            if call.is_none() {
                record.stats.unsigned += 1;
            }
        }
        if record.events.len() >= MAX_EVENTS {
            record.events.pop_front();
        }
        record.events.push_back(FaultEvent {
            index,
            service: call.map(|c| c.service.to_string()).unwrap_or_default(),
            operation: call.map(|c| c.operation.clone()).unwrap_or_default(),
            fault,
            status: status.as_u16(),
        });
    }

    /// The throttle or 5xx drawn for this occurrence of the call's operation, if any.
    fn draw(&self, call: &Call, request_id: &str) -> Option<(Fault, Answer)> {
        if matches!(call.service, Service::Other(_)) {
            return None;
        }
        let key = call.key();
        let occurrence = {
            let mut record = self.record();
            let seen = record.occurrences.entry(key.clone()).or_insert(0);
            let occurrence = *seen;
            *seen += 1;
            occurrence
        };
        let mut rng = rng::keyed(self.config.seed, &key, occurrence);
        let draw = rng.next_f64();
        if draw < self.config.throttle {
            return answers::throttle(&call.service, request_id).map(|a| (Fault::Throttled, a));
        }
        if draw < self.config.throttle + self.config.server_error {
            let kind = if rng.next_f64() < 0.5 {
                ServerError::Internal
            } else {
                ServerError::Unavailable
            };
            return answers::server_error(&call.service, kind, request_id)
                .map(|a| (Fault::ServerError, a));
        }
        None
    }
}

/// Accepts connections until told to stop (or the proxy is dropped).
async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let mut connector = HttpConnector::new();
    // Small requests must not wait for Nagle's algorithm: that would add latency of its own.
    connector.set_nodelay(true);
    let client: Client<HttpConnector, ProxyBody> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = &mut stopped => return,
        };
        // The semaphore is never closed; an error would only mean there is nothing to serve.
        let Ok(slot) = slot else {
            return;
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A failed accept (e.g. out of descriptors) ends only that connection.
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let _ = stream.set_nodelay(true);
        let connection_shared = shared.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let shared = connection_shared.clone();
            let service = service_fn(move |request| {
                let shared = shared.clone();
                let client = client.clone();
                async move { Ok::<_, Infallible>(handle(&shared, &client, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // A client that opens a connection and never finishes its headers is dropped.
                .header_read_timeout(Duration::from_secs(60))
                .serve_connection(TokioIo::new(stream), service);
            // Errors end only this connection. What hyper could not parse as HTTP it has
            // already answered with a 400 (or 431): counted as malformed, like the proxy's own.
            if let Err(err) = connection.await {
                if err.is_parse() || err.is_parse_too_large() {
                    let index = connection_shared.arrive();
                    connection_shared.finish(
                        index,
                        None,
                        Some(Fault::Malformed),
                        StatusCode::BAD_REQUEST,
                    );
                }
            }
        });
    }
}

/// One request: identify it, maybe answer it with a fault, otherwise forward it and record
/// what it did.
async fn handle(
    shared: &Shared,
    client: &Client<HttpConnector, ProxyBody>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let index = shared.arrive();
    let request_id = format!("fa017000-0000-4000-8000-{index:012x}");
    let (parts, body) = request.into_parts();
    let head = parts.method == Method::HEAD;

    let (service, region) = match classify::signing_scope(&parts) {
        Ok(Some(scope)) => scope,
        Ok(None) => {
            // Unsigned: not an AWS API call the proxy should judge.
            let body = body.map_err(BoxError::from).boxed_unsync();
            return forward(shared, client, index, None, parts, body, Bytes::new()).await;
        }
        Err(why) => return refuse(shared, index, None, &why.0, head),
    };
    let (body, buffered) = if classify::needs_body(&service, &parts) {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                (full(bytes.clone()), bytes)
            }
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
                let mut answer = answers::malformed(&format!("a body over {MAX_BODY} bytes"));
                answer.status = StatusCode::PAYLOAD_TOO_LARGE;
                shared.finish(index, None, Some(Fault::Malformed), answer.status);
                return answer.into_response(head).map(full);
            }
            Err(err) => {
                return refuse(
                    shared,
                    index,
                    None,
                    &format!("unreadable body: {err}"),
                    head,
                )
            }
        }
    } else {
        (body.map_err(BoxError::from).boxed_unsync(), Bytes::new())
    };
    let call = match classify::classify(&parts, service, region, &buffered) {
        Ok(call) => call,
        Err(why) => return refuse(shared, index, None, &why.0, head),
    };

    let verdict = shared.draw(&call, &request_id).or_else(|| {
        shared
            .consistency()
            .before(&call, &buffered, Instant::now(), &request_id)
    });
    if let Some((fault, answer)) = verdict {
        shared.finish(index, Some(&call), Some(fault), answer.status);
        return answer.into_response(head).map(full);
    }
    forward(shared, client, index, Some(&call), parts, body, buffered).await
}

/// The proxy's 400 for a request it cannot read.
fn refuse(
    shared: &Shared,
    index: u64,
    call: Option<&Call>,
    why: &str,
    head: bool,
) -> Response<ProxyBody> {
    let answer = answers::malformed(why);
    shared.finish(index, call, Some(Fault::Malformed), answer.status);
    answer.into_response(head).map(full)
}

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), plus
/// `Expect`: the proxy has already read (or is streaming) the body, so the emulator must not
/// be asked to invite it.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

fn end_to_end(
    headers: &HeaderMap,
) -> impl Iterator<Item = (&HeaderName, &hyper::header::HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
}

/// Sends the request to the emulator and relays its answer; for a classified `call`, lets
/// the consistency model record it and, while a function is busy, rewrite its state.
async fn forward(
    shared: &Shared,
    client: &Client<HttpConnector, ProxyBody>,
    index: u64,
    call: Option<&Call>,
    parts: Parts,
    body: ProxyBody,
    buffered: Bytes,
) -> Response<ProxyBody> {
    let head = parts.method == Method::HEAD;
    let path = parts
        .uri
        .path_and_query()
        .map(|path| path.as_str())
        .unwrap_or("/");
    let mut upstream = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path}", shared.upstream));
    // The Host header is kept as the client sent it: it is part of what SigV4 signed.
    for (name, value) in end_to_end(&parts.headers) {
        upstream = upstream.header(name, value);
    }
    let upstream = match upstream.body(body) {
        Ok(request) => request,
        Err(err) => return refuse(shared, index, call, &format!("cannot forward: {err}"), head),
    };
    let response = match client.request(upstream).await {
        Ok(response) => response,
        Err(err) => {
            let answer = answers::bad_gateway(&err.to_string());
            shared.finish(index, call, Some(Fault::Upstream), answer.status);
            return answer.into_response(head).map(full);
        }
    };
    let (response_parts, response_body) = response.into_parts();
    let status = response_parts.status;
    let relay = |body: ProxyBody, length: Option<usize>| {
        let mut relayed = Response::new(body);
        *relayed.status_mut() = status;
        for (name, value) in end_to_end(&response_parts.headers) {
            relayed.headers_mut().append(name.clone(), value.clone());
        }
        if let Some(length) = length {
            // A rewritten body's length replaces the emulator's.
            relayed.headers_mut().insert(CONTENT_LENGTH, length.into());
        }
        relayed
    };
    let Some(call) = call else {
        shared.finish(index, None, None, status);
        return relay(response_body.map_err(BoxError::from).boxed_unsync(), None);
    };

    let inspect = shared
        .consistency()
        .wants_response_body(call, Instant::now());
    let mut answer = Answer {
        status,
        headers: response_parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| vec![("content-type", value.to_string())])
            .unwrap_or_default(),
        body: Bytes::new(),
    };
    let streamed = if inspect {
        match Limited::new(response_body, MAX_INSPECTED_RESPONSE)
            .collect()
            .await
        {
            Ok(collected) => {
                answer.body = collected.to_bytes();
                None
            }
            Err(err) => {
                let answer = answers::bad_gateway(&format!("unreadable answer: {err}"));
                shared.finish(index, Some(call), Some(Fault::Upstream), answer.status);
                return answer.into_response(head).map(full);
            }
        }
    } else {
        Some(response_body)
    };
    let rewritten = shared
        .consistency()
        .after(call, &buffered, &answer, Instant::now());
    shared.finish(
        index,
        Some(call),
        rewritten.as_ref().map(|(fault, _)| *fault),
        status,
    );
    match (streamed, rewritten) {
        (Some(stream), _) => relay(stream.map_err(BoxError::from).boxed_unsync(), None),
        (None, Some((_, body))) => {
            let length = body.len();
            relay(full(body), Some(length))
        }
        (None, None) => relay(full(answer.body), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_upstreams_are_accepted() {
        assert_eq!(
            loopback_upstream("http://127.0.0.1:4566").unwrap(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 4566))
        );
        assert_eq!(
            loopback_upstream("http://localhost:4566/").unwrap(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 4566))
        );
        for bad in [
            "https://127.0.0.1:4566",
            "http://s3.amazonaws.com:80",
            "http://10.0.0.1:4566",
            "http://127.0.0.1",
            "http://127.0.0.1:x",
        ] {
            assert!(loopback_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fractions_are_validated() {
        assert!(FaultConfig::aws_like(1).validate().is_ok());
        assert!(FaultConfig::default().validate().is_ok());
        let too_much = FaultConfig {
            throttle: 0.9,
            server_error: 0.2,
            ..FaultConfig::default()
        };
        assert!(too_much.validate().is_err());
        let negative = FaultConfig {
            throttle: -0.1,
            ..FaultConfig::default()
        };
        assert!(negative.validate().is_err());
        let nan = FaultConfig {
            throttle: f64::NAN,
            ..FaultConfig::default()
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn stats_read_as_one_line() {
        let stats = FaultStats {
            requests: 12,
            forwarded: 8,
            throttled: 3,
            stale_reads: 1,
            ..FaultStats::default()
        };
        assert_eq!(
            stats.to_string(),
            "12 requests (8 forwarded): 3 throttled, 1 stale reads"
        );
        assert_eq!(
            FaultStats::default().to_string(),
            "0 requests (0 forwarded)"
        );
    }

    #[test]
    fn stats_since_subtracts_each_counter() {
        let earlier = FaultStats {
            requests: 3,
            throttled: 1,
            ..FaultStats::default()
        };
        let now = FaultStats {
            requests: 10,
            throttled: 4,
            no_such_bucket: 2,
            ..FaultStats::default()
        };
        let since = now.since(&earlier);
        assert_eq!(since.requests, 7);
        assert_eq!(since.count(Fault::Throttled), 3);
        assert_eq!(since.consistency_errors(), 2);
        assert_eq!(since.injected_errors(), 5);
    }

    #[test]
    fn a_proxy_in_front_of_nothing_answers_502_and_stops_when_dropped() {
        use std::io::{Read as _, Write as _};
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy =
            FaultProxy::start(&format!("http://127.0.0.1:{port}"), FaultConfig::default()).unwrap();
        let mut stream = std::net::TcpStream::connect(proxy.addr).unwrap();
        stream
            .write_all(b"GET /_ministack/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 502"), "{response}");
        assert_eq!(proxy.stats().upstream_errors, 1);
        let addr = proxy.addr;
        drop(proxy);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening after drop"
        );
    }
}
