//! Real HTTP clients for the tests: HTTP/1.1 written byte for byte (so a test can send a Host
//! header no well-behaved library would), and HTTP/2 through hyper; both over plain TCP or TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

use crate::runtime::runtime;
use crate::Result;

const IO_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// A request to send. `authority` goes out as given (Host over HTTP/1.1, `:authority` over HTTP/2).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn get(authority: &str, path: &str) -> Self {
        Self {
            method: "GET".to_string(),
            path: path.to_string(),
            authority: authority.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header_values(&self.headers, name).next()
    }

    /// Every value of a repeated header (such as `set-cookie`), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        crate::header_values(&self.headers, name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// TLS settings for a client connection: whom to trust and which SNI to send (`None`: no SNI).
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub sni: Option<String>,
}

impl TlsClient {
    fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        let (config, name) = self.config_and_name()?;
        let connection = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
        }
        Ok(stream)
    }

    /// Without SNI rustls still needs a name to verify the certificate against: the first DNS
    /// name is taken from `sni` when set, else "localhost" with SNI disabled.
    fn config_and_name(&self) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>)> {
        match &self.sni {
            Some(sni) => Ok((
                Arc::clone(&self.config),
                ServerName::try_from(sni.clone()).map_err(|e| e.to_string())?,
            )),
            None => {
                let mut config = (*self.config).clone();
                config.enable_sni = false;
                Ok((
                    Arc::new(config),
                    ServerName::try_from("localhost").map_err(|e| e.to_string())?,
                ))
            }
        }
    }
}

/// Opens a TLS connection and completes the handshake; `Err` says why it failed (a gateway that
/// closes the connection on a denied SNI makes this fail).
pub fn tls_handshake(addr: SocketAddr, tls: &TlsClient) -> Result<()> {
    let tcp = connect(addr)?;
    tls.connect(tcp).map(|_| ())
}

/// Sends one request and reads the whole response.
pub fn send(
    addr: SocketAddr,
    protocol: Protocol,
    tls: Option<&TlsClient>,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    match protocol {
        Protocol::Http1 => send_http1(addr, tls, request),
        Protocol::Http2 => send_http2(addr, tls, request),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(tcp)
}

fn send_http1(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let mut bytes = format!("{} {} HTTP/1.1\r\n", request.method, request.path).into_bytes();
    bytes.extend_from_slice(format!("host: {}\r\n", request.authority).as_bytes());
    for (name, value) in &request.headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !request.body.is_empty() {
        bytes.extend_from_slice(format!("content-length: {}\r\n", request.body.len()).as_bytes());
    }
    bytes.extend_from_slice(b"connection: close\r\n\r\n");
    bytes.extend_from_slice(&request.body);
    raw_http1(addr, tls, &bytes)
}

/// Writes `bytes` as they are, then reads one response until the server closes the connection.
pub fn raw_http1(addr: SocketAddr, tls: Option<&TlsClient>, bytes: &[u8]) -> Result<HttpResponse> {
    let tcp = connect(addr)?;
    let received = match tls {
        None => exchange(tcp, bytes)?,
        Some(tls) => exchange(tls.connect(tcp)?, bytes)?,
    };
    parse_http1_response(&received)
}

fn exchange(mut stream: impl Read + Write, bytes: &[u8]) -> Result<Vec<u8>> {
    stream.write_all(bytes).map_err(|e| format!("write: {e}"))?;
    stream.flush().map_err(|e| format!("flush: {e}"))?;
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Ok(received),
        // A TLS peer may close without close_notify; what arrived is still the response.
        Err(error) if !received.is_empty() && error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Ok(received)
        }
        Err(error) => Err(format!("read: {error} (after {} bytes)", received.len())),
    }
}

fn parse_http1_response(received: &[u8]) -> Result<HttpResponse> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(received) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(format!(
                "connection closed before a complete response ({} bytes: {:?})",
                received.len(),
                String::from_utf8_lossy(received)
            ))
        }
        Err(error) => return Err(format!("unparsable response: {error}")),
    };
    let status = response.code.unwrap_or(0);
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let raw_body = &received[head_len..];
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(raw_body)?
    } else {
        raw_body.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size line")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|e| format!("bad chunk size: {e}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".to_string());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn send_http2(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    send_http2_on_one_connection(addr, tls, std::slice::from_ref(request))?
        .pop()
        .ok_or_else(|| "no HTTP/2 response".to_string())
}

/// Sends `requests` one after the other as streams of a single HTTP/2 connection (so a test can
/// show that a gateway decides per request, or what connection coalescing meets), and returns
/// their responses in order.
pub fn send_http2_on_one_connection(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    requests: &[HttpRequest],
) -> Result<Vec<HttpResponse>> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    send_http2_with_scheme(addr, tls, scheme, requests)
}

/// As [`send_http2_on_one_connection`], with `:scheme` set to `scheme` whatever the connection
/// (an h2c client may claim `https`).
pub fn send_http2_with_scheme(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    scheme: &str,
    requests: &[HttpRequest],
) -> Result<Vec<HttpResponse>> {
    let http_requests = requests
        .iter()
        .map(|request| http2_request(scheme, request))
        .collect::<Result<Vec<_>>>()?;
    let tls = tls.cloned();
    runtime().block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let exchange = async {
            match tls {
                None => h2_exchange(TokioIo::new(tcp), http_requests).await,
                Some(tls) => {
                    let (config, name) = tls.config_and_name()?;
                    let stream = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS handshake failed: {e}"))?;
                    h2_exchange(TokioIo::new(stream), http_requests).await
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, exchange)
            .await
            .map_err(|_| "HTTP/2 exchange timed out".to_string())?
    })
}

fn http2_request(scheme: &str, request: &HttpRequest) -> Result<hyper::Request<Full<Bytes>>> {
    let uri = format!("{scheme}://{}{}", request.authority, request.path);
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(uri);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| format!("cannot build HTTP/2 request: {e}"))
}

async fn h2_exchange<IO>(
    io: TokioIo<IO>,
    requests: Vec<hyper::Request<Full<Bytes>>>,
) -> Result<Vec<HttpResponse>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| format!("HTTP/2 handshake failed: {e}"))?;
    tokio::spawn(connection);
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP/2 request failed: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("HTTP/2 body: {e}"))?
            .to_bytes()
            .to_vec();
        responses.push(HttpResponse {
            status,
            headers,
            body,
        });
    }
    Ok(responses)
}
