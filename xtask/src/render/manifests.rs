//! Reading `wasm-plugins-manifests/`: the resources istiod turns into gateway and sidecar
//! configuration (WasmPlugin, Gateway, VirtualService, DestinationRule, ServiceEntry, Telemetry)
//! and the mesh config's outbound traffic policy and extension providers. Other kinds (namespaces,
//! Deployments, policies, the TrafficExtension copies) shape no listener here and are skipped.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default)]
pub struct Manifests {
    pub plugins: Vec<WasmPlugin>,
    pub gateways: Vec<Gateway>,
    pub virtual_services: Vec<VirtualService>,
    pub destination_rules: Vec<DestinationRule>,
    pub service_entries: Vec<ServiceEntry>,
    pub telemetries: Vec<Telemetry>,
    /// `meshConfig.outboundTrafficPolicy.mode`, wherever a manifest sets it.
    pub outbound_traffic_policy: Option<String>,
    /// `meshConfig.extensionProviders` by name: what a Telemetry's `providers` refer to.
    pub extension_providers: BTreeMap<String, ExtensionProvider>,
}

#[derive(Debug, Deserialize)]
pub struct Meta {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

fn default_namespace() -> String {
    "default".to_string()
}

#[derive(Debug)]
pub struct Resource<S> {
    pub meta: Meta,
    pub spec: S,
}

pub type WasmPlugin = Resource<WasmPluginSpec>;
pub type Gateway = Resource<GatewaySpec>;
pub type VirtualService = Resource<VirtualServiceSpec>;
pub type DestinationRule = Resource<DestinationRuleSpec>;
pub type ServiceEntry = Resource<ServiceEntrySpec>;
pub type Telemetry = Resource<TelemetrySpec>;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginSpec {
    #[serde(default)]
    pub selector: Selector,
    /// Gateway API attachment (`targetRefs`, or the older `targetRef`): such a plugin applies to
    /// the Gateway API gateways it names, never to a proxy picked by labels.
    #[serde(default, rename = "targetRefs")]
    pub target_refs: Vec<Value>,
    #[serde(default, rename = "targetRef")]
    pub target_ref: Option<Value>,
    pub url: String,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub fail_strategy: Option<String>,
    #[serde(default)]
    pub plugin_name: String,
    #[serde(default)]
    pub plugin_config: Option<Value>,
    #[serde(default, rename = "type")]
    pub plugin_type: Option<String>,
    #[serde(default, rename = "match")]
    pub traffic_selectors: Vec<TrafficSelector>,
}

#[derive(Debug, Deserialize)]
pub struct TrafficSelector {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortSelector>,
}

#[derive(Debug, Deserialize)]
pub struct PortSelector {
    pub number: u32,
}

#[derive(Debug, Deserialize)]
pub struct GatewaySpec {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Deserialize)]
pub struct Server {
    pub port: Port,
    pub hosts: Vec<String>,
    #[serde(default)]
    pub tls: Option<ServerTls>,
}

#[derive(Debug, Deserialize)]
pub struct Port {
    pub number: u32,
    pub protocol: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTls {
    pub mode: String,
}

impl Server {
    pub fn tls_mode(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.mode.as_str())
    }
}

#[derive(Debug, Deserialize)]
pub struct VirtualServiceSpec {
    pub hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    #[serde(default)]
    pub tls: Vec<TlsRoute>,
}

#[derive(Debug, Deserialize)]
pub struct HttpRoute {
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatch>,
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Deserialize)]
pub struct HttpMatch {
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub authority: Option<StringMatch>,
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringMatch {
    pub exact: String,
}

#[derive(Debug, Deserialize)]
pub struct TlsRoute {
    #[serde(rename = "match")]
    pub matches: Vec<TlsMatch>,
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsMatch {
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub port: Option<u32>,
    pub sni_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RouteDestination {
    pub destination: Destination,
}

#[derive(Debug, Deserialize)]
pub struct Destination {
    pub host: String,
    #[serde(default)]
    pub subset: Option<String>,
    pub port: PortNumber,
}

#[derive(Debug, Deserialize)]
pub struct PortNumber {
    pub number: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    pub subsets: Vec<Subset>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    pub name: String,
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    #[serde(default)]
    pub tls: Option<ClientTls>,
    #[serde(default)]
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

#[derive(Debug, Deserialize)]
pub struct PortTrafficPolicy {
    pub port: PortNumber,
    #[serde(default)]
    pub tls: Option<ClientTls>,
}

impl TrafficPolicy {
    /// The TLS for one port: its port-level setting, else the policy's own
    /// (pilot/pkg/networking/core/cluster_traffic_policy.go, `selectTrafficPolicyComponents`).
    pub fn tls_for(&self, port: u32) -> Option<&ClientTls> {
        self.port_level_settings
            .iter()
            .find(|setting| setting.port.number == port)
            .map_or(self.tls.as_ref(), |setting| setting.tls.as_ref())
    }
}

#[derive(Debug, Deserialize)]
pub struct ClientTls {
    pub mode: String,
    #[serde(default)]
    pub sni: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ServiceEntrySpec {
    pub hosts: Vec<String>,
    pub ports: Vec<Port>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    #[serde(default)]
    pub selector: Option<Selector>,
    /// Gateway API attachment: applies to the gateways it names, never to a proxy picked by labels.
    #[serde(default)]
    pub target_refs: Vec<Value>,
    #[serde(default)]
    pub target_ref: Option<Value>,
    #[serde(default)]
    pub access_logging: Vec<AccessLogging>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogging {
    #[serde(default)]
    pub providers: Vec<ProviderRef>,
    #[serde(default)]
    pub filter: Option<AccessLogFilter>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default, rename = "match")]
    pub log_match: Option<LogMatch>,
}

#[derive(Debug, Deserialize)]
pub struct ProviderRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct AccessLogFilter {
    pub expression: String,
}

#[derive(Debug, Deserialize)]
pub struct LogMatch {
    #[serde(default)]
    pub mode: Option<String>,
}

/// One of `meshConfig.extensionProviders`. Only Envoy's file access log is rendered locally; the
/// other kinds are kept as what they are, so that a Telemetry selecting one fails the rendering
/// with its name.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionProvider {
    EnvoyFileAccessLog(FileAccessLogProvider),
    Other(Value),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileAccessLogProvider {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub log_format: Option<FileLogFormat>,
    #[serde(default)]
    pub omit_empty_values: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLogFormat {
    #[serde(default)]
    pub text: Option<String>,
    /// A Struct: values are format strings, or nested objects of them.
    #[serde(default)]
    pub labels: Option<serde_json::Map<String, Value>>,
}

/// Every `*.yaml` directly in `dir`, in name order, added to `manifests` (a variant directory such
/// as `mtls/` or `local-only/` only holds what it adds or replaces, see `upsert`).
pub fn read_dir(dir: &Path, manifests: &mut Manifests) -> Result<(), String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    for file in files {
        read_file(&file, manifests)?;
    }
    Ok(())
}

/// The documents of `kubectl kustomize DIR`, as `read_text` reads a file: a Kustomize rendering
/// (a base with components) is what a cluster would be given.
pub fn read_kustomization(dir: &Path, manifests: &mut Manifests) -> Result<(), String> {
    let text = e2e::kustomize::build(dir)?;
    read_text(&text, manifests)
        .map_err(|error| format!("kubectl kustomize {}: {error}", dir.display()))
}

/// One file, as `read_dir` reads each of a directory's.
pub fn read_file(file: &Path, manifests: &mut Manifests) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    read_text(&text, manifests).map_err(|error| format!("{}: {error}", file.display()))
}

pub fn read_text(text: &str, manifests: &mut Manifests) -> Result<(), String> {
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| error.to_string())?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if let Some(mode) = value
            .pointer("/spec/meshConfig/outboundTrafficPolicy/mode")
            .or_else(|| value.pointer("/meshConfig/outboundTrafficPolicy/mode"))
            .or_else(|| value.pointer("/outboundTrafficPolicy/mode"))
            .and_then(Value::as_str)
        {
            manifests.outbound_traffic_policy = Some(mode.to_string());
        }
        // mesh-config.yaml (IstioOperator) and mesh-config.values.yaml (Helm) both carry them.
        if let Some(providers) = value
            .pointer("/spec/meshConfig/extensionProviders")
            .or_else(|| value.pointer("/meshConfig/extensionProviders"))
        {
            read_extension_providers(providers, manifests)?;
        }
        match kind {
            "WasmPlugin" => upsert(&mut manifests.plugins, resource(&value)?),
            "Gateway" if is_istio_networking(&value) => {
                upsert(&mut manifests.gateways, resource(&value)?)
            }
            "VirtualService" => upsert(&mut manifests.virtual_services, resource(&value)?),
            "DestinationRule" => upsert(&mut manifests.destination_rules, resource(&value)?),
            "ServiceEntry" => upsert(&mut manifests.service_entries, resource(&value)?),
            "Telemetry" => upsert(&mut manifests.telemetries, resource(&value)?),
            _ => {}
        }
    }
    Ok(())
}

/// The providers of one mesh config. A provider another file defines too must be the same: the
/// IstioOperator and Helm forms of the mesh config are one setting written twice.
fn read_extension_providers(providers: &Value, manifests: &mut Manifests) -> Result<(), String> {
    let providers = providers
        .as_array()
        .ok_or("meshConfig.extensionProviders: not a list")?;
    for (index, provider) in providers.iter().enumerate() {
        let name = provider
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("meshConfig.extensionProviders[{index}]: no name"))?;
        let parsed = match provider.get("envoyFileAccessLog") {
            Some(file) => ExtensionProvider::EnvoyFileAccessLog(
                serde_json::from_value(file.clone()).map_err(|error| {
                    format!("meshConfig.extensionProviders[{name}].envoyFileAccessLog: {error}")
                })?,
            ),
            None => ExtensionProvider::Other(provider.clone()),
        };
        match manifests.extension_providers.get(name) {
            Some(known) if *known != parsed => {
                return Err(format!(
                    "meshConfig.extensionProviders[{name}] differs from its definition in a file read before"
                ))
            }
            _ => {
                manifests
                    .extension_providers
                    .insert(name.to_string(), parsed);
            }
        }
    }
    Ok(())
}

/// A resource of the same kind, namespace and name as one read before replaces it (as applying it
/// to a cluster would): a variant directory restates only what it changes.
fn upsert<S>(list: &mut Vec<Resource<S>>, resource: Resource<S>) {
    match list.iter_mut().find(|known| {
        known.meta.name == resource.meta.name && known.meta.namespace == resource.meta.namespace
    }) {
        Some(known) => *known = resource,
        None => list.push(resource),
    }
}

/// Gateway API `Gateway`s (gateway.networking.k8s.io) are another resource of the same kind name.
fn is_istio_networking(value: &Value) -> bool {
    value
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|version| version.starts_with("networking.istio.io/"))
}

fn resource<S: DeserializeOwned>(value: &Value) -> Result<Resource<S>, String> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let meta: Meta = serde_json::from_value(value.get("metadata").cloned().unwrap_or(Value::Null))
        .map_err(|error| format!("{kind} metadata: {error}"))?;
    let spec = serde_json::from_value(value.get("spec").cloned().unwrap_or(Value::Null))
        .map_err(|error| format!("{kind} {}: spec: {error}", meta.name))?;
    Ok(Resource { meta, spec })
}
