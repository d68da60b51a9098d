//! A TCP proxy on 127.0.0.1 that adds network latency in front of the emulator, so the
//! deployer can be measured as it would behave over a real network, and that counts the
//! HTTP requests passing through it.
//!
//! Latency is injected like `netem` does it: every chunk read from one side is written to
//! the other half a round trip later, in order, without holding back the chunks behind it
//! (so a request/response exchange costs one extra round trip, and bandwidth is not
//! throttled). A new connection waits one round trip before its first byte goes through,
//! as a TCP handshake would. TLS handshakes are not modelled: the emulator speaks plain
//! HTTP.
//!
//! Requests are counted by turns: a chunk from the client that starts like an HTTP request
//! line, on a new connection or after the server last spoke. That is exact for the HTTP/1.1
//! request/response exchanges the AWS SDK makes (it does not pipeline).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Chunks in flight per direction before the reader waits for the writer: with 64 KiB
/// reads, up to 16 MiB, far above what a 50 ms round trip holds on a local machine.
const IN_FLIGHT: usize = 256;
const READ_SIZE: usize = 64 * 1024;

/// Who spoke last on a connection, for counting requests by turns.
const NOBODY: u8 = 0;
const CLIENT: u8 = 1;
const SERVER: u8 = 2;

/// A running proxy; it stops (with every connection through it) when dropped.
pub struct LatencyProxy {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl LatencyProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`,
    /// adding `round_trip` of latency (zero: forward at once).
    pub async fn start(upstream: SocketAddr, round_trip: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let accept = tokio::spawn(async move {
            // Dropped with this task when the proxy is dropped: that aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        // A failed accept (e.g. out of descriptors) ends only that connection.
                        if let Ok((client, _)) = accepted {
                            connections.spawn(relay(client, upstream, round_trip, counter.clone()));
                        }
                    }
                    // Reap finished connections so the set does not grow with every one.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(LatencyProxy {
            addr,
            requests,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`: where clients should connect instead of the upstream.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP requests seen since the last call (or the start), and restart the count.
    pub fn take_requests(&self) -> usize {
        self.requests.swap(0, Ordering::Relaxed)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One client connection: wait out the simulated handshake, connect upstream, then pump
/// both directions until both are done (or either fails, which closes everything).
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    round_trip: Duration,
    requests: Arc<AtomicUsize>,
) {
    if !round_trip.is_zero() {
        tokio::time::sleep(round_trip).await;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        // Dropping the client connection tells it the upstream is unreachable.
        return;
    };
    // Small requests must not wait for Nagle's algorithm: that would add latency of its own.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let last = Arc::new(AtomicU8::new(NOBODY));
    let one_way = round_trip / 2;
    let to_server = {
        let last = last.clone();
        pump(client_read, server_write, one_way, move |chunk: &[u8]| {
            if last.swap(CLIENT, Ordering::Relaxed) != CLIENT && starts_request(chunk) {
                requests.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let to_client = pump(server_read, client_write, one_way, move |_: &[u8]| {
        last.store(SERVER, Ordering::Relaxed);
    });
    let _ = tokio::try_join!(to_server, to_client);
}

/// Copies `from` to `to`, each chunk `delay` after it was read, and passes the end of the
/// stream on; `seen` is told about every chunk as it is read.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    seen: impl Fn(&[u8]),
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; READ_SIZE];
    if delay.is_zero() {
        loop {
            let n = from.read(&mut buffer).await?;
            if n == 0 {
                return to.shutdown().await;
            }
            seen(&buffer[..n]);
            to.write_all(&buffer[..n]).await?;
        }
    }
    let (sender, mut receiver) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read = async move {
        loop {
            let n = from.read(&mut buffer).await?;
            if n == 0 {
                // Dropping the sender ends the writer once it has written what is queued.
                return Ok::<_, std::io::Error>(());
            }
            seen(&buffer[..n]);
            if sender
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Whether a chunk starts like an HTTP request line: an upper-case method and a space.
fn starts_request(chunk: &[u8]) -> bool {
    let method_len = chunk.iter().take_while(|b| b.is_ascii_uppercase()).count();
    (1..=10).contains(&method_len) && chunk.get(method_len) == Some(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on 127.0.0.1 that answers every chunk with the same bytes.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Sends `message` and reads back as many bytes; returns them and how long it took.
    async fn exchange(stream: &mut TcpStream, message: &[u8]) -> (Vec<u8>, Duration) {
        let started = Instant::now();
        stream.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        (back, started.elapsed())
    }

    #[tokio::test]
    async fn adds_the_round_trip_to_each_exchange_and_the_handshake() {
        let rtt = Duration::from_millis(60);
        let proxy = LatencyProxy::start(echo_server().await, rtt).await.unwrap();
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let (back, first) = exchange(&mut stream, b"GET /a HTTP/1.1\r\n\r\n").await;
        assert_eq!(back, b"GET /a HTTP/1.1\r\n\r\n");
        // Handshake plus the exchange: two round trips. Only lower bounds: a loaded machine
        // may always be slower, never faster.
        assert!(first >= 2 * rtt, "first exchange took {first:?}");
        let (_, second) = exchange(&mut stream, b"PUT /b HTTP/1.1\r\n\r\n").await;
        assert!(second >= rtt, "second exchange took {second:?}");
        assert_eq!(proxy.take_requests(), 2);
        assert_eq!(proxy.take_requests(), 0, "taking the count restarts it");
    }

    #[tokio::test]
    async fn forwards_large_payloads_intact_and_in_order() {
        let proxy = LatencyProxy::start(echo_server().await, Duration::from_millis(20))
            .await
            .unwrap();
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut reader, mut writer) = stream.split();
        let write = async {
            writer.write_all(&payload).await.unwrap();
        };
        let read = async {
            let mut back = vec![0u8; payload.len()];
            reader.read_exact(&mut back).await.unwrap();
            back
        };
        let ((), back) = tokio::join!(write, read);
        assert!(back == payload, "the payload changed on the way");
        // Binary data is no request line; the first chunk may or may not look like one.
        assert!(proxy.take_requests() <= 1);
    }

    #[tokio::test]
    async fn without_latency_it_forwards_at_once_and_still_counts() {
        let proxy = LatencyProxy::start(echo_server().await, Duration::ZERO)
            .await
            .unwrap();
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        for i in 0..3 {
            let message = format!("POST /{i} HTTP/1.1\r\n\r\n");
            let (back, _) = exchange(&mut stream, message.as_bytes()).await;
            assert_eq!(back, message.as_bytes());
        }
        assert_eq!(proxy.take_requests(), 3);
    }

    #[test]
    fn request_lines_are_recognised() {
        assert!(starts_request(b"GET / HTTP/1.1\r\n"));
        assert!(starts_request(b"DELETE /bucket?x HTTP/1.1"));
        assert!(!starts_request(b"PK\x03\x04 zip body"));
        assert!(!starts_request(b" GET"));
        assert!(!starts_request(b"GET"));
        assert!(!starts_request(b""));
    }
}
