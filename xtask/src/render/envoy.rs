//! Envoy configuration emission: the gateway and sidecar listeners, routes and clusters istiod
//! would send, written as the static YAML the local Envoys run, with `{{PLACEHOLDER}}`s for what
//! is local (ports, addresses, where the modules and certificates are).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::istiod::{self, ChainType, LoggingConfig};
use super::local::{self, placeholder};
use super::manifests::{
    DestinationRule, HttpRoute, Manifests, RouteDestination, Server, TlsRoute, WasmPlugin,
};

/// The gateway Deployment a rendering stands for.
pub struct GatewayProxy<'a> {
    /// `egress` or `ingress`: the prefix of its listener names and port placeholders.
    pub role: &'a str,
    pub labels: BTreeMap<String, String>,
}

/// The clusters a configuration refers to, emitted after its listeners.
#[derive(Default)]
struct Clusters(BTreeMap<String, String>);

impl Clusters {
    fn add(&mut self, name: String, body: String) {
        self.0.entry(name).or_insert(body);
    }
}

pub fn gateway(
    manifests: &Manifests,
    proxy: &GatewayProxy,
    header: &str,
) -> Result<String, String> {
    // A Gateway applies to the proxies its selector picks (pilot/pkg/model/push_context.go,
    // `mergeGateways`); servers on the same port are merged into one listener
    // (pilot/pkg/model/gateway.go, `mergeGateways`).
    let mut servers_by_port: BTreeMap<u32, Vec<(&str, &str, &Server)>> = BTreeMap::new();
    for gateway in &manifests.gateways {
        let selected = !gateway.spec.selector.is_empty()
            && gateway
                .spec
                .selector
                .iter()
                .all(|(key, value)| proxy.labels.get(key) == Some(value));
        if !selected {
            continue;
        }
        for server in &gateway.spec.servers {
            servers_by_port
                .entry(server.port.number)
                .or_default()
                .push((
                    gateway.meta.name.as_str(),
                    gateway.meta.namespace.as_str(),
                    server,
                ));
        }
    }
    if servers_by_port.is_empty() {
        return Err(format!("no Gateway selects {:?}", proxy.labels));
    }
    // Istio's gateway Deployments run in istio-system, the root namespace.
    let logs = istiod::access_logging(manifests, istiod::ROOT_NAMESPACE, &proxy.labels)?;
    let mut clusters = Clusters::default();
    let mut listeners = Vec::new();
    for (port, servers) in &servers_by_port {
        let container_port = istiod::gateway_container_port(*port)?;
        let protocol = servers[0].2.port.protocol.as_str();
        if servers
            .iter()
            .any(|(_, _, server)| server.port.protocol != protocol)
        {
            return Err(format!("Gateway servers on port {port} mix protocols"));
        }
        let tls_modes: BTreeSet<Option<&str>> = servers
            .iter()
            .map(|(_, _, server)| server.tls_mode())
            .collect();
        let only = |mode: Option<&str>| tls_modes.len() == 1 && tls_modes.contains(&mode);
        let gateway_port = GatewayPort {
            manifests,
            proxy,
            number: *port,
            container_port,
            servers,
            logs: &logs,
        };
        let listener = match protocol {
            "HTTP" | "HTTP2" if only(None) => gateway_http_listener(&gateway_port, &mut clusters)?,
            "HTTPS" if only(Some("ISTIO_MUTUAL")) => {
                gateway_http_listener(&gateway_port, &mut clusters)?
            }
            "TLS" | "HTTPS" if only(Some("PASSTHROUGH")) => {
                gateway_passthrough_listener(&gateway_port, &mut clusters)?
            }
            other => {
                return Err(format!(
                    "Gateway server port {port}: protocol {other} with TLS modes {tls_modes:?}: \
                     the local rendering knows HTTP, HTTPS with ISTIO_MUTUAL, and TLS or HTTPS \
                     with PASSTHROUGH"
                ))
            }
        };
        listeners.push(listener);
    }
    for plugin in &manifests.plugins {
        if istiod::selects(plugin, &proxy.labels) {
            plugin_clusters(plugin, &mut clusters)?;
        }
    }
    Ok(document(header, &listeners, &clusters))
}

fn document(header: &str, listeners: &[String], clusters: &Clusters) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(format!("# {line}").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "admin:\n  address:\n    socket_address: {{address: {}, port_value: {}}}\n",
        placeholder("BIND_ADDRESS"),
        placeholder("ADMIN_PORT")
    ));
    out.push_str("static_resources:\n  listeners:\n");
    for listener in listeners {
        out.push_str(&indent(listener, 2));
    }
    out.push_str("  clusters:\n");
    for body in clusters.0.values() {
        out.push_str(&indent(body, 2));
    }
    out
}

fn indent(block: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    block
        .lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_string()
            } else {
                format!("{pad}{line}\n")
            }
        })
        .collect()
}

/// A listener's first lines: which of istiod's listeners it stands for (a comment), its name, and
/// its address, its port the placeholder `<NAME>_PORT`.
fn listener_head(istio_listener: &str, name: &str) -> String {
    let mut out: String = istio_listener
        .lines()
        .map(|line| format!("# {line}\n"))
        .collect();
    out.push_str(&format!(
        "- name: {name}\n  address:\n    socket_address: {{address: {}, port_value: {}}}\n",
        placeholder("BIND_ADDRESS"),
        placeholder(&format!("{}_PORT", name.to_uppercase()))
    ));
    out
}

/// A `tcp_proxy` network filter sending the connection to `cluster`, whose name is also its stat
/// prefix, as istiod names them.
fn tcp_proxy(cluster: &str) -> String {
    format!(
        "- name: envoy.filters.network.tcp_proxy\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n    stat_prefix: \"{cluster}\"\n    cluster: \"{cluster}\"\n"
    )
}

/// The `access_log:` entries of one place (a connection manager, a `tcp_proxy`, a listener): one
/// per Telemetry access log, each with the Telemetry's CEL filter and, on a listener, istiod's NR
/// filter before it (pilot/pkg/networking/core/accesslog.go, `buildAccessLogFromTelemetry`: both
/// in an `and_filter`). Empty when no Telemetry logs this proxy.
fn access_logs(logs: &[LoggingConfig], response_flags: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    for log in logs {
        out.push_str(&file_access_log(log)?);
        let mut filters = Vec::new();
        if let Some(flags) = response_flags {
            filters.push(format!("response_flag_filter: {{flags: [\"{flags}\"]}}\n"));
        }
        if let Some(expression) = log.filter {
            // pilot/pkg/networking/core/accesslog.go, `buildAccessLogFilterFromTelemetry`.
            filters.push(format!(
                "extension_filter:\n  name: envoy.access_loggers.extension_filters.cel\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter\n    expression: {}\n",
                yaml_string(expression)
            ));
        }
        match filters.as_slice() {
            [] => {}
            [one] => {
                out.push_str("  filter:\n");
                out.push_str(&indent(one, 4));
            }
            several => {
                out.push_str("  filter:\n    and_filter:\n      filters:\n");
                for filter in several {
                    out.push_str(&indent(&format!("- {}", indent(filter, 2).trim_start()), 6));
                }
            }
        }
    }
    Ok(out)
}

/// A provider's file logger as istiod builds it (pilot/pkg/model/telemetry_logging.go,
/// `fileAccessLogFromTelemetry`): `labels` become the `json_format` as written, nested objects
/// included, unsorted (`buildFileAccessJSONLogFormat`); `text` becomes `text_format_source` with a
/// newline added when missing (`fileAccessLogFormat`); `omitEmptyValues` is passed on. The
/// provider's `path` (`/dev/stdout` on a gateway) is the placeholder `{{ACCESS_LOG_PATH}}` here.
fn file_access_log(log: &LoggingConfig) -> Result<String, String> {
    let provider = log.provider;
    let format = log.file.log_format.as_ref();
    let log_format = match (
        format.and_then(|f| f.text.as_deref()),
        format.and_then(|f| f.labels.as_ref()),
    ) {
        (Some(text), None) if !text.is_empty() => {
            let mut text = text.to_string();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            format!(
                "text_format_source:\n  inline_string: {}\n",
                yaml_string(&text)
            )
        }
        (None, Some(labels)) if !labels.is_empty() => {
            // istiod adds Envoy formatter extensions for %REQ_WITHOUT_QUERY%, %METADATA% and %CEL%
            // (`accessLogJSONFormatters`); the local rendering does not, so it refuses them.
            let labels_json = serde_json::to_string(labels).unwrap_or_default();
            for operator in ["%REQ_WITHOUT_QUERY", "%METADATA", "%CEL"] {
                if labels_json.contains(operator) {
                    return Err(format!(
                        "access-log provider {provider:?}: {operator}%: the local rendering adds no formatter extension for it"
                    ));
                }
            }
            format!(
                "json_format:\n{}json_format_options: {{sort_properties: false}}\n",
                indent(&yaml_struct(labels, provider)?, 2)
            )
        }
        _ => {
            return Err(format!(
                "access-log provider {provider:?}: logFormat needs exactly one of a non-empty `text` or `labels` (istiod's default formats are not rendered locally)"
            ))
        }
    };
    let mut out = format!(
        "# Telemetry access log, provider {provider}\n- name: envoy.access_loggers.file\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: \"{}\"\n    log_format:\n",
        placeholder("ACCESS_LOG_PATH")
    );
    out.push_str(&indent(&log_format, 6));
    if log.file.omit_empty_values {
        out.push_str("      omit_empty_values: true\n");
    }
    Ok(out)
}

/// A `labels` Struct as YAML: a format string per key, nested Structs as nested mappings.
fn yaml_struct(fields: &serde_json::Map<String, Value>, provider: &str) -> Result<String, String> {
    let mut out = String::new();
    for (key, value) in fields {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let key = if plain { key.clone() } else { yaml_string(key) };
        match value {
            Value::String(format) => {
                out.push_str(&format!("{key}: {}\n", yaml_string(format)))
            }
            Value::Object(nested) => {
                out.push_str(&format!("{key}:\n"));
                out.push_str(&indent(&yaml_struct(nested, provider)?, 2));
            }
            other => {
                return Err(format!(
                    "access-log provider {provider:?}: labels.{key}: {other} is neither a format string nor an object"
                ))
            }
        }
    }
    Ok(out)
}

/// The plugins of one chain as Envoy filters, in istiod's order (see `istiod::plugins_for`).
fn wasm_filters(plugins: &[&WasmPlugin], chain: ChainType) -> Result<String, String> {
    let mut out = String::new();
    for plugin in plugins {
        out.push_str(&wasm_filter(plugin, chain)?);
    }
    Ok(out)
}

/// One WasmPlugin as the filter istiod builds (pilot/pkg/model/extensions.go, `buildWasmConfig`):
/// `pluginName` as the root id, `pluginConfig` as JSON in a StringValue, `failStrategy` as the
/// failure policy. istiod delivers it through ECDS (pilot/pkg/networking/core/extension/
/// extensionfilter.go) and the agent swaps the image for the file it fetched (pkg/wasm); here the
/// same configuration is inline and the module is the file the build installed.
fn wasm_filter(plugin: &WasmPlugin, chain: ChainType) -> Result<String, String> {
    let spec = &plugin.spec;
    let kind = match chain {
        ChainType::Http => "http",
        ChainType::Network => "network",
    };
    let mut out = format!(
        "# WasmPlugin {}/{}: phase {}, priority {}\n",
        plugin.meta.namespace,
        plugin.meta.name,
        spec.phase.as_deref().unwrap_or("unspecified"),
        spec.priority.map_or("unset".to_string(), |p| p.to_string()),
    );
    out.push_str(&format!(
        "- name: extensions.istio.io/trafficextension/{}\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.{kind}.wasm.v3.Wasm\n    config:\n      name: {}\n      root_id: {}\n      vm_config:\n        runtime: envoy.wasm.runtime.v8\n        code: {{local: {{filename: \"{}\"}}}}\n",
        istiod::plugin_resource_name(plugin),
        istiod::plugin_resource_name(plugin),
        yaml_string(&spec.plugin_name),
        local::module_file(&spec.url).map_err(|error| format!("WasmPlugin {}: {error}", plugin.meta.name))?,
    ));
    let has_config = spec
        .plugin_config
        .as_ref()
        .and_then(Value::as_object)
        .is_some_and(|config| !config.is_empty());
    if has_config {
        let json = serde_json::to_string(spec.plugin_config.as_ref().unwrap_or(&Value::Null))
            .map_err(|error| format!("WasmPlugin {}: pluginConfig: {error}", plugin.meta.name))?;
        out.push_str(&format!(
            "      configuration:\n        \"@type\": type.googleapis.com/google.protobuf.StringValue\n        value: |\n          {json}\n"
        ));
    }
    if let Some(policy) = istiod::failure_policy(plugin)? {
        out.push_str(&format!("      failure_policy: {policy}\n"));
    }
    Ok(out)
}

fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// One port of a gateway: the Gateway servers merged into its listener, and what building that
/// listener reads.
struct GatewayPort<'a> {
    manifests: &'a Manifests,
    proxy: &'a GatewayProxy<'a>,
    /// The servers' port number.
    number: u32,
    /// The gateway's container port the servers' port is on: istiod names the listener by it.
    container_port: u32,
    servers: &'a [(&'a str, &'a str, &'a Server)],
    /// The gateway's access logs (`istiod::access_logging`).
    logs: &'a [LoggingConfig<'a>],
}

impl GatewayPort<'_> {
    /// The start of this port's listener (see `listener_head`), named `<role>_<kind>`.
    fn listener_head(&self, kind: &str, serves: &str) -> String {
        listener_head(
            &format!(
                "istiod's 0.0.0.0_{}: the Gateway's port {} ({serves}) on the gateway's container port.",
                self.container_port, self.number
            ),
            &format!("{}_{kind}", self.proxy.role),
        )
    }

    /// The plugins of this port's listener for one chain, in istiod's order.
    fn plugins(&self, chain: ChainType) -> Result<Vec<&WasmPlugin>, String> {
        istiod::plugins_for(
            self.manifests,
            &self.proxy.labels,
            self.container_port,
            chain,
        )
    }
}

fn gateway_http_listener(port: &GatewayPort, clusters: &mut Clusters) -> Result<String, String> {
    let GatewayPort {
        container_port,
        servers,
        ..
    } = *port;
    let network = port.plugins(ChainType::Network)?;
    let http = port.plugins(ChainType::Http)?;
    let routes = gateway_virtual_hosts(port.manifests, port.number, servers, clusters)?;
    let mut out = port.listener_head("http", &servers[0].2.port.protocol);
    let istio_mutual = servers
        .iter()
        .any(|(_, _, server)| server.tls_mode() == Some("ISTIO_MUTUAL"));
    if istio_mutual {
        out.push_str(&indent(&istio_mutual_server_chain_head(servers), 2));
        out.push_str("    filters:\n");
    } else {
        out.push_str("  filter_chains:\n  - filters:\n");
    }
    // Network plugins sit in front of the HTTP connection manager of an HTTP server's chain
    // (pilot/pkg/networking/core/gateway.go, `buildGatewayTCPBasedFilterChains`: "In HTTP, we need
    // to have RBAC, etc. upfront").
    out.push_str(&indent(&wasm_filters(&network, ChainType::Network)?, 4));
    let mut hcm = format!(
        "- name: envoy.filters.network.http_connection_manager\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n    stat_prefix: outbound_0.0.0.0_{container_port}\n    codec_type: AUTO\n"
    );
    // pilot/pkg/networking/core/accesslog.go, `setHTTPAccessLog`.
    let logs = access_logs(port.logs, None)?;
    if !logs.is_empty() {
        hcm.push_str("    access_log:\n");
        hcm.push_str(&indent(&logs, 4));
    }
    // One route configuration per server port; istiod ignores the port in host matching
    // (pilot/pkg/networking/core/gateway.go, `buildGatewayHTTPRouteConfig`).
    hcm.push_str(&format!(
        "    route_config:\n      name: http.{container_port}\n      ignore_port_in_host_matching: true\n      virtual_hosts:\n"
    ));
    hcm.push_str(&indent(&routes, 6));
    // HTTP plugins by phase around Istio's own filters, the router last
    // (pilot/pkg/networking/core/listener_builder.go, `buildHTTPConnectionManager`: the
    // `PopAppendHTTPTrafficExtension` calls).
    hcm.push_str("    http_filters:\n");
    hcm.push_str(&indent(&wasm_filters(&http, ChainType::Http)?, 4));
    hcm.push_str("    - name: envoy.filters.http.router\n      typed_config:\n        \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n");
    out.push_str(&indent(&hcm, 4));
    out.push_str(&listener_access_log(port)?);
    Ok(out)
}

/// Every gateway listener logs what no filter chain took (NR): pilot/pkg/networking/core/
/// listener.go, `buildGatewayListener`, calls accesslog.go's `setListenerAccessLog`.
fn listener_access_log(port: &GatewayPort) -> Result<String, String> {
    let logs = access_logs(port.logs, Some("NR"))?;
    if logs.is_empty() {
        return Ok(String::new());
    }
    Ok(format!("  access_log:\n{}", indent(&logs, 2)))
}

/// An HTTPS server terminating Istio mutual TLS: its chain matches the server's hosts as SNI
/// (pilot/pkg/model/gateway.go, `GetSNIHostsForServer`; no match for `*`, listener.go,
/// `toFilterChainMatch`), requires the client's certificate and offers ALPN h2 and http/1.1
/// (pilot/pkg/networking/core/listener.go, `BuildListenerTLSContext`: `util.ALPNHttp`). The
/// gateway's certificate and the mesh root come from SDS in Istio; here they are files in
/// `{{CERT_DIR}}`.
fn istio_mutual_server_chain_head(servers: &[(&str, &str, &Server)]) -> String {
    let hosts = server_hosts(servers);
    let cert_dir = placeholder("CERT_DIR");
    let mut out = String::from(
        "listener_filters:\n- name: envoy.filters.listener.tls_inspector\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\nfilter_chains:\n- ",
    );
    if !hosts.contains("*") {
        let names: Vec<String> = hosts.iter().map(|host| yaml_string(host)).collect();
        out.push_str(&format!(
            "filter_chain_match:\n    server_names: [{}]\n  ",
            names.join(", ")
        ));
    }
    out.push_str(&format!(
        "transport_socket:\n    name: envoy.transport_sockets.tls\n    typed_config:\n      \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n      require_client_certificate: true\n      common_tls_context:\n        alpn_protocols: [\"h2\", \"http/1.1\"]\n        tls_certificates:\n        - certificate_chain: {{filename: \"{cert_dir}/cert-chain.pem\"}}\n          private_key: {{filename: \"{cert_dir}/key.pem\"}}\n        validation_context:\n          trusted_ca: {{filename: \"{cert_dir}/root-cert.pem\"}}\n"
    ));
    out
}

fn gateway_refs<'a>(
    servers: &'a [(&'a str, &'a str, &'a Server)],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    servers
        .iter()
        .map(|(name, namespace, _)| (*name, *namespace))
}

/// Whether a VirtualService (or one of its route matches, through `gateways`) applies to one of
/// these Gateways.
fn applies_to(
    references: &[String],
    vs_namespace: &str,
    servers: &[(&str, &str, &Server)],
) -> bool {
    references.iter().any(|reference| {
        gateway_refs(servers).any(|(name, namespace)| {
            istiod::names_gateway(reference, vs_namespace, name, namespace)
        })
    })
}

/// The virtual hosts of a gateway's HTTP port: one per host a VirtualService bound to the Gateway
/// and a server on the port both name, holding the VirtualService's routes that apply there
/// (pilot/pkg/networking/core/gateway.go, `buildGatewayHTTPRouteConfig`; an empty result is a
/// catch-all that answers 404). Sorted by name (`util.SortVirtualHosts`).
fn gateway_virtual_hosts(
    manifests: &Manifests,
    port: u32,
    servers: &[(&str, &str, &Server)],
    clusters: &mut Clusters,
) -> Result<String, String> {
    let server_hosts = server_hosts(servers);
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    for vs in &manifests.virtual_services {
        if !applies_to(&vs.spec.gateways, &vs.meta.namespace, servers) {
            continue;
        }
        let mut routes = String::new();
        for (index, route) in vs.spec.http.iter().enumerate() {
            routes.push_str(&http_route(
                &manifests.destination_rules,
                route,
                index,
                &vs.meta.name,
                |gateways, match_port| {
                    (gateways.is_empty() || applies_to(gateways, &vs.meta.namespace, servers))
                        && match_port.is_none_or(|number| number == port)
                },
                clusters,
            )?);
        }
        if routes.is_empty() {
            continue;
        }
        for host in &vs.spec.hosts {
            if server_hosts.contains(host.as_str()) || server_hosts.contains("*") {
                let body = hosts.entry(host.clone()).or_default();
                body.push_str(&routes);
            }
        }
    }
    if hosts.is_empty() {
        return Ok(format!(
            "- name: blackhole:{port}\n  domains: [\"*\"]\n  routes: []\n"
        ));
    }
    let mut out = String::new();
    for (host, routes) in hosts {
        out.push_str(&format!(
            "- name: {host}:{port}\n  domains: [\"{host}\"]\n  routes:\n{}",
            indent(&routes, 2)
        ));
    }
    Ok(out)
}

/// The hosts the servers name, without their namespaces.
fn server_hosts<'a>(servers: &[(&str, &str, &'a Server)]) -> BTreeSet<&'a str> {
    servers
        .iter()
        .flat_map(|(_, _, server)| server.hosts.iter().map(|host| strip_namespace(host)))
        .collect()
}

/// `namespace/host` in a Gateway server's hosts names the host for VirtualServices of that
/// namespace; the host is what is matched.
fn strip_namespace(host: &str) -> &str {
    host.split_once('/').map_or(host, |(_, host)| host)
}

/// One VirtualService HTTP route as Envoy routes: one per match that applies (`applies`: the
/// match's gateways and port), or one catch-all when the route has no match
/// (pilot/pkg/networking/core/route/route.go, `TranslateRoute`: `authority` becomes an
/// `:authority` header match).
fn http_route(
    rules: &[DestinationRule],
    route: &HttpRoute,
    index: usize,
    vs_name: &str,
    applies: impl Fn(&[String], Option<u32>) -> bool,
    clusters: &mut Clusters,
) -> Result<String, String> {
    if route.matches.is_empty() {
        if !applies(&[], None) {
            return Ok(String::new());
        }
        let cluster = single_destination(rules, &route.route, vs_name, clusters)?;
        return Ok(format!(
            "# VirtualService {vs_name}, http[{index}]\n- match: {{prefix: \"/\"}}\n  route: {{cluster: \"{cluster}\"}}\n"
        ));
    }
    let mut out = String::new();
    for matched in &route.matches {
        if !applies(&matched.gateways, matched.port) {
            continue;
        }
        let cluster = single_destination(rules, &route.route, vs_name, clusters)?;
        let action = format!("  route: {{cluster: \"{cluster}\"}}\n");
        let mut headers = String::new();
        if let Some(authority) = &matched.authority {
            headers.push_str(&format!(
                "    - name: \":authority\"\n      string_match: {{exact: {}}}\n",
                yaml_string(&authority.exact)
            ));
        }
        for (name, value) in &matched.headers {
            headers.push_str(&format!(
                "    - name: {}\n      string_match: {{exact: {}}}\n",
                yaml_string(name),
                yaml_string(&value.exact)
            ));
        }
        out.push_str(&format!(
            "# VirtualService {vs_name}, http[{index}]\n- match:\n    prefix: \"/\"\n"
        ));
        if !headers.is_empty() {
            out.push_str("    headers:\n");
            out.push_str(&headers);
        }
        out.push_str(&action);
    }
    Ok(out)
}

/// The cluster of a route's only destination. Weighted splits are not rendered locally.
fn single_destination(
    rules: &[DestinationRule],
    destinations: &[RouteDestination],
    vs_name: &str,
    clusters: &mut Clusters,
) -> Result<String, String> {
    let [only] = destinations else {
        return Err(format!(
            "VirtualService {vs_name}: a route with {} destinations (only one is rendered locally)",
            destinations.len()
        ));
    };
    let destination = &only.destination;
    let name = istiod::cluster_name(
        destination.port.number,
        destination.subset.as_deref(),
        &destination.host,
    );
    let transport_socket = match destination.subset.as_deref() {
        Some(subset) => subset_transport_socket(
            rules,
            &destination.host,
            destination.port.number,
            subset,
            &name,
        )?,
        None => None,
    };
    clusters.add(
        name.clone(),
        cluster(
            &name,
            &destination.host,
            destination.port.number,
            transport_socket,
        )?,
    );
    Ok(name)
}

/// The client TLS of a DestinationRule subset (the subset's own policy, else the rule's), as
/// istiod builds it (pilot/pkg/networking/core/cluster_tls.go). `ISTIO_MUTUAL`: the workload's
/// certificate and the mesh root (istiod sends them over SDS; here they are the files Istio's
/// proxies also read, cert-chain.pem, key.pem and root-cert.pem, in `{{CERT_DIR}}`); the SNI is the
/// rule's `sni`, else the cluster's own name ("Set default SNI of cluster name for istio_mutual");
/// the ALPN is Istio's in-mesh one with metadata exchange, `ALPNInMeshWithMxc`
/// (pilot/pkg/networking/util/util.go) for an HTTP/1.1 cluster.
fn subset_transport_socket(
    rules: &[DestinationRule],
    host: &str,
    port: u32,
    subset: &str,
    cluster_name: &str,
) -> Result<Option<String>, String> {
    let Some(rule) = rules.iter().find(|rule| rule.spec.host == host) else {
        return Err(format!(
            "no DestinationRule for {host} defines subset {subset:?}"
        ));
    };
    let Some(defined) = rule
        .spec
        .subsets
        .iter()
        .find(|candidate| candidate.name == subset)
    else {
        return Err(format!(
            "DestinationRule {}: no subset {subset:?} for {host}",
            rule.meta.name
        ));
    };
    let tls = defined
        .traffic_policy
        .as_ref()
        .and_then(|policy| policy.tls_for(port))
        .or_else(|| {
            rule.spec
                .traffic_policy
                .as_ref()
                .and_then(|policy| policy.tls_for(port))
        });
    let Some(tls) = tls else {
        return Ok(None);
    };
    match tls.mode.as_str() {
        "DISABLE" => Ok(None),
        "ISTIO_MUTUAL" => {
            let cert_dir = placeholder("CERT_DIR");
            let sni = tls.sni.as_deref().unwrap_or(cluster_name);
            Ok(Some(format!(
                "transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\n    sni: {}\n    common_tls_context:\n      alpn_protocols: [\"istio-peer-exchange\", \"istio\"]\n      tls_certificates:\n      - certificate_chain: {{filename: \"{cert_dir}/cert-chain.pem\"}}\n        private_key: {{filename: \"{cert_dir}/key.pem\"}}\n      validation_context:\n        trusted_ca: {{filename: \"{cert_dir}/root-cert.pem\"}}\n",
                yaml_string(sni)
            )))
        }
        other => Err(format!(
            "DestinationRule {}: subset {subset:?}: trafficPolicy.tls.mode {other} is not rendered locally",
            rule.meta.name
        )),
    }
}

/// A cluster for a service port, its endpoint the local stand-in. `STRICT_DNS`: ServiceEntries
/// here resolve by DNS, and the stand-ins are host names in docker-compose.
fn cluster(
    name: &str,
    host: &str,
    port: u32,
    transport_socket: Option<String>,
) -> Result<String, String> {
    let (address, port_value) = local::stand_in(host, port)?;
    let mut out = format!(
        "- name: \"{name}\"\n  type: STRICT_DNS\n  connect_timeout: 10s\n  load_assignment:\n    cluster_name: \"{name}\"\n    endpoints:\n    - lb_endpoints:\n      - endpoint:\n          address:\n            socket_address: {{address: {address}, port_value: {port_value}}}\n"
    );
    if let Some(socket) = transport_socket {
        out.push_str(&indent(&socket, 2));
    }
    Ok(out)
}

/// A plugin's configuration can name a cluster by Istio's name (the access log's HTTP sink);
/// istiod sends a cluster for every service, so the rendering has the ones that are named.
fn plugin_clusters(plugin: &WasmPlugin, clusters: &mut Clusters) -> Result<(), String> {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::String(text) if text.starts_with("outbound|") => found.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| walk(item, found)),
            Value::Object(fields) => fields.values().for_each(|item| walk(item, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Some(config) = &plugin.spec.plugin_config {
        walk(config, &mut found);
    }
    for name in found {
        let parts: Vec<&str> = name.split('|').collect();
        let [_, port, _, host] = parts[..] else {
            return Err(format!(
                "WasmPlugin {}: cluster {name:?} is not outbound|PORT|SUBSET|HOST",
                plugin.meta.name
            ));
        };
        let port: u32 = port.parse().map_err(|_| {
            format!(
                "WasmPlugin {}: cluster {name:?}: port {port:?}",
                plugin.meta.name
            )
        })?;
        clusters.add(name.clone(), cluster(&name, host, port, None)?);
    }
    Ok(())
}

fn gateway_passthrough_listener(
    port: &GatewayPort,
    clusters: &mut Clusters,
) -> Result<String, String> {
    let network = port.plugins(ChainType::Network)?;
    let filters = wasm_filters(&network, ChainType::Network)?;
    let server_hosts = server_hosts(port.servers);
    let mut out = port.listener_head("tls", "TLS PASSTHROUGH");
    out.push_str("  # Reads the SNI from the ClientHello without terminating TLS.\n  listener_filters:\n  - name: envoy.filters.listener.tls_inspector\n    typed_config:\n      \"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\n");
    // One filter chain per TLS route match, by SNI; a connection no chain matches is closed by
    // Envoy (pilot/pkg/networking/core/gateway.go, `createGatewayTCPFilterChainOpts` and
    // `buildGatewayNetworkFiltersFromTLSRoutes`).
    out.push_str("  filter_chains:\n");
    let mut chains = 0;
    for vs in &port.manifests.virtual_services {
        if !applies_to(&vs.spec.gateways, &vs.meta.namespace, port.servers) {
            continue;
        }
        for route in &vs.spec.tls {
            for matched in &route.matches {
                let applies = (matched.gateways.is_empty()
                    || applies_to(&matched.gateways, &vs.meta.namespace, port.servers))
                    && matched.port.is_none_or(|number| number == port.number);
                if !applies {
                    continue;
                }
                let sni: Vec<&String> = matched
                    .sni_hosts
                    .iter()
                    .filter(|host| server_hosts.contains(host.as_str()))
                    .collect();
                if sni.is_empty() {
                    continue;
                }
                chains += 1;
                out.push_str(&indent(
                    &passthrough_chain(
                        &port.manifests.destination_rules,
                        &sni,
                        &filters,
                        route,
                        &vs.meta.name,
                        port.logs,
                        clusters,
                    )?,
                    2,
                ));
            }
        }
    }
    if chains == 0 {
        return Err(format!(
            "Gateway port {}: no VirtualService TLS route for its hosts",
            port.number
        ));
    }
    // The listener logs only what no chain took (NR); each chain's tcp_proxy logs its connections.
    out.push_str(&listener_access_log(port)?);
    Ok(out)
}

fn passthrough_chain(
    rules: &[DestinationRule],
    sni: &[&String],
    filters: &str,
    route: &TlsRoute,
    vs_name: &str,
    logs: &[LoggingConfig],
    clusters: &mut Clusters,
) -> Result<String, String> {
    let cluster = single_destination(rules, &route.route, vs_name, clusters)?;
    let names: Vec<String> = sni.iter().map(|host| yaml_string(host)).collect();
    let mut out = format!(
        "# VirtualService {vs_name}: TLS to {}\n- filter_chain_match:\n    server_names: [{}]\n  filters:\n",
        names.join(", "),
        names.join(", ")
    );
    out.push_str(&indent(filters, 2));
    out.push_str(&indent(&tcp_proxy(&cluster), 2));
    // The TLS passthrough chains' tcp_proxy gets the same Telemetry logs as HTTP
    // (pilot/pkg/networking/core/gateway.go, `buildGatewayNetworkFiltersFromTLSRoutes` through
    // pilot/pkg/networking/core/networkfilter.go, `buildOutboundNetworkFiltersWithSingleDestination`,
    // which calls accesslog.go's `setTCPAccessLog`).
    let logs = access_logs(logs, None)?;
    if !logs.is_empty() {
        out.push_str("      access_log:\n");
        out.push_str(&indent(&logs, 6));
    }
    Ok(out)
}

/// The sidecar of a workload calling out, as istiod configures its outbound side
/// (pilot/pkg/networking/core/listener.go, httproute.go, cluster.go): per service port a listener,
/// a virtual host per ServiceEntry host routed as the mesh's VirtualServices say, and with
/// `REGISTRY_ONLY` every other host answered 502 (`block_all`, httproute.go) or, for TLS, sent to
/// the BlackHoleCluster.
pub fn sidecar(manifests: &Manifests, header: &str) -> Result<String, String> {
    match manifests.outbound_traffic_policy.as_deref() {
        Some("REGISTRY_ONLY") => {}
        other => {
            return Err(format!(
                "meshConfig.outboundTrafficPolicy.mode is {other:?}: the local sidecar is rendered for REGISTRY_ONLY"
            ))
        }
    }
    let mut clusters = Clusters::default();
    let http = sidecar_http_listener(manifests, &mut clusters)?;
    let tls = sidecar_tls_listener(manifests, &mut clusters)?;
    clusters.add(
        "BlackHoleCluster".to_string(),
        "# istiod's BlackHoleCluster: no endpoints, so a connection sent here is closed\n# (pilot/pkg/networking/core/cluster_builder.go, `buildBlackHoleCluster`).\n- name: BlackHoleCluster\n  type: STATIC\n  connect_timeout: 10s\n".to_string(),
    );
    Ok(document(header, &[http, tls], &clusters))
}

/// Whether a VirtualService applies to sidecars: `gateways` empty or naming `mesh`.
fn in_mesh(gateways: &[String]) -> bool {
    gateways.is_empty() || gateways.iter().any(|gateway| gateway == "mesh")
}

fn service_entry_hosts(manifests: &Manifests, port: u32) -> BTreeSet<&str> {
    manifests
        .service_entries
        .iter()
        .filter(|entry| entry.spec.ports.iter().any(|p| p.number == port))
        .flat_map(|entry| entry.spec.hosts.iter().map(String::as_str))
        .collect()
}

fn sidecar_http_listener(manifests: &Manifests, clusters: &mut Clusters) -> Result<String, String> {
    let mut hosts = String::new();
    for host in service_entry_hosts(manifests, 80) {
        let mut routes = String::new();
        for vs in &manifests.virtual_services {
            if !in_mesh(&vs.spec.gateways) || !vs.spec.hosts.iter().any(|h| h == host) {
                continue;
            }
            for (index, route) in vs.spec.http.iter().enumerate() {
                routes.push_str(&http_route(
                    &manifests.destination_rules,
                    route,
                    index,
                    &vs.meta.name,
                    |gateways, port| in_mesh(gateways) && port.is_none_or(|number| number == 80),
                    clusters,
                )?);
            }
        }
        if routes.is_empty() {
            // No VirtualService: straight to the service (its default route).
            let name = istiod::cluster_name(80, None, host);
            clusters.add(name.clone(), cluster(&name, host, 80, None)?);
            routes = format!("- match: {{prefix: \"/\"}}\n  route: {{cluster: \"{name}\"}}\n");
        }
        hosts.push_str(&format!(
            "- name: {host}:80\n  domains: [\"{host}\", \"{host}:80\"]\n  routes:\n{}",
            indent(&routes, 2)
        ));
    }
    hosts.push_str("# REGISTRY_ONLY: a host no ServiceEntry lists is answered 502 here\n# (pilot/pkg/networking/core/httproute.go, `util.BlackHole`).\n- name: block_all\n  domains: [\"*\"]\n  routes:\n  - match: {prefix: \"/\"}\n    direct_response: {status: 502}\n");
    let mut out = listener_head(
        "istiod's outbound 0.0.0.0_80, which the app's port-80 connections reach through the\niptables redirect; here the app calls it directly.",
        "sidecar_http",
    );
    out.push_str("  filter_chains:\n  - filters:\n    - name: envoy.filters.network.http_connection_manager\n      typed_config:\n        \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n        stat_prefix: outbound_0.0.0.0_80\n        codec_type: AUTO\n        route_config:\n          name: \"80\"\n          virtual_hosts:\n");
    out.push_str(&indent(&hosts, 10));
    // Istio's sidecar rewrites the ALPN of its mutual-TLS upstream connections by the upstream's
    // HTTP version, `istio-http/1.1, istio, http/1.1` for HTTP/1.1 (pilot/pkg/xds/filters/
    // filters.go, `Alpn` and `mtlsHTTP11ALPN`; on every sidecar outbound HTTP connection manager
    // while PILOT_ENABLE_ALPN_FILTER is on, its default: pilot/pkg/networking/core/
    // listener_builder.go, pilot/pkg/features/pilot.go). Istio's `istio.alpn` filter is not in
    // upstream Envoy; the filter state it sets is: every cluster here speaks HTTP/1.1, and ALPN
    // only exists on the TLS ones.
    out.push_str("        http_filters:\n        - name: envoy.filters.http.set_filter_state\n          typed_config:\n            \"@type\": type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config\n            on_request_headers:\n            - object_key: envoy.network.application_protocols\n              format_string: {text_format_source: {inline_string: \"istio-http/1.1,istio,http/1.1\"}}\n              shared_with_upstream: ONCE\n");
    out.push_str("        - name: envoy.filters.http.router\n          typed_config:\n            \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n");
    Ok(out)
}

fn sidecar_tls_listener(manifests: &Manifests, clusters: &mut Clusters) -> Result<String, String> {
    let mut chains = String::new();
    for host in service_entry_hosts(manifests, 443) {
        let mut cluster_name = None;
        for vs in &manifests.virtual_services {
            if !in_mesh(&vs.spec.gateways) {
                continue;
            }
            for route in &vs.spec.tls {
                let applies = route.matches.iter().any(|matched| {
                    in_mesh(&matched.gateways)
                        && matched.port.is_none_or(|number| number == 443)
                        && matched.sni_hosts.iter().any(|sni| sni == host)
                });
                if applies && cluster_name.is_none() {
                    cluster_name = Some(single_destination(
                        &manifests.destination_rules,
                        &route.route,
                        &vs.meta.name,
                        clusters,
                    )?);
                }
            }
        }
        let name = match cluster_name {
            Some(name) => name,
            None => {
                let name = istiod::cluster_name(443, None, host);
                clusters.add(name.clone(), cluster(&name, host, 443, None)?);
                name
            }
        };
        chains.push_str(&format!(
            "- filter_chain_match:\n    server_names: [\"{host}\"]\n  filters:\n"
        ));
        chains.push_str(&indent(&tcp_proxy(&name), 2));
    }
    chains.push_str("# REGISTRY_ONLY: any other SNI goes nowhere.\n- filters:\n");
    chains.push_str(&indent(&tcp_proxy("BlackHoleCluster"), 2));
    let mut out = listener_head(
        "istiod's outbound 0.0.0.0_443: TLS the app originates, routed by its SNI.",
        "sidecar_tls",
    );
    out.push_str("  listener_filters:\n  - name: envoy.filters.listener.tls_inspector\n    typed_config:\n      \"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\n  filter_chains:\n");
    out.push_str(&indent(&chains, 2));
    Ok(out)
}
