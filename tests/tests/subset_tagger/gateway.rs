//! The fixture: one recording upstream per subset plus one for untagged traffic, and Envoy gateways
//! whose routes send each tag to its subset's cluster, with subset-tagger (or another filter) before
//! the router. The core crate predicts what the filter must decide, so a test can check every request.

use std::net::SocketAddr;
use std::time::Duration;

use e2e::client::{self, HttpRequest, HttpResponse, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::modules::Module;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::{fixed_status, Responder, Upstream};
use e2e::wasm_filter::{http_filters_yaml, WasmFilter};
use gateway_core::subset::{Decision, RequestHost, TaggerConfig};

/// The tag header every configuration here uses, and the routes match.
pub const TAG: &str = "x-route-subset";

/// The subsets the routes know, each with its own cluster and upstream of the same name.
pub const SUBSETS: [&str; 4] = ["v1", "v2", "beta", "google"];

/// The cluster (and upstream) of the default route, which untagged requests take when there is one.
pub const DEFAULT: &str = "default";

/// How long to wait at most for an access-log line (the harness has Envoy flush it every 100 ms;
/// the margin is for a loaded machine).
pub const LOG_WAIT: Duration = Duration::from_secs(30);

/// The upstreams: one per subset and the default one, named like their clusters.
pub struct Subsets {
    upstreams: Vec<Upstream>,
}

impl Subsets {
    /// Every upstream answers 200 naming itself (in the `x-upstream` response header too).
    pub fn start() -> Self {
        Self::start_with(|name| fixed_status(name, 200))
    }

    pub fn start_with(responder: impl Fn(&str) -> Responder) -> Self {
        let upstreams = SUBSETS
            .iter()
            .chain([&DEFAULT])
            .map(|name| Upstream::start_with(name, responder(name), None).unwrap())
            .collect();
        Self { upstreams }
    }

    pub fn get(&self, name: &str) -> &Upstream {
        self.upstreams
            .iter()
            .find(|upstream| upstream.name() == name)
            .unwrap_or_else(|| panic!("no upstream {name}"))
    }

    /// How many requests each upstream received, by name, for failure messages.
    pub fn counts(&self) -> String {
        self.upstreams
            .iter()
            .map(|upstream| format!("{}={}", upstream.name(), upstream.requests().len()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn clusters_yaml(&self) -> String {
        self.upstreams
            .iter()
            .map(|upstream| {
                format!(
                    "- name: {name}\n  type: STATIC\n  connect_timeout: 2s\n  load_assignment:\n    cluster_name: {name}\n    endpoints:\n    - lb_endpoints:\n      - endpoint:\n          address:\n            socket_address: {{address: 127.0.0.1, port_value: {port}}}\n",
                    name = upstream.name(),
                    port = upstream.port(),
                )
            })
            .collect()
    }
}

/// One route of the gateway's table, in order: the first that matches wins.
pub enum Route {
    /// The tag header equals `tag`: the VirtualService `headers` match of a subset.
    Tag {
        tag: &'static str,
        cluster: &'static str,
    },
    /// `:authority` and the tag header both match, as the seed's egress VirtualService writes it.
    AuthorityAndTag {
        authority: &'static str,
        tag: &'static str,
        cluster: &'static str,
    },
    /// Anything: the route for untagged requests.
    Default { cluster: &'static str },
}

impl Route {
    fn yaml(&self) -> String {
        let (headers, cluster) = match self {
            Route::Tag { tag, cluster } => (vec![(TAG, *tag)], cluster),
            Route::AuthorityAndTag {
                authority,
                tag,
                cluster,
            } => (vec![(":authority", *authority), (TAG, *tag)], cluster),
            Route::Default { cluster } => (Vec::new(), cluster),
        };
        let mut yaml = String::from("- match:\n    prefix: \"/\"\n");
        if !headers.is_empty() {
            yaml.push_str("    headers:\n");
            for (name, value) in headers {
                yaml.push_str(&format!(
                    "    - name: \"{name}\"\n      string_match: {{exact: \"{value}\"}}\n"
                ));
            }
        }
        yaml.push_str(&format!("  route: {{cluster: {cluster}}}\n"));
        yaml
    }
}

/// Each subset's tag to its cluster, then, when `default_route`, everything else to [`DEFAULT`].
pub fn subset_routes(default_route: bool) -> Vec<Route> {
    let mut routes: Vec<Route> = SUBSETS
        .iter()
        .map(|subset| Route::Tag {
            tag: subset,
            cluster: subset,
        })
        .collect();
    if default_route {
        routes.push(Route::Default { cluster: DEFAULT });
    }
    routes
}

/// The bootstrap of a gateway with `http_filters` (YAML) before the router and `routes` to the
/// subsets' clusters.
pub fn bootstrap(subsets: &Subsets, http_filters: String, routes: &[Route]) -> String {
    let vars = Vars::new()
        .set("HTTP_FILTERS", http_filters)
        .set("ROUTES", routes.iter().map(Route::yaml).collect::<String>())
        .set("CLUSTERS", subsets.clusters_yaml());
    template::render_file(
        &paths::test_configs_dir().join("routed-gateway.yaml"),
        &vars,
    )
    .unwrap()
}

/// The `http_filters` entry of subset-tagger with `config`.
pub fn tagger_filter(config: &str) -> String {
    http_filters_yaml(&[WasmFilter::http(Module::SubsetTagger, config)])
}

/// A running gateway and where it listens.
pub struct Gateway {
    pub envoy: Envoy,
    pub addr: SocketAddr,
}

impl Gateway {
    /// Starts Envoy on [`bootstrap`] with `concurrency` workers.
    pub fn start(
        name: &str,
        subsets: &Subsets,
        http_filters: String,
        routes: &[Route],
        concurrency: u32,
    ) -> Self {
        let mut options = EnvoyOptions::new(name, bootstrap(subsets, http_filters, routes));
        options.concurrency = concurrency;
        let envoy = Envoy::start(options).unwrap();
        let addr = envoy.listener_addr("gateway").unwrap();
        Self { envoy, addr }
    }

    /// subset-tagger with `config` in front of [`subset_routes`].
    pub fn tagger(name: &str, subsets: &Subsets, config: &str, default_route: bool) -> Self {
        Self::start(
            name,
            subsets,
            tagger_filter(config),
            &subset_routes(default_route),
            1,
        )
    }

    /// Sends one request; a transport failure fails the test with Envoy's log.
    pub fn send(&self, protocol: Protocol, request: &HttpRequest) -> HttpResponse {
        client::send(self.addr, protocol, None, request).unwrap_or_else(|error| {
            panic!(
                "{protocol:?} {} {}: {error}\n{}",
                request.authority,
                request.path,
                self.log_tail()
            )
        })
    }

    /// The filter's counter `subset_tagger.<name>`; 0 when it was never incremented.
    pub fn counter(&self, name: &str) -> u64 {
        self.envoy
            .stat(&format!("wasmcustom.subset_tagger.{name}"))
            .unwrap()
            .unwrap_or(0)
    }

    /// The requests tagged `subset`: the counter `subset_tagger.tagged` with that `subset` tag.
    pub fn tagged(&self, subset: &str) -> u64 {
        self.envoy
            .stat(&format!(
                "wasmcustom.subset=.={subset};.;subset_tagger.tagged"
            ))
            .unwrap()
            .unwrap_or(0)
    }

    /// Waits for the access-log line of the request with `path` and returns it.
    pub fn access_line(&self, path: &str) -> String {
        let needle = format!("access path={path} ");
        let log = self.envoy.wait_for_log(&needle, LOG_WAIT).unwrap();
        log.lines()
            .find(|line| line.contains(&needle))
            .map(str::to_string)
            .unwrap_or_default()
    }

    /// Fails the test if a Wasm filter logged an error, such as the tagger's "clear_route_cache
    /// failed" (the foreign function missing from this Envoy).
    pub fn assert_no_wasm_errors(&self) {
        let log = self.envoy.log();
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("[error][wasm]"))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: Wasm errors:\n{}",
            self.envoy.name(),
            errors.join("\n")
        );
    }

    pub fn log_tail(&self) -> String {
        self.envoy.log_tail()
    }
}

/// Request headers a test case adds, as (name, value).
pub type Headers<'a> = Vec<(&'a str, &'a str)>;

/// A GET with `headers` added in order (a name given twice is sent twice).
pub fn get(authority: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    headers.iter().fold(
        HttpRequest::get(authority, path),
        |request, (name, value)| request.header(name, value),
    )
}

/// The upstream that served a response (the `x-upstream` header every upstream here adds), or
/// `None` when Envoy answered itself.
pub fn served_by(response: &HttpResponse) -> Option<&str> {
    response.header("x-upstream")
}

/// The core's compiled configuration, the same JSON the filter gets.
pub fn core_config(json: &str) -> TaggerConfig {
    TaggerConfig::from_json(json.as_bytes()).unwrap_or_else(|errors| panic!("{errors}"))
}

/// What the core decides for `request` as Envoy hands it to the filter. Only for requests whose
/// tag needs no randomness: a split without a sticky key would make the prediction a guess.
pub fn core_decision(config: &TaggerConfig, request: &HttpRequest) -> Decision {
    config.decide(&mut Predicted { request })
}

/// Where the core says `request` must land: its subset's upstream, or the default one.
pub fn predicted_upstream(config: &TaggerConfig, request: &HttpRequest) -> String {
    core_decision(config, request)
        .tagged_subset()
        .unwrap_or(DEFAULT)
        .to_string()
}

struct Predicted<'r> {
    request: &'r HttpRequest,
}

impl RequestHost for Predicted<'_> {
    fn request_headers(&self) -> Vec<(String, String)> {
        let request = self.request;
        let mut headers = vec![
            (":authority".to_string(), request.authority.clone()),
            (":path".to_string(), request.path.clone()),
            (":method".to_string(), request.method.clone()),
            (":scheme".to_string(), "http".to_string()),
        ];
        headers.extend(
            request
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone())),
        );
        headers
    }

    fn random_u64(&mut self) -> u64 {
        panic!(
            "the prediction of {:?} needed randomness: give it a sticky key",
            self.request
        )
    }
}
