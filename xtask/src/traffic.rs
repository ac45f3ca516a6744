//! The soak and load client: keep-alive HTTP/1.1 connections and multiplexed HTTP/2 connections
//! sending a fixed mix of requests to the egress gateway, checking every answer against what the
//! configuration says it must be.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Examples of unexpected answers kept for the report.
const EXAMPLES: usize = 10;

/// One kind of request in the mix and what the egress gateway's configuration says it gets.
pub struct Kind {
    pub authority: &'static str,
    pub status: u16,
    /// `x-upstream` of an answer that must come from the `google` subset (tagged, then routed).
    pub upstream: Option<&'static str>,
    /// `x-gateway-wasm-denied-reason` of a denial.
    pub denied_reason: Option<&'static str>,
}

/// Allowed and tagged (routed to the `google` subset), and denied: the egress gateway's story.
pub const MIX: [Kind; 4] = [
    Kind {
        authority: "www.google.com",
        status: 200,
        upstream: Some("google"),
        denied_reason: None,
    },
    Kind {
        authority: "google.com",
        status: 200,
        upstream: Some("google"),
        denied_reason: None,
    },
    Kind {
        authority: "evil.example",
        status: 403,
        upstream: None,
        denied_reason: Some("host_not_listed"),
    },
    Kind {
        authority: "internet.example:8080",
        status: 403,
        upstream: None,
        denied_reason: Some("host_not_listed"),
    },
];

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub http1_connections: usize,
    pub http2_connections: usize,
    pub streams_per_http2_connection: usize,
}

#[derive(Debug, Clone, Copy)]
pub enum Until {
    Requests(u64),
    Elapsed(Duration),
}

/// What one run sent and saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub http1: AtomicU64,
    pub http2: AtomicU64,
    pub unexpected: AtomicU64,
    pub by_status: Mutex<std::collections::BTreeMap<u16, u64>>,
    pub examples: Mutex<Vec<String>>,
}

impl Tally {
    pub fn sent(&self) -> u64 {
        self.http1.load(Ordering::Relaxed) + self.http2.load(Ordering::Relaxed)
    }

    fn unexpected(&self, what: String) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut examples) = self.examples.lock() {
            if examples.len() < EXAMPLES {
                examples.push(what);
            }
        }
    }
}

/// Sends the mix to `addr` until `until`, from `shape`'s connections, on a runtime of `threads`.
pub fn drive(
    addr: SocketAddr,
    shape: Shape,
    until: Until,
    threads: usize,
    tally: Arc<Tally>,
) -> Result<Duration, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the client runtime: {e}"))?;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..shape.http1_connections {
            let (next, tally) = (Arc::clone(&next), Arc::clone(&tally));
            tasks.push(tokio::spawn(async move {
                http1_loop(addr, until, started, next, tally).await
            }));
        }
        for _ in 0..shape.http2_connections {
            let sender = http2_connect(addr).await?;
            for _ in 0..shape.streams_per_http2_connection {
                let (next, tally, sender) = (Arc::clone(&next), Arc::clone(&tally), sender.clone());
                tasks.push(tokio::spawn(async move {
                    http2_loop(addr, sender, until, started, next, tally).await
                }));
            }
        }
        for task in tasks {
            task.await.map_err(|e| format!("client task failed: {e}"))?;
        }
        Ok::<(), String>(())
    })?;
    Ok(started.elapsed())
}

/// The next request number, or `None` when the run is over.
fn take(next: &AtomicU64, until: Until, started: Instant) -> Option<u64> {
    match until {
        Until::Requests(total) => {
            let n = next.fetch_add(1, Ordering::Relaxed);
            (n < total).then_some(n)
        }
        Until::Elapsed(duration) => {
            (started.elapsed() < duration).then(|| next.fetch_add(1, Ordering::Relaxed))
        }
    }
}

async fn http1_connect(addr: SocketAddr) -> Result<http1::SendRequest<Empty<Bytes>>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn http2_connect(addr: SocketAddr) -> Result<http2::SendRequest<Empty<Bytes>>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn http1_loop(
    addr: SocketAddr,
    until: Until,
    started: Instant,
    next: Arc<AtomicU64>,
    tally: Arc<Tally>,
) {
    let mut sender = None;
    while let Some(n) = take(&next, until, started) {
        let kind = &MIX[(n % MIX.len() as u64) as usize];
        if sender.is_none() {
            match http1_connect(addr).await {
                Ok(connected) => sender = Some(connected),
                Err(error) => {
                    tally.http1.fetch_add(1, Ordering::Relaxed);
                    tally.unexpected(format!("HTTP/1.1 {}: {error}", kind.authority));
                    continue;
                }
            }
        }
        let Some(connection) = sender.as_mut() else {
            continue;
        };
        let request = hyper::Request::get("/soak")
            .header(hyper::header::HOST, kind.authority)
            .body(Empty::new())
            .expect("a static request is valid");
        let result = async {
            connection.ready().await.map_err(|e| e.to_string())?;
            connection
                .send_request(request)
                .await
                .map_err(|e| e.to_string())
        };
        tally.http1.fetch_add(1, Ordering::Relaxed);
        if !check(
            kind,
            "HTTP/1.1",
            tokio::time::timeout(REQUEST_TIMEOUT, result).await,
            &tally,
        )
        .await
        {
            sender = None;
        }
    }
}

async fn http2_loop(
    addr: SocketAddr,
    mut sender: http2::SendRequest<Empty<Bytes>>,
    until: Until,
    started: Instant,
    next: Arc<AtomicU64>,
    tally: Arc<Tally>,
) {
    while let Some(n) = take(&next, until, started) {
        let kind = &MIX[(n % MIX.len() as u64) as usize];
        let request = hyper::Request::get(format!("http://{}/soak", kind.authority))
            .body(Empty::new())
            .expect("a static request is valid");
        let result = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())
        };
        tally.http2.fetch_add(1, Ordering::Relaxed);
        if !check(
            kind,
            "HTTP/2",
            tokio::time::timeout(REQUEST_TIMEOUT, result).await,
            &tally,
        )
        .await
        {
            match http2_connect(addr).await {
                Ok(connected) => sender = connected,
                Err(error) => tally.unexpected(format!("HTTP/2 reconnect: {error}")),
            }
        }
    }
}

/// Checks one answer; `false` when the connection is no longer usable.
async fn check(
    kind: &Kind,
    protocol: &str,
    result: Result<
        Result<hyper::Response<hyper::body::Incoming>, String>,
        tokio::time::error::Elapsed,
    >,
    tally: &Tally,
) -> bool {
    let response = match result {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tally.unexpected(format!("{protocol} {}: {error}", kind.authority));
            return false;
        }
        Err(_) => {
            tally.unexpected(format!(
                "{protocol} {}: no answer within {REQUEST_TIMEOUT:?}",
                kind.authority
            ));
            return false;
        }
    };
    let status = response.status().as_u16();
    if let Ok(mut by_status) = tally.by_status.lock() {
        *by_status.entry(status).or_default() += 1;
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let upstream = header("x-upstream");
    let reason = header("x-gateway-wasm-denied-reason");
    let body = response.into_body().collect().await;
    let expected = status == kind.status
        && upstream.as_deref() == kind.upstream
        && reason.as_deref() == kind.denied_reason
        && body.is_ok();
    if !expected {
        tally.unexpected(format!(
            "{protocol} {}: {status}, x-upstream {upstream:?}, reason {reason:?}, body {}",
            kind.authority,
            if body.is_ok() { "read" } else { "failed" }
        ));
    }
    body.is_ok()
}
