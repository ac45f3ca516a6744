//! The stand-in services of the docker-compose stack, one binary for the `gateway-wasm/standin`
//! image, the role chosen by its argument:
//!
//! - `command-runner`: the app behind the ingress gateway. `/fetch?host=H` calls `http://H/`
//!   through `OUTBOUND_HTTP` (host:port of its way out: its sidecar's outbound HTTP listener);
//!   `/tls?sni=H` opens TLS with SNI H (no SNI when `sni` is absent) through `OUTBOUND_TLS`, trusting
//!   only `CA_CERT`, and sends `GET /` in it. It answers with what came back (`x-egress-upstream`
//!   names the stand-in that served it) or 502 with the error. `/direct?host=H` tries `http://H/`
//!   on `DIRECT_PORT` without the sidecar and the egress gateway: what the network separation must stop.
//! - `google`, `internet`: www.google.com / google.com and the rest of the internet: plain HTTP on
//!   `HTTP_PORT` and HTTPS on `TLS_PORT` with `TLS_CERT` / `TLS_KEY`.
//!
//! Every role prints one JSON line per request it receives on stdout, so `docker compose logs`
//! shows what reached each service (and proves what never did).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use e2e::client::{self, HttpRequest, Protocol, TlsClient};
use e2e::gateways::{query_param, relayed_reply};
use e2e::upstream::{fixed_status, RecordedRequest, Reply, Responder, Upstream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const USAGE: &str = "usage: standin command-runner|google|internet";

fn main() {
    if let Err(error) = run() {
        eprintln!("standin: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let role = std::env::args().nth(1).ok_or(USAGE)?;
    let http_port = port_from_env("HTTP_PORT", 8080)?;
    let _servers = match role.as_str() {
        "command-runner" => {
            let outbound_http = env("OUTBOUND_HTTP")?;
            let outbound_tls = env("OUTBOUND_TLS")?;
            let tls = client_config(Path::new(&env("CA_CERT")?))?;
            let direct_port = port_from_env("DIRECT_PORT", 8080)?;
            let responder = command_runner(outbound_http, outbound_tls, direct_port, tls);
            vec![serve(http_port, &role, responder, None)?]
        }
        "google" | "internet" => {
            let tls_port = port_from_env("TLS_PORT", 8443)?;
            let tls = server_config(Path::new(&env("TLS_CERT")?), Path::new(&env("TLS_KEY")?))?;
            vec![
                serve(http_port, &role, fixed_status(&role, 200), None)?,
                serve(tls_port, &role, fixed_status(&role, 200), Some(tls))?,
            ]
        }
        other => return Err(format!("unknown role {other:?}; {USAGE}")),
    };
    println!("standin {role}: listening");
    // The servers run on the harness's runtime threads until the container is stopped.
    loop {
        std::thread::park();
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
}

fn port_from_env(name: &str, default: u16) -> Result<u16, String> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}: {value:?} is not a port number")),
        Err(_) => Ok(default),
    }
}

/// Listens on every address of the container, printing each request before `responder` answers.
fn serve(
    port: u16,
    role: &str,
    responder: Responder,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Upstream, String> {
    let logged: Responder = Arc::new(move |request| {
        println!("{}", request_record(request));
        responder(request)
    });
    Upstream::start_on(SocketAddr::from(([0, 0, 0, 0], port)), role, logged, tls)
}

fn request_record(request: &RecordedRequest) -> serde_json::Value {
    serde_json::json!({
        "method": request.method,
        "path": request.path,
        "authority": request.authority(),
        "x-route-subset": request.header("x-route-subset"),
        "sni": request.sni,
        "body": String::from_utf8_lossy(&request.body),
    })
}

fn command_runner(
    outbound_http: String,
    outbound_tls: String,
    direct_port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> Responder {
    Arc::new(move |request| {
        let host = query_param(&request.path, "host");
        let outcome = if let (true, Some(host)) = (request.path.starts_with("/direct"), &host) {
            resolve(&format!("{host}:{direct_port}")).and_then(|addr| {
                client::send(addr, Protocol::Http1, None, &HttpRequest::get(host, "/"))
            })
        } else if let Some(host) = host {
            resolve(&outbound_http).and_then(|addr| {
                client::send(addr, Protocol::Http1, None, &HttpRequest::get(&host, "/"))
            })
        } else if request.path.starts_with("/tls") {
            let sni = query_param(&request.path, "sni");
            let tls = TlsClient {
                config: Arc::clone(&tls),
                sni: sni.clone(),
            };
            let authority = sni.unwrap_or_else(|| "no-sni".to_string());
            resolve(&outbound_tls).and_then(|addr| {
                client::send(
                    addr,
                    Protocol::Http1,
                    Some(&tls),
                    &HttpRequest::get(&authority, "/"),
                )
            })
        } else {
            return Reply::new(200, "command-runner: hello\n");
        };
        relayed_reply(outcome)
    })
}

fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    host_port
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {host_port}: {error}"))?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certificate = CertificateDer::from_pem_file(ca)
        .map_err(|error| format!("CA_CERT {}: {error}", ca.display()))?;
    roots
        .add(certificate)
        .map_err(|error| format!("CA_CERT {}: {error}", ca.display()))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("TLS_CERT {}: {error}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| format!("TLS_KEY {}: {error}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| format!("TLS_CERT/TLS_KEY: {error}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
