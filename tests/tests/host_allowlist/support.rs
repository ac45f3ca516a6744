//! What the host-allowlist tests share: gateways running the module in real Envoy in front of a
//! recording upstream, and the checks that a request passed to the upstream or was stopped
//! before it.

use std::net::SocketAddr;

use e2e::client::{self, HttpRequest, HttpResponse, Protocol, TlsClient};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::modules::Module;
use e2e::paths;
use e2e::pki::CertificateAuthority;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::{http_filters_yaml, network_filters_yaml, WasmFilter};

pub const REASON_HEADER: &str = "x-gateway-wasm-denied-reason";
pub const ALLOWED: &str = "wasmcustom.host_allowlist.allowed";
pub const DENIED: &str = "wasmcustom.host_allowlist.denied";
pub const AUDIT_DENIED: &str = "wasmcustom.host_allowlist.audit_denied";
pub const MISDIRECTED_BODY: &str =
    "misdirected request: the TLS server name does not match the requested host";

/// What must become of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Reaches the upstream with its authority, and the answer is the upstream's.
    Passes,
    /// The filter answers with the configured denial and this reason; the upstream sees nothing.
    Denied(&'static str),
    /// `421 Misdirected Request` (reason `sni_mismatch`): the TLS server name is another host
    /// than the authority, and not an allowed one. The upstream sees nothing.
    Misdirected,
    /// Refused by Envoy's own HTTP codec (400) before any filter ran; the upstream sees nothing.
    RefusedByEnvoy,
}

/// What became of a request, as observed: [`Expect`] with owned text, or something unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Passed,
    Denied(String),
    Misdirected,
    RefusedByEnvoy,
    Unexpected(String),
}

impl From<Expect> for Observed {
    fn from(expect: Expect) -> Self {
        match expect {
            Expect::Passes => Observed::Passed,
            Expect::Denied(reason) => Observed::Denied(reason.to_string()),
            Expect::Misdirected => Observed::Misdirected,
            Expect::RefusedByEnvoy => Observed::RefusedByEnvoy,
        }
    }
}

/// An Envoy running host-allowlist as an HTTP filter in front of one recording upstream, on a
/// plain-text listener (HTTP/1.1 and h2c) or a TLS-terminating one.
pub struct HttpGateway {
    pub envoy: Envoy,
    pub upstream: Upstream,
    pub addr: SocketAddr,
    /// The TLS-terminating listener's CA, for clients; `None` on a plain-text gateway.
    pub ca: Option<CertificateAuthority>,
    /// The configured denial.
    pub deny_status: u16,
    pub deny_body: String,
}

impl HttpGateway {
    /// A plain-text listener (`tests/envoy/http-gateway.yaml`) running the module with `config`.
    pub fn plain(name: &str, config: &str) -> Self {
        Self::plain_with(name, WasmFilter::http(Module::HostAllowlist, config))
    }

    /// A plain-text listener running `filter`, a host-allowlist HTTP filter.
    pub fn plain_with(name: &str, filter: WasmFilter) -> Self {
        let config = filter.configuration.clone();
        let upstream = Upstream::start(name).unwrap();
        let vars = Vars::new()
            .set("HTTP_FILTERS", http_filters_yaml(&[filter]))
            .set("UPSTREAM_PORT", upstream.port());
        let bootstrap =
            template::render_file(&paths::test_configs_dir().join("http-gateway.yaml"), &vars)
                .unwrap();
        let envoy = Envoy::start(EnvoyOptions::new(name, bootstrap)).unwrap();
        let addr = envoy.listener_addr("gateway").unwrap();
        Self::new(envoy, upstream, addr, None, &config)
    }

    /// A TLS-terminating listener (`tests/envoy/tls-gateway.yaml`, ALPN h2 and http/1.1) whose
    /// certificate, made now by a fresh CA, covers `cert_names`.
    pub fn tls(name: &str, config: &str, cert_names: &[&str]) -> Self {
        let ca = CertificateAuthority::new().unwrap();
        let certificate = ca.issue(cert_names).unwrap();
        let work_dir = Envoy::work_dir(name).unwrap();
        let (cert_path, key_path) = certificate.write_pem(work_dir.path(), "gateway").unwrap();
        let upstream = Upstream::start(name).unwrap();
        let vars = Vars::new()
            .set(
                "HTTP_FILTERS",
                http_filters_yaml(&[WasmFilter::http(Module::HostAllowlist, config)]),
            )
            .set("UPSTREAM_PORT", upstream.port())
            .set("CERT_PATH", cert_path.display())
            .set("KEY_PATH", key_path.display());
        let bootstrap =
            template::render_file(&paths::test_configs_dir().join("tls-gateway.yaml"), &vars)
                .unwrap();
        let envoy = Envoy::start_in(EnvoyOptions::new(name, bootstrap), work_dir).unwrap();
        let addr = envoy.listener_addr("gateway_tls").unwrap();
        Self::new(envoy, upstream, addr, Some(ca), config)
    }

    fn new(
        envoy: Envoy,
        upstream: Upstream,
        addr: SocketAddr,
        ca: Option<CertificateAuthority>,
        config: &str,
    ) -> Self {
        let config: serde_json::Value = serde_json::from_str(config).unwrap();
        let deny_status = config["deny"]["status"].as_u64().unwrap_or(403) as u16;
        let deny_body = config["deny"]["body"]
            .as_str()
            .unwrap_or("host not allowed")
            .to_string();
        Self {
            envoy,
            upstream,
            addr,
            ca,
            deny_status,
            deny_body,
        }
    }

    /// A client of the TLS listener sending `sni` (`None`: no SNI) and offering `protocol` by ALPN.
    pub fn tls_client(&self, protocol: Protocol, sni: Option<&str>) -> TlsClient {
        let ca = self.ca.as_ref().expect("a TLS gateway");
        let alpn: &[&[u8]] = match protocol {
            Protocol::Http1 => &[b"http/1.1"],
            Protocol::Http2 => &[b"h2"],
        };
        TlsClient {
            config: ca.client_config(alpn).unwrap(),
            sni: sni.map(str::to_string),
        }
    }

    pub fn send(
        &self,
        protocol: Protocol,
        tls: Option<&TlsClient>,
        request: &HttpRequest,
    ) -> HttpResponse {
        client::send(self.addr, protocol, tls, request).unwrap_or_else(|error| {
            panic!(
                "{} {protocol:?}: {error}\n{}",
                request.authority,
                self.log_tail()
            )
        })
    }

    /// Sends `request` and checks that it met `expect`; the upstream's record proves it.
    pub fn check(
        &self,
        protocol: Protocol,
        tls: Option<&TlsClient>,
        request: &HttpRequest,
        expect: Expect,
    ) {
        let what = format!("{protocol:?} {:?}", request.authority);
        let before = self.upstream.requests().len();
        let response = self.send(protocol, tls, request);
        let observed = self.observe(&response, before);
        assert_eq!(
            observed,
            Observed::from(expect),
            "{what}\n{}",
            self.log_tail()
        );
    }

    /// Sends `GET /` to each authority in plaintext over HTTP/1.1 and then h2c, and checks that
    /// it met its `Expect` ([`Self::check`]).
    pub fn check_authorities(&self, cases: &[(&str, Expect)]) {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            for &(authority, expect) in cases {
                self.check(protocol, None, &HttpRequest::get(authority, "/"), expect);
            }
        }
    }

    /// Writes `bytes` as an HTTP/1.1 request; what became of it.
    pub fn observe_raw(&self, tls: Option<&TlsClient>, bytes: &[u8]) -> Observed {
        let before = self.upstream.requests().len();
        match client::raw_http1(self.addr, tls, bytes) {
            Ok(response) => self.observe(&response, before),
            Err(error) => Observed::Unexpected(format!("no response: {error}")),
        }
    }

    /// What became of a request, from its response and what the upstream received since it had
    /// seen `upstream_before` requests.
    pub fn observe(&self, response: &HttpResponse, upstream_before: usize) -> Observed {
        let arrived = self.upstream.requests().len() - upstream_before;
        let reason = response.header(REASON_HEADER);
        let served_by_upstream = response.header("x-upstream") == Some(self.upstream.name());
        match (response.status, reason, served_by_upstream, arrived) {
            (200, None, true, 1) => Observed::Passed,
            (status, Some(reason), false, 0)
                if status == self.deny_status
                    && response.body_text() == self.deny_body
                    && response.header("content-type") == Some("text/plain; charset=utf-8") =>
            {
                Observed::Denied(reason.to_string())
            }
            (421, Some("sni_mismatch"), false, 0)
                if response.body_text() == MISDIRECTED_BODY
                    && response.header("content-type") == Some("text/plain; charset=utf-8") =>
            {
                Observed::Misdirected
            }
            (400, None, false, 0) => Observed::RefusedByEnvoy,
            _ => Observed::Unexpected(format!(
                "{} {:?}, reason {reason:?}, x-upstream {:?}, {arrived} request(s) reached the upstream",
                response.status,
                response.body_text(),
                response.header("x-upstream"),
            )),
        }
    }

    /// A counter's value (0 when Envoy has not created it).
    pub fn counter(&self, name: &str) -> u64 {
        self.envoy.stat(name).unwrap().unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        self.envoy.log_tail()
    }
}

/// An Envoy running host-allowlist as a network filter on a TLS passthrough listener
/// (`tests/envoy/tls-passthrough.yaml`) in front of an HTTPS upstream whose certificate covers
/// `cert_names`.
pub struct PassthroughGateway {
    pub envoy: Envoy,
    pub upstream: Upstream,
    pub addr: SocketAddr,
    pub ca: CertificateAuthority,
}

impl PassthroughGateway {
    pub fn start(name: &str, config: &str, cert_names: &[&str]) -> Self {
        Self::start_with(
            name,
            WasmFilter::network(Module::HostAllowlist, config),
            cert_names,
        )
    }

    /// The passthrough listener running `filter`, a host-allowlist network filter.
    pub fn start_with(name: &str, filter: WasmFilter, cert_names: &[&str]) -> Self {
        let ca = CertificateAuthority::new().unwrap();
        let certificate = ca.issue(cert_names).unwrap();
        let upstream = Upstream::start_tls(
            name,
            certificate.server_config(&[b"h2", b"http/1.1"]).unwrap(),
        )
        .unwrap();
        let vars = Vars::new()
            .set("NETWORK_FILTERS", network_filters_yaml(&[filter]))
            .set("UPSTREAM_PORT", upstream.port());
        let bootstrap = template::render_file(
            &paths::test_configs_dir().join("tls-passthrough.yaml"),
            &vars,
        )
        .unwrap();
        let envoy = Envoy::start(EnvoyOptions::new(name, bootstrap)).unwrap();
        let addr = envoy.listener_addr("passthrough").unwrap();
        Self {
            envoy,
            upstream,
            addr,
            ca,
        }
    }

    pub fn client(&self, protocol: Protocol, sni: Option<&str>) -> TlsClient {
        let alpn: &[&[u8]] = match protocol {
            Protocol::Http1 => &[b"http/1.1"],
            Protocol::Http2 => &[b"h2"],
        };
        TlsClient {
            config: self.ca.client_config(alpn).unwrap(),
            sni: sni.map(str::to_string),
        }
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.envoy.stat(name).unwrap().unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        self.envoy.log_tail()
    }
}
