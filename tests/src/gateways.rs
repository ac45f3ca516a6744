//! The local ingress and egress gateways of the demo and command-runner's sidecar: the
//! configurations in `gateways/` (rendered from `wasm-plugins-manifests/` by `cargo xtask render`),
//! run in real Envoy with the command-runner app behind the ingress, its outbound calls through the
//! sidecar, and stand-ins for the outside world behind the egress. `cargo xtask demo` shows them;
//! the end-to-end tests run the same thing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::client::{self, HttpRequest, HttpResponse, Protocol};
use crate::envoy::{Envoy, EnvoyOptions};
use crate::modules;
use crate::paths;
use crate::pki::CertificateAuthority;
use crate::template::{self, Vars};
use crate::upstream::{fixed_status, Reply, Responder, Upstream};
use crate::Result;

/// The public name of the app behind the ingress gateway.
pub const APP_HOST: &str = "command-runner.example.com";
/// The external hosts the egress gateway lets out.
pub const ALLOWED_EXTERNAL_HOSTS: [&str; 2] = ["www.google.com", "google.com"];

/// Ports to listen on; 0 lets the kernel choose.
#[derive(Debug, Clone, Copy)]
pub struct GatewayPorts {
    pub ingress_admin: u16,
    pub ingress_http: u16,
    pub egress_admin: u16,
    pub egress_http: u16,
    pub egress_tls: u16,
    pub sidecar_admin: u16,
    pub sidecar_http: u16,
    pub sidecar_tls: u16,
}

impl GatewayPorts {
    /// Any free ports: for tests, which run in parallel.
    pub fn any() -> Self {
        Self {
            ingress_admin: 0,
            ingress_http: 0,
            egress_admin: 0,
            egress_http: 0,
            egress_tls: 0,
            sidecar_admin: 0,
            sidecar_http: 0,
            sidecar_tls: 0,
        }
    }

    /// Fixed ports, so a person can point curl at the demo.
    pub fn demo() -> Self {
        Self {
            ingress_admin: 19000,
            ingress_http: 10080,
            egress_admin: 19001,
            egress_http: 10081,
            egress_tls: 10443,
            sidecar_admin: 19002,
            sidecar_http: 10082,
            sidecar_tls: 10444,
        }
    }
}

/// Which rendering of the gateways runs: the shipped manifests' (`gateways/`) or a component's
/// (`gateways/<dir>/`, rendered from its `tests/kustomize/` fixture). The sidecar is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayVariant {
    /// Envoy's native JSON access log, every request and connection.
    Shipped,
    /// kustomize/wasm-access-log: the access-log module's record, and its HTTP sink's batches to
    /// the collector.
    WasmAccessLog,
    /// kustomize/sampled-access-log: the native record behind its CEL filter.
    SampledAccessLog,
}

impl GatewayVariant {
    fn dir(self) -> &'static str {
        match self {
            GatewayVariant::Shipped => "",
            GatewayVariant::WasmAccessLog => "wasm-access-log",
            GatewayVariant::SampledAccessLog => "sampled-access-log",
        }
    }
}

/// Both gateways with everything behind them. Dropping it stops all of it.
pub struct LocalGateways {
    /// The command-runner app behind the ingress gateway; `/fetch?host=H` makes it call `http://H/`
    /// through its sidecar, which sends it to the egress gateway (or nowhere).
    pub app: Upstream,
    /// Stand-in for www.google.com and google.com (the `google` subset), over HTTP and HTTPS. Over
    /// HTTP, [`UNAVAILABLE_PATH`] answers 503: an external service failing.
    pub google: Upstream,
    pub google_tls: Upstream,
    /// Stand-in for the rest of the internet (evil.example.com has a ServiceEntry in the local-only
    /// manifests, but no allowlist lists it), over HTTP and HTTPS.
    pub internet: Upstream,
    pub internet_tls: Upstream,
    /// Stands in for log-collector.observability, where the Wasm access log's HTTP sink sends its
    /// NDJSON batches: only with [`GatewayVariant::WasmAccessLog`].
    pub collector: Option<Upstream>,
    /// Trusted by the stand-ins' certificates; a TLS client of the stand-ins needs it.
    pub ca: CertificateAuthority,
    pub ingress: Envoy,
    pub egress: Envoy,
    /// command-runner's sidecar (gateways/sidecar.yaml): the app's outbound side.
    pub sidecar: Envoy,
    pub variant: GatewayVariant,
}

impl LocalGateways {
    /// The shipped gateways.
    pub fn start(ports: GatewayPorts) -> Result<Self> {
        Self::start_variant(ports, GatewayVariant::Shipped)
    }

    pub fn start_variant(ports: GatewayPorts, variant: GatewayVariant) -> Result<Self> {
        modules::build_once()?;
        let ca = CertificateAuthority::new()?;
        let sidecar_addr: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
        let app = Upstream::start_with(
            "command-runner",
            command_runner(Arc::clone(&sidecar_addr)),
            None,
        )?;
        let google = Upstream::start_with("google", google_responder(), None)?;
        let google_tls = Upstream::start_tls(
            "google",
            ca.issue(&ALLOWED_EXTERNAL_HOSTS)?
                .server_config(&[b"http/1.1"])?,
        )?;
        let internet = Upstream::start("internet")?;
        let internet_tls = Upstream::start_tls(
            "internet",
            ca.issue(&["internet.example"])?
                .server_config(&[b"http/1.1"])?,
        )?;
        let collector = match variant {
            GatewayVariant::WasmAccessLog => Some(Upstream::start("log-collector")?),
            GatewayVariant::Shipped | GatewayVariant::SampledAccessLog => None,
        };

        let egress_dir = Envoy::work_dir("egress")?;
        let egress_vars = egress_gateway_vars(
            ports.egress_admin,
            ports.egress_http,
            ports.egress_tls,
            &egress_dir.path().join("access.log"),
            EgressUpstreamPorts {
                google: google.port(),
                google_tls: google_tls.port(),
                internet: internet.port(),
                internet_tls: internet_tls.port(),
                // Only the Wasm access log's rendering has the collector's cluster.
                collector: collector.as_ref().map_or(0, Upstream::port),
            },
        );
        let egress = Envoy::start_in(
            EnvoyOptions::new(
                "egress",
                render(variant, "egress-gateway.yaml", &egress_vars)?,
            ),
            egress_dir,
        )?;

        let sidecar_vars = common_vars(ports.sidecar_admin)
            .set("SIDECAR_HTTP_PORT", ports.sidecar_http)
            .set("SIDECAR_TLS_PORT", ports.sidecar_tls)
            .set("EGRESS_GATEWAY_HOST", "127.0.0.1")
            .set(
                "EGRESS_GATEWAY_HTTP_PORT",
                egress.listener_addr("egress_http")?.port(),
            )
            .set(
                "EGRESS_GATEWAY_TLS_PORT",
                egress.listener_addr("egress_tls")?.port(),
            );
        let sidecar = Envoy::start(EnvoyOptions::new(
            "sidecar",
            render(GatewayVariant::Shipped, "sidecar.yaml", &sidecar_vars)?,
        ))?;
        let _ = sidecar_addr.set(sidecar.listener_addr("sidecar_http")?);

        let ingress_dir = Envoy::work_dir("ingress")?;
        let ingress_vars = common_vars(ports.ingress_admin)
            .set(
                "ACCESS_LOG_PATH",
                ingress_dir.path().join("access.log").display(),
            )
            .set("INGRESS_HTTP_PORT", ports.ingress_http)
            .set("APP_HOST", "127.0.0.1")
            .set("APP_PORT", app.port());
        let ingress = Envoy::start_in(
            EnvoyOptions::new(
                "ingress",
                render(variant, "ingress-gateway.yaml", &ingress_vars)?,
            ),
            ingress_dir,
        )?;

        Ok(Self {
            app,
            google,
            google_tls,
            internet,
            internet_tls,
            collector,
            ca,
            ingress,
            egress,
            sidecar,
            variant,
        })
    }

    pub fn ingress_http(&self) -> Result<SocketAddr> {
        self.ingress.listener_addr("ingress_http")
    }

    pub fn egress_http(&self) -> Result<SocketAddr> {
        self.egress.listener_addr("egress_http")
    }

    pub fn egress_tls(&self) -> Result<SocketAddr> {
        self.egress.listener_addr("egress_tls")
    }

    /// The app's sidecar, its outbound HTTP (port 80) listener.
    pub fn sidecar_http(&self) -> Result<SocketAddr> {
        self.sidecar.listener_addr("sidecar_http")
    }

    /// The app's sidecar, its outbound TLS (port 443) listener.
    pub fn sidecar_tls(&self) -> Result<SocketAddr> {
        self.sidecar.listener_addr("sidecar_tls")
    }

    /// The file Envoy's own access logger writes the records to (the provider's /dev/stdout in
    /// Istio).
    pub fn access_log_path(envoy: &Envoy) -> PathBuf {
        envoy.work_path().join("access.log")
    }
}

/// The path the google stand-in answers 503 on.
pub const UNAVAILABLE_PATH: &str = "/unavailable";

fn google_responder() -> Responder {
    let ok = fixed_status("google", 200);
    let unavailable = fixed_status("google", 503);
    Arc::new(move |request| {
        if request.path == UNAVAILABLE_PATH {
            unavailable(request)
        } else {
            ok(request)
        }
    })
}

/// The placeholders every rendered configuration has: where it binds, its admin port and where
/// the modules are.
pub fn common_vars(admin_port: u16) -> Vars {
    Vars::new()
        .set("BIND_ADDRESS", "127.0.0.1")
        .set("ADMIN_PORT", admin_port)
        .set("WASM_DIR", paths::wasm_dir().display())
}

/// The local stand-ins behind an egress gateway, all on 127.0.0.1: the `google` subset and the
/// rest of the internet (over HTTP and HTTPS), and the access log's collector.
#[derive(Debug, Clone, Copy)]
pub struct EgressUpstreamPorts {
    pub google: u16,
    pub google_tls: u16,
    pub internet: u16,
    pub internet_tls: u16,
    pub collector: u16,
}

impl EgressUpstreamPorts {
    /// Stand-ins over HTTP only, for a gateway no TLS is sent through: the TLS ports are the HTTP
    /// ones, never reached.
    pub fn http_only(google: u16, internet: u16, collector: u16) -> Self {
        Self {
            google,
            google_tls: google,
            internet,
            internet_tls: internet,
            collector,
        }
    }
}

/// The placeholders of a rendered egress gateway configuration (`gateways/egress-gateway.yaml`
/// and its variants): its own ports, its access log file and the stand-ins it sends to.
pub fn egress_gateway_vars(
    admin_port: u16,
    http_port: u16,
    tls_port: u16,
    access_log: &Path,
    upstreams: EgressUpstreamPorts,
) -> Vars {
    common_vars(admin_port)
        .set("ACCESS_LOG_PATH", access_log.display())
        .set("EGRESS_HTTP_PORT", http_port)
        .set("EGRESS_TLS_PORT", tls_port)
        .set("GOOGLE_HOST", "127.0.0.1")
        .set("GOOGLE_PORT", upstreams.google)
        .set("GOOGLE_TLS_PORT", upstreams.google_tls)
        .set("INTERNET_HOST", "127.0.0.1")
        .set("INTERNET_PORT", upstreams.internet)
        .set("INTERNET_TLS_PORT", upstreams.internet_tls)
        .set("COLLECTOR_HOST", "127.0.0.1")
        .set("COLLECTOR_PORT", upstreams.collector)
}

fn render(variant: GatewayVariant, file: &str, vars: &Vars) -> Result<String> {
    template::render_file(
        &paths::gateway_configs_dir().join(variant.dir()).join(file),
        vars,
    )
}

/// The app: `/fetch?host=H` calls `http://H/` through its sidecar and answers with what came back
/// (status, body, and which upstream served it as `x-egress-upstream`); anything else is a
/// greeting.
fn command_runner(sidecar: Arc<OnceLock<SocketAddr>>) -> Responder {
    Arc::new(move |request| {
        let Some(host) = query_param(&request.path, "host") else {
            return Reply::new(200, "command-runner: hello\n");
        };
        let Some(sidecar) = sidecar.get() else {
            return Reply::new(503, "command-runner: sidecar not up yet\n");
        };
        relayed_reply(client::send(
            *sidecar,
            Protocol::Http1,
            None,
            &HttpRequest::get(&host, "/"),
        ))
    })
}

/// command-runner's answer to an outbound call: what came back, naming the stand-in that served
/// it as `x-egress-upstream`, or 502 with the error.
pub fn relayed_reply(outcome: Result<HttpResponse>) -> Reply {
    match outcome {
        Ok(response) => {
            let mut reply = Reply::new(response.status, response.body.clone());
            if let Some(upstream) = response.header("x-upstream") {
                reply
                    .headers
                    .push(("x-egress-upstream".to_string(), upstream.to_string()));
            }
            reply
        }
        Err(error) => Reply::new(
            502,
            format!("command-runner: outbound call failed: {error}\n"),
        ),
    }
}

/// The value of query parameter `name` in a request's `path`.
pub fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}
