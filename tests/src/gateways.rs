//! The local ingress and egress gateways of the demo: the configurations in `gateways/`, run in
//! real Envoy with the command-runner app behind the ingress and stand-ins for the outside world
//! behind the egress. `cargo xtask demo` shows them; the end-to-end tests run the same thing.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::client::{self, HttpRequest, Protocol};
use crate::envoy::{Envoy, EnvoyOptions};
use crate::modules;
use crate::paths;
use crate::template::{self, Vars};
use crate::upstream::{Reply, Responder, Upstream};
use crate::Result;

/// The public name of the app behind the ingress gateway.
pub const APP_HOST: &str = "command-runner.example.com";

/// Ports to listen on; 0 lets the kernel choose.
#[derive(Debug, Clone, Copy)]
pub struct GatewayPorts {
    pub ingress_admin: u16,
    pub ingress_http: u16,
    pub egress_admin: u16,
    pub egress_http: u16,
}

impl GatewayPorts {
    /// Any free ports: for tests, which run in parallel.
    pub fn any() -> Self {
        Self {
            ingress_admin: 0,
            ingress_http: 0,
            egress_admin: 0,
            egress_http: 0,
        }
    }

    /// Fixed ports, so a person can point curl at the demo.
    pub fn demo() -> Self {
        Self {
            ingress_admin: 19000,
            ingress_http: 10080,
            egress_admin: 19001,
            egress_http: 10081,
        }
    }
}

/// Both gateways with everything behind them. Dropping it stops all of it.
pub struct LocalGateways {
    /// The command-runner app behind the ingress gateway; `/fetch?host=H` makes it call `http://H/`
    /// through the egress gateway, as its sidecar would send it there.
    pub app: Upstream,
    /// Stand-in for www.google.com and google.com (the `google` subset).
    pub google: Upstream,
    /// Stand-in for the rest of the internet.
    pub internet: Upstream,
    pub ingress: Envoy,
    pub egress: Envoy,
}

impl LocalGateways {
    pub fn start(ports: GatewayPorts) -> Result<Self> {
        modules::build_once()?;
        let egress_addr: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
        let app = Upstream::start_with("command-runner", command_runner(Arc::clone(&egress_addr)), None)?;
        let google = Upstream::start("google")?;
        let internet = Upstream::start("internet")?;

        let egress_vars = common_vars(ports.egress_admin)
            .set("EGRESS_HTTP_PORT", ports.egress_http)
            .set("GOOGLE_HOST", "127.0.0.1")
            .set("GOOGLE_PORT", google.port())
            .set("INTERNET_HOST", "127.0.0.1")
            .set("INTERNET_PORT", internet.port());
        let egress = Envoy::start(EnvoyOptions::new("egress", render("egress-gateway.yaml", &egress_vars)?))?;
        let _ = egress_addr.set(egress.listener_addr("egress_http")?);

        let ingress_vars = common_vars(ports.ingress_admin)
            .set("INGRESS_HTTP_PORT", ports.ingress_http)
            .set("APP_HOST", "127.0.0.1")
            .set("APP_PORT", app.port());
        let ingress = Envoy::start(EnvoyOptions::new("ingress", render("ingress-gateway.yaml", &ingress_vars)?))?;

        Ok(Self {
            app,
            google,
            internet,
            ingress,
            egress,
        })
    }

    pub fn ingress_http(&self) -> Result<SocketAddr> {
        self.ingress.listener_addr("ingress_http")
    }

    pub fn egress_http(&self) -> Result<SocketAddr> {
        self.egress.listener_addr("egress_http")
    }
}

fn common_vars(admin_port: u16) -> Vars {
    Vars::new()
        .set("BIND_ADDRESS", "127.0.0.1")
        .set("ADMIN_PORT", admin_port)
        .set("WASM_DIR", paths::wasm_dir().display())
}

fn render(file: &str, vars: &Vars) -> Result<String> {
    template::render_file(&paths::gateway_configs_dir().join(file), vars)
}

/// The app: `/fetch?host=H` calls `http://H/` through the egress gateway and answers with what the
/// egress gateway answered (status, body, and which upstream served it as `x-egress-upstream`);
/// anything else is a greeting.
fn command_runner(egress: Arc<OnceLock<SocketAddr>>) -> Responder {
    Arc::new(move |request| {
        let Some(host) = query_param(&request.path, "host") else {
            return Reply::new(200, "command-runner: hello\n");
        };
        let Some(egress) = egress.get() else {
            return Reply::new(503, "command-runner: egress gateway not up yet\n");
        };
        match client::send(*egress, Protocol::Http1, None, &HttpRequest::get(&host, "/")) {
            Ok(response) => {
                let mut reply = Reply::new(response.status, response.body.clone());
                if let Some(upstream) = response.header("x-upstream") {
                    reply.headers.push(("x-egress-upstream".to_string(), upstream.to_string()));
                }
                reply
            }
            Err(error) => Reply::new(502, format!("command-runner: egress call failed: {error}\n")),
        }
    })
}

fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

/// One step of the walk-through: what was done, what happened, whether it behaved.
#[derive(Debug, Clone)]
pub struct Step {
    pub title: String,
    pub details: Vec<String>,
    pub ok: bool,
}

/// The seed's story, step by step: client → ingress → app; app → egress → external.
pub fn walkthrough(gateways: &LocalGateways) -> Vec<Step> {
    let ingress = match gateways.ingress_http() {
        Ok(addr) => addr,
        Err(error) => {
            return vec![Step {
                title: "find the ingress gateway".to_string(),
                details: vec![error],
                ok: false,
            }]
        }
    };
    vec![
        request_step(
            "client → ingress gateway → command-runner app",
            ingress,
            &HttpRequest::get(APP_HOST, "/"),
            Expect { status: 200, served_by: ("x-upstream", "command-runner") },
        ),
        egress_step(gateways, ingress, "www.google.com"),
        egress_step(gateways, ingress, "google.com"),
    ]
}

struct Expect {
    status: u16,
    /// A response header naming the upstream that must have served the request.
    served_by: (&'static str, &'static str),
}

fn request_step(title: &str, addr: SocketAddr, request: &HttpRequest, expect: Expect) -> Step {
    let shown = format!("GET http://{}{} (via {addr})", request.authority, request.path);
    match client::send(addr, Protocol::Http1, None, request) {
        Ok(response) => {
            let (header, upstream) = expect.served_by;
            let served_by = response.header(header).unwrap_or("-");
            let ok = response.status == expect.status && served_by == upstream;
            Step {
                title: title.to_string(),
                details: vec![
                    shown,
                    format!("→ {} from {served_by}: {}", response.status, response.body_text().trim()),
                    format!("expected {} from {upstream}", expect.status),
                ],
                ok,
            }
        }
        Err(error) => Step {
            title: title.to_string(),
            details: vec![shown, format!("→ failed: {error}")],
            ok: false,
        },
    }
}

/// The app calls `host` through the egress gateway; the `google` stand-in must serve it and see
/// the original Host.
fn egress_step(gateways: &LocalGateways, ingress: SocketAddr, host: &str) -> Step {
    let before = gateways.google.requests().len();
    let mut step = request_step(
        &format!("command-runner app → egress gateway → {host}"),
        ingress,
        &HttpRequest::get(APP_HOST, &format!("/fetch?host={host}")),
        Expect { status: 200, served_by: ("x-egress-upstream", "google") },
    );
    let seen = gateways.google.requests();
    let arrived = seen.get(before..).unwrap_or_default();
    let saw_host = arrived.iter().any(|request| request.authority() == Some(host));
    step.details.push(format!(
        "the {host} stand-in received {} request(s){}",
        arrived.len(),
        if saw_host { format!(" for Host {host}") } else { String::new() }
    ));
    step.ok &= saw_host;
    step
}
