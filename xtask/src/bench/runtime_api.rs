//! A fake Lambda Runtime API on 127.0.0.1, enough to drive the real `bootstrap` outside
//! Lambda: it hands out the events it is given (`GET …/invocation/next`) and reports what
//! the runtime does, with the instant it happened — when it first asks for an event (it is
//! ready: the end of a cold start), when an event was handed over, when the result came.
//!
//! It speaks just the HTTP/1.1 the runtime client uses: keep-alive connections,
//! `Content-Length` or chunked request bodies, one request at a time per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The longest request head or body accepted: the runtime posts small JSON documents.
const MAX_HEAD: u64 = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;
const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

/// What the runtime did, and when.
#[derive(Debug, Clone)]
pub enum Report {
    /// It asked for the next event: it is ready for one.
    Next(Instant),
    /// An event was handed to it.
    Delivered { request_id: String, at: Instant },
    /// It finished an invocation successfully.
    Response { request_id: String, at: Instant },
    /// It reported an invocation as failed.
    Error { request_id: String, body: String },
    /// It failed before it could take events.
    InitError { body: String },
}

/// What the connections share: the queue of events to hand out and where to report.
struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<(String, String)>>,
    reports: mpsc::UnboundedSender<Report>,
}

/// A running fake Runtime API; stops with every connection when dropped.
pub struct FakeRuntimeApi {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, String)>,
    reports: mpsc::UnboundedReceiver<Report>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeRuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, queue) = mpsc::unbounded_channel();
        let (reporter, reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(queue),
            reports: reporter,
        });
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(serve(stream, shared.clone()));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(FakeRuntimeApi {
            addr,
            events,
            reports,
            server,
        })
    }

    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event; the runtime gets it on its next `GET …/next`.
    pub fn invoke(&self, request_id: &str, payload: String) -> anyhow::Result<()> {
        self.events
            .send((request_id.to_owned(), payload))
            .map_err(|_| anyhow::anyhow!("the fake Runtime API has stopped"))
    }

    /// The next thing the runtime did, waiting at most `timeout`.
    pub async fn report(&mut self, timeout: Duration) -> anyhow::Result<Report> {
        tokio::time::timeout(timeout, self.reports.recv())
            .await
            .with_context(|| {
                format!(
                    "the bootstrap did nothing for {}s",
                    timeout.as_secs_f64().round()
                )
            })?
            .context("the fake Runtime API has stopped")
    }
}

impl Drop for FakeRuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Answers the requests of one connection until the runtime closes it.
async fn serve(stream: TcpStream, shared: Arc<Shared>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read);
    while let Some(request) = read_request(&mut reader).await? {
        let (response, delivered) = answer(&request, &shared).await;
        write.write_all(&response).await?;
        if let Some(request_id) = delivered {
            let _ = shared.reports.send(Report::Delivered {
                request_id,
                at: Instant::now(),
            });
        }
    }
    Ok(())
}

/// One request of the runtime client.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Reads one request; `None` when the connection was closed between requests.
async fn read_request(reader: &mut (impl AsyncBufRead + Unpin)) -> anyhow::Result<Option<Request>> {
    let mut head = String::new();
    let mut limited = (&mut *reader).take(MAX_HEAD);
    loop {
        let before = head.len();
        if limited.read_line(&mut head).await? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            anyhow::bail!("the connection closed inside a request head");
        }
        if head[before..].trim_end().is_empty() {
            break;
        }
    }
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        anyhow::bail!("not an HTTP request line: {request_line:?}");
    };
    let mut content_length = 0usize;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().context("a bad Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        read_chunked(reader).await?
    } else {
        anyhow::ensure!(
            content_length <= MAX_BODY,
            "a request body over {MAX_BODY} bytes"
        );
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).await?;
        body
    };
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        body,
    }))
}

/// A `Transfer-Encoding: chunked` body (the runtime client may stream what it posts).
async fn read_chunked(reader: &mut (impl AsyncBufRead + Unpin)) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        (&mut *reader).take(1024).read_line(&mut size_line).await?;
        let hex = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(hex, 16)
            .with_context(|| format!("a bad chunk size line {size_line:?}"))?;
        if size == 0 {
            // Trailer fields, then the empty line that ends the body.
            loop {
                let mut line = String::new();
                if (&mut *reader).take(MAX_HEAD).read_line(&mut line).await? == 0
                    || line.trim_end().is_empty()
                {
                    return Ok(body);
                }
            }
        }
        anyhow::ensure!(
            body.len() + size <= MAX_BODY,
            "a request body over {MAX_BODY} bytes"
        );
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).await?;
    }
}

/// The response to `request`, and the request id of the event it hands over, if any.
async fn answer(request: &Request, shared: &Shared) -> (Vec<u8>, Option<String>) {
    let report = |report| {
        // Nobody listening any more is no reason to stop answering.
        let _ = shared.reports.send(report);
    };
    let body = String::from_utf8_lossy(&request.body).into_owned();
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", NEXT) => {
            report(Report::Next(Instant::now()));
            // One runtime polls at a time; holding the queue while it waits is the point.
            let next = shared.events.lock().await.recv().await;
            match next {
                Some((request_id, payload)) => {
                    let response = event_response(&request_id, &payload);
                    (response, Some(request_id))
                }
                None => (status(503, "no more events"), None),
            }
        }
        ("POST", INIT_ERROR) => {
            report(Report::InitError { body });
            (status(202, "{}"), None)
        }
        ("POST", path) => match path
            .strip_prefix(INVOCATION)
            .and_then(|rest| rest.split_once('/'))
        {
            Some((request_id, "response")) => {
                report(Report::Response {
                    request_id: request_id.to_owned(),
                    at: Instant::now(),
                });
                (status(202, "{}"), None)
            }
            Some((request_id, "error")) => {
                report(Report::Error {
                    request_id: request_id.to_owned(),
                    body,
                });
                (status(202, "{}"), None)
            }
            _ => (status(404, "unknown path"), None),
        },
        _ => (status(404, "unknown path"), None),
    }
}

/// The `next` response carrying an event, with the headers the runtime client requires.
fn event_response(request_id: &str, payload: &str) -> Vec<u8> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    // Fifteen minutes: Lambda's longest timeout; the handler never looks at it.
    let deadline_ms = now_ms + 900_000;
    format!(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: application/json\r\n\
         Lambda-Runtime-Aws-Request-Id: {request_id}\r\n\
         Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:stripstack-bench\r\n\
         Content-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .into_bytes()
}

fn status(code: u16, body: &str) -> Vec<u8> {
    let reason = match code {
        202 => "Accepted",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8]) -> anyhow::Result<Option<Request>> {
        let mut reader = tokio::io::BufReader::new(raw);
        read_request(&mut reader).await
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies() {
        let plain = parse(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((plain.method.as_str(), plain.path.as_str()), ("POST", "/x"));
        assert_eq!(plain.body, b"hello");
        let chunked = parse(
            b"POST /y HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(chunked.body, b"abcde");
        assert_eq!(parse(b"").await.unwrap(), None);
        assert!(parse(b"GET /z HTTP/1.1\r\nHost").await.is_err());
    }

    /// A runtime's conversation over one keep-alive connection.
    #[tokio::test]
    async fn hands_out_events_and_reports_what_the_runtime_does() {
        let mut api = FakeRuntimeApi::start().await.unwrap();
        let mut runtime = TcpStream::connect(api.addr).await.unwrap();
        api.invoke("req-1", "{\"Records\":[]}".to_owned()).unwrap();
        runtime
            .write_all(format!("GET {NEXT} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut reader = tokio::io::BufReader::new(&mut runtime);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            reader.read_line(&mut head).await.unwrap();
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Lambda-Runtime-Aws-Request-Id: req-1\r\n"));
        let mut body = vec![0u8; "{\"Records\":[]}".len()];
        reader.read_exact(&mut body).await.unwrap();
        let wait = Duration::from_secs(5);
        assert!(matches!(api.report(wait).await.unwrap(), Report::Next(_)));
        assert!(
            matches!(api.report(wait).await.unwrap(), Report::Delivered { request_id, .. } if request_id == "req-1")
        );
        runtime
            .write_all(
                format!(
                    "POST {INVOCATION}req-1/response HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        assert!(
            matches!(api.report(wait).await.unwrap(), Report::Response { request_id, .. } if request_id == "req-1")
        );
    }
}
