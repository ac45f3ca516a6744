//! istiod's placement rules, as the local renderings apply them. Each rule names the istio/istio
//! file it comes from (read at the commit `fetch github:istio/istio` brings; paths are stable
//! across recent releases).

use std::collections::{BTreeMap, BTreeSet};

use super::manifests::{
    AccessLogging, ExtensionProvider, FileAccessLogProvider, Manifests, Telemetry, WasmPlugin,
};

/// Istio's root namespace (meshConfig.rootNamespace, default `istio-system`), whose Telemetry
/// without a selector applies mesh-wide; the gateways' pods run there too.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// Which chain a plugin is inserted into.
/// Whether a plugin's `selector.matchLabels` are all among the proxy's labels; a plugin attached
/// by `targetRefs` selects by reference instead (pilot/pkg/model/policyattachment.go), and the
/// local proxies are not Gateway API gateways.
pub fn selects(plugin: &WasmPlugin, proxy_labels: &BTreeMap<String, String>) -> bool {
    plugin.spec.target_refs.is_empty()
        && plugin.spec.target_ref.is_none()
        && plugin
            .spec
            .selector
            .match_labels
            .iter()
            .all(|(key, value)| proxy_labels.get(key) == Some(value))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Http,
    Network,
}

/// A `type: NETWORK` plugin goes into network filter chains, anything else (HTTP or unset) into the
/// HTTP connection manager: pilot/pkg/model/extensions.go, `filterChainTypeFromPluginType`.
pub fn chain_type(plugin: &WasmPlugin) -> Result<ChainType, String> {
    match plugin.spec.plugin_type.as_deref() {
        None | Some("HTTP") | Some("UNSPECIFIED_PLUGIN_TYPE") => Ok(ChainType::Http),
        Some("NETWORK") => Ok(ChainType::Network),
        Some(other) => Err(format!(
            "WasmPlugin {}: type: {other:?} is neither HTTP nor NETWORK",
            plugin.meta.name
        )),
    }
}

/// The container port a gateway Service port is served on. istiod listens on the Service's
/// `targetPort` (pilot/pkg/model/gateway.go, `resolvePorts`: "mergeGateways will already translate
/// Service port to targetPort"), and Istio's gateway charts map 80 to 8080 and 443 to 8443 so the
/// gateway runs unprivileged (manifests/charts/gateways/istio-egress/values.yaml and
/// istio-ingress/values.yaml).
pub fn gateway_container_port(service_port: u32) -> Result<u32, String> {
    match service_port {
        80 => Ok(8080),
        443 => Ok(8443),
        other => Err(format!(
            "Gateway server port {other}: Istio's gateway Services expose 80 (8080) and 443 (8443); \
             the local rendering knows no container port for {other}"
        )),
    }
}

/// The plugins istiod inserts into one chain of a proxy, in the order it inserts them.
///
/// - Selection: the plugin's `selector.matchLabels` are all among the proxy's labels
///   (pilot/pkg/model/policyattachment.go, through `TrafficExtensionsByListenerInfo` in
///   pilot/pkg/model/push_context.go).
/// - Type: `chain_type` above (`MatchType` in pilot/pkg/model/extensions.go).
/// - `match`: a plugin without `match` is on every listener; with it, on a listener whose class
///   fits the mode (a gateway's listeners are CLIENT) and whose port is listed — the port istiod
///   compares is the listener's own, i.e. the container port on a gateway (`matchMode`,
///   `matchPorts`, `matchTrafficExtensionSelectors` in pilot/pkg/model/extensions.go; the gateway
///   passes `opts.port`, the resolved port, in pilot/pkg/networking/core/gateway.go).
/// - Order: by phase AUTHN, AUTHZ, STATS, then unspecified (`PopAppend…TrafficExtension` calls in
///   pilot/pkg/networking/core/listener_builder.go for HTTP and gateway.go for network filters),
///   within a phase by priority, highest first, unset as the lowest (`sortByPriority` in
///   pilot/pkg/model/push_context.go, a stable sort: equal priorities keep manifest order).
/// - A WasmPlugin becomes a TrafficExtension with the same fields
///   (pilot/pkg/config/kube/extensions/translate.go, `translateWasmPlugin`).
pub fn plugins_for<'a>(
    manifests: &'a Manifests,
    proxy_labels: &BTreeMap<String, String>,
    listener_port: u32,
    chain: ChainType,
) -> Result<Vec<&'a WasmPlugin>, String> {
    let mut selected = Vec::new();
    for plugin in &manifests.plugins {
        if !selects(plugin, proxy_labels) {
            continue;
        }
        if chain_type(plugin)? != chain {
            continue;
        }
        if !matches_listener(plugin, listener_port)? {
            continue;
        }
        selected.push(plugin);
    }
    let mut ranked = Vec::with_capacity(selected.len());
    for plugin in selected {
        ranked.push((phase_rank(plugin)?, plugin));
    }
    ranked.sort_by_key(|(phase, plugin)| {
        (
            *phase,
            std::cmp::Reverse(plugin.spec.priority.unwrap_or(i32::MIN)),
        )
    });
    Ok(ranked.into_iter().map(|(_, plugin)| plugin).collect())
}

fn matches_listener(plugin: &WasmPlugin, port: u32) -> Result<bool, String> {
    if plugin.spec.traffic_selectors.is_empty() {
        return Ok(true);
    }
    for selector in &plugin.spec.traffic_selectors {
        // Every listener rendered here, a gateway's or a sidecar's outbound one, is CLIENT
        // (`workloadModeForListenerClass`).
        let mode_matches = match selector.mode.as_deref() {
            None | Some("UNDEFINED") | Some("CLIENT_AND_SERVER") | Some("CLIENT") => true,
            Some("SERVER") => false,
            Some(other) => {
                return Err(format!(
                "WasmPlugin {}: match.mode: {other:?} is not CLIENT, SERVER or CLIENT_AND_SERVER",
                plugin.meta.name
            ))
            }
        };
        let port_matches = selector.ports.is_empty()
            || selector
                .ports
                .iter()
                .any(|selected| selected.number == port);
        if mode_matches && port_matches {
            return Ok(true);
        }
    }
    Ok(false)
}

fn phase_rank(plugin: &WasmPlugin) -> Result<u8, String> {
    match plugin.spec.phase.as_deref() {
        Some("AUTHN") => Ok(0),
        Some("AUTHZ") => Ok(1),
        Some("STATS") => Ok(2),
        None | Some("UNSPECIFIED_PHASE") => Ok(3),
        Some(other) => Err(format!(
            "WasmPlugin {}: phase: {other:?} is not AUTHN, AUTHZ or STATS",
            plugin.meta.name
        )),
    }
}

/// `failStrategy` as Envoy's `failure_policy` (pilot/pkg/model/extensions.go, `buildWasmConfig`):
/// FAIL_OPEN, FAIL_CLOSE → FAIL_CLOSED, FAIL_RELOAD; unset leaves Envoy's default (fail closed).
pub fn failure_policy(plugin: &WasmPlugin) -> Result<Option<&'static str>, String> {
    match plugin.spec.fail_strategy.as_deref() {
        None => Ok(None),
        Some("FAIL_OPEN") => Ok(Some("FAIL_OPEN")),
        Some("FAIL_CLOSE") => Ok(Some("FAIL_CLOSED")),
        Some("FAIL_RELOAD") => Ok(Some("FAIL_RELOAD")),
        Some(other) => Err(format!(
            "WasmPlugin {}: failStrategy: {other:?} is not FAIL_OPEN, FAIL_CLOSE or FAIL_RELOAD",
            plugin.meta.name
        )),
    }
}

/// The Envoy resource name istiod gives a WasmPlugin: its TrafficExtension's `namespace.name`, the
/// name carrying the translation marker (pilot/pkg/config/kube/extensions/translate.go,
/// `syntheticMarker`; pilot/pkg/model/extensions.go, `resourceName := e.Namespace + "." + e.Name`).
pub fn plugin_resource_name(plugin: &WasmPlugin) -> String {
    format!(
        "{}.{}~istio-translated-wasmplugin",
        plugin.meta.namespace, plugin.meta.name
    )
}

/// Istio's cluster name for a service port and subset (pilot/pkg/model/service.go,
/// `BuildSubsetKey`): `outbound|PORT|SUBSET|HOST`.
pub fn cluster_name(port: u32, subset: Option<&str>, host: &str) -> String {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or(""))
}

/// Whether a VirtualService, a route's match or a Gateway reference names this gateway: a bare
/// name is the Gateway in the VirtualService's own namespace (pilot/pkg/model/config.go,
/// `resolveGatewayName`).
pub fn names_gateway(
    reference: &str,
    vs_namespace: &str,
    gateway_name: &str,
    gateway_namespace: &str,
) -> bool {
    match reference.split_once('/') {
        Some((namespace, name)) => namespace == gateway_namespace && name == gateway_name,
        None => reference == gateway_name && vs_namespace == gateway_namespace,
    }
}

/// One access log istiod gives a proxy's listeners from the Telemetry API: a provider's file
/// logger, and the Telemetry's CEL `filter.expression` for it, if any.
pub struct LoggingConfig<'a> {
    pub provider: &'a str,
    pub file: &'a FileAccessLogProvider,
    pub filter: Option<&'a str>,
}

/// The access logs of a proxy in `namespace` with `labels`, as istiod computes them
/// (pilot/pkg/model/telemetry.go):
///
/// - Which Telemetries (`applicableTelemetries`): the root namespace's without selector, then the
///   proxy namespace's without selector, then those of the proxy's namespace whose selector picks
///   it; each later one overrides the ones before. One attached by `targetRefs` applies to Gateway
///   API gateways only, which the local proxies are not.
/// - How they merge (`mergeLogs`, for mode CLIENT: a gateway's listeners are of class Gateway,
///   `workloadMode`): the providers are those the most specific Telemetry names; each keeps the
///   filter of the last entry naming it, unless a later entry disables it.
/// - No Telemetry with accessLogging: istiod falls back to meshConfig.accessLogFile, which the
///   shipped mesh config leaves unset, so nothing is logged.
/// - Order: by provider name (`AccessLogging`, "deterministic ordering").
/// - A provider the mesh config does not define is skipped by istiod with a debug log; here it is
///   an error, since it is a mistake in our manifests.
pub fn access_logging<'a>(
    manifests: &'a Manifests,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<LoggingConfig<'a>>, String> {
    let namespace_wide = |ns: &str| {
        manifests.telemetries.iter().find(|telemetry| {
            telemetry.meta.namespace == ns
                && !has_selector(telemetry)
                && !has_target_refs(telemetry)
        })
    };
    let mut levels: Vec<&Telemetry> = Vec::new();
    levels.extend(namespace_wide(ROOT_NAMESPACE));
    if namespace != ROOT_NAMESPACE {
        levels.extend(namespace_wide(namespace));
    }
    levels.extend(manifests.telemetries.iter().filter(|telemetry| {
        telemetry.meta.namespace == namespace
            && has_selector(telemetry)
            && !has_target_refs(telemetry)
            && telemetry.spec.selector.as_ref().is_some_and(|selector| {
                selector
                    .match_labels
                    .iter()
                    .all(|(key, value)| labels.get(key) == Some(value))
            })
    }));
    levels.retain(|telemetry| !telemetry.spec.access_logging.is_empty());
    let mut in_scope: BTreeSet<&str> = BTreeSet::new();
    let mut filters: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for telemetry in &levels {
        let mut names = BTreeSet::new();
        for entry in &telemetry.spec.access_logging {
            if !client_mode(telemetry, entry)? {
                continue;
            }
            for provider in &entry.providers {
                names.insert(provider.name.as_str());
                filters.insert(
                    provider.name.as_str(),
                    entry
                        .filter
                        .as_ref()
                        .map(|filter| filter.expression.as_str()),
                );
            }
        }
        if !names.is_empty() {
            in_scope = names;
        }
    }
    // Per provider: Some(filter) logs, None is disabled.
    let mut chosen: BTreeMap<&str, Option<Option<&str>>> = BTreeMap::new();
    let mut parent: Vec<&str> = Vec::new();
    for telemetry in &levels {
        for entry in &telemetry.spec.access_logging {
            let mut names: Vec<&str> = entry.providers.iter().map(|p| p.name.as_str()).collect();
            if names.is_empty() {
                names = parent.clone();
            }
            parent = names.clone();
            for name in names {
                if !in_scope.contains(name) || !client_mode(telemetry, entry)? {
                    continue;
                }
                let disabled = entry.disabled == Some(true);
                chosen.insert(
                    name,
                    (!disabled).then(|| filters.get(name).copied().flatten()),
                );
            }
        }
    }
    let mut configs = Vec::new();
    for (name, spec) in chosen {
        let Some(filter) = spec else { continue };
        match manifests.extension_providers.get(name) {
            Some(ExtensionProvider::EnvoyFileAccessLog(file)) => configs.push(LoggingConfig {
                provider: name,
                file,
                filter,
            }),
            Some(ExtensionProvider::Other(_)) => {
                return Err(format!(
                    "access-log provider {name:?}: only envoyFileAccessLog providers are rendered locally"
                ))
            }
            None => {
                return Err(format!(
                    "a Telemetry names access-log provider {name:?}, which meshConfig.extensionProviders does not define"
                ))
            }
        }
    }
    Ok(configs)
}

fn has_selector(telemetry: &Telemetry) -> bool {
    telemetry
        .spec
        .selector
        .as_ref()
        .is_some_and(|selector| !selector.match_labels.is_empty())
}

fn has_target_refs(telemetry: &Telemetry) -> bool {
    !telemetry.spec.target_refs.is_empty() || telemetry.spec.target_ref.is_some()
}

/// Whether an accessLogging entry applies to a CLIENT listener (`matchWorkloadMode`).
fn client_mode(telemetry: &Telemetry, entry: &AccessLogging) -> Result<bool, String> {
    match entry.log_match.as_ref().and_then(|m| m.mode.as_deref()) {
        None | Some("CLIENT_AND_SERVER") | Some("CLIENT") => Ok(true),
        Some("SERVER") => Ok(false),
        Some(other) => Err(format!(
            "Telemetry {}: accessLogging.match.mode: {other:?} is not CLIENT, SERVER or CLIENT_AND_SERVER",
            telemetry.meta.name
        )),
    }
}
