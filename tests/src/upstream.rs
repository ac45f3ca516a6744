//! Real HTTP servers on 127.0.0.1 that stand in for upstream services and record every request
//! they receive, so a test can prove what reached (or never reached) the upstream.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::runtime::runtime;
use crate::Result;

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Header names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// SNI the client sent, for a TLS upstream.
    pub sni: Option<String>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header_values(&self.headers, name).next()
    }

    /// Every copy of a header, in arrival order: a test can prove that a header arrived once.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        crate::header_values(&self.headers, name)
    }

    /// The authority as the upstream saw it: `:authority` over HTTP/2, `Host` over HTTP/1.1.
    pub fn authority(&self) -> Option<&str> {
        self.header("host")
    }
}

/// An upstream's answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// Decides the reply to a recorded request. It runs on a blocking thread, so it may itself call
/// out over the network (the demo's app does).
pub type Responder = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// Answers every request with `status` and a body naming the upstream.
pub fn fixed_status(name: &str, status: u16) -> Responder {
    let body = format!("upstream {name}\n");
    Arc::new(move |_| Reply::new(status, body.clone()))
}

/// A recording HTTP/1.1 + HTTP/2 (h2c) server, or HTTPS when started with a certificate.
pub struct Upstream {
    name: String,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    connections: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Upstream {
    /// Starts a plain-text server answering 200.
    pub fn start(name: &str) -> Result<Self> {
        Self::start_with(name, fixed_status(name, 200), None)
    }

    /// Starts an HTTPS server answering 200 with the given TLS configuration.
    pub fn start_tls(name: &str, tls: Arc<rustls::ServerConfig>) -> Result<Self> {
        Self::start_with(name, fixed_status(name, 200), Some(tls))
    }

    /// Starts a server answering through `responder`, with TLS when `tls` is given.
    pub fn start_with(
        name: &str,
        responder: Responder,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self> {
        Self::start_inner(LOOPBACK_ANY_PORT, name, responder, tls, true)
    }

    /// A plain-text server that answers through `responder` without keeping the requests, for
    /// soak and load runs of millions of requests ([`Upstream::requests`] stays empty).
    pub fn start_unrecorded(name: &str, responder: Responder) -> Result<Self> {
        Self::start_inner(LOOPBACK_ANY_PORT, name, responder, None, false)
    }

    /// A server on `bind` that answers through `responder` without keeping the requests: the
    /// stand-in containers listen on their network's address and log what they receive instead.
    pub fn start_on(
        bind: SocketAddr,
        name: &str,
        responder: Responder,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self> {
        Self::start_inner(bind, name, responder, tls, false)
    }

    fn start_inner(
        bind: SocketAddr,
        name: &str,
        responder: Responder,
        tls: Option<Arc<rustls::ServerConfig>>,
        record: bool,
    ) -> Result<Self> {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted_connections = Arc::clone(&connections);
        let state = Arc::new(ServerState {
            name: name.to_string(),
            responder,
            requests: Arc::clone(&requests),
            record,
        });
        let acceptor = tls.map(TlsAcceptor::from);
        let (addr, shutdown) = serve(bind, &format!("upstream {name}"), move |stream| {
            accepted_connections.fetch_add(1, Ordering::SeqCst);
            let state = Arc::clone(&state);
            let acceptor = acceptor.clone();
            tokio::spawn(async move { serve_connection(stream, acceptor, state).await });
        })?;
        Ok(Self {
            name: name.to_string(),
            addr,
            requests,
            connections,
            shutdown: Some(shutdown),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .map(|requests| requests.clone())
            .unwrap_or_default()
    }

    /// How many TCP connections it accepted so far, whether or not a request (or a TLS handshake)
    /// followed: proof that nothing at all reached it.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

struct ServerState {
    name: String,
    responder: Responder,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    record: bool,
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    acceptor: Option<TlsAcceptor>,
    state: Arc<ServerState>,
) {
    match acceptor {
        None => serve_http(TokioIo::new(stream), None, state).await,
        Some(acceptor) => {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let sni = tls.get_ref().1.server_name().map(str::to_string);
            serve_http(TokioIo::new(tls), sni, state).await;
        }
    }
}

async fn serve_http<IO>(io: TokioIo<IO>, sni: Option<String>, state: Arc<ServerState>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let state = Arc::clone(&state);
        let sni = sni.clone();
        async move { Ok::<_, Infallible>(state.handle(request, sni).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

impl ServerState {
    async fn handle(
        &self,
        request: Request<Incoming>,
        sni: Option<String>,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|collected| collected.to_bytes().to_vec())
            .unwrap_or_default();
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        // HTTP/2 carries the authority in the URI, not in a Host header.
        if !headers.iter().any(|(name, _)| name == "host") {
            if let Some(authority) = parts.uri.authority() {
                headers.insert(0, ("host".to_string(), authority.to_string()));
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.to_string())
            .unwrap_or_else(|| "/".to_string());
        let recorded = RecordedRequest {
            method: parts.method.to_string(),
            path,
            version: format!("{:?}", parts.version),
            headers,
            body,
            sni,
        };
        if self.record {
            if let Ok(mut requests) = self.requests.lock() {
                requests.push(recorded.clone());
            }
        }
        let responder = Arc::clone(&self.responder);
        let reply = tokio::task::spawn_blocking(move || responder(&recorded))
            .await
            .unwrap_or_else(|error| Reply::new(500, format!("responder failed: {error}")));
        let mut response = Response::builder()
            .status(reply.status)
            .header("x-upstream", &self.name)
            .header("content-type", "text/plain");
        for (name, value) in &reply.headers {
            response = response.header(name, value);
        }
        response
            .body(Full::new(Bytes::from(reply.body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// 127.0.0.1, any free port: where the test upstreams listen.
const LOOPBACK_ANY_PORT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    0,
));

/// Binds `bind` and hands every accepted connection to `on_connection` (on the runtime) until the
/// returned sender is used or dropped.
fn serve(
    bind: SocketAddr,
    what: &str,
    mut on_connection: impl FnMut(tokio::net::TcpStream) + Send + 'static,
) -> Result<(SocketAddr, oneshot::Sender<()>)> {
    let listener = runtime()
        .block_on(TcpListener::bind(bind))
        .map_err(|e| format!("{what}: cannot bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (shutdown, mut stopped) = oneshot::channel();
    runtime().spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        on_connection(stream);
                    }
                }
            }
        }
    });
    Ok((addr, shutdown))
}

/// A port on 127.0.0.1 where nothing listens (bound by the kernel, then released): connections to
/// it are refused, as to a service that is down.
pub fn closed_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    drop(listener);
    Ok(port)
}

/// A server that breaks every exchange: it reads one request head, writes `partial` (the start of
/// a response), then resets the connection (RST, by closing with a zero linger), as an upstream
/// that crashes mid-response does.
pub struct ResettingUpstream {
    addr: SocketAddr,
    connections: Arc<Mutex<usize>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl ResettingUpstream {
    pub fn start(partial: impl Into<Vec<u8>>) -> Result<Self> {
        let partial: Arc<[u8]> = partial.into().into();
        let connections = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&connections);
        let (addr, shutdown) = serve(LOOPBACK_ANY_PORT, "resetting upstream", move |stream| {
            if let Ok(mut count) = counted.lock() {
                *count += 1;
            }
            tokio::spawn(reset_after(stream, Arc::clone(&partial)));
        })?;
        Ok(Self {
            addr,
            connections,
            shutdown: Some(shutdown),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.lock().map(|count| *count).unwrap_or(0)
    }
}

impl Drop for ResettingUpstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn reset_after(mut stream: tokio::net::TcpStream, partial: Arc<[u8]>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
    }
    let _ = stream.write_all(&partial).await;
    let _ = stream.flush().await;
    // Let the partial response reach the peer before the reset discards what is unsent.
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        stream.read(&mut chunk),
    )
    .await;
    let _ = stream.set_zero_linger();
    drop(stream);
}
