//! What is measured: each variant is one Envoy configuration (its HTTP filters and access log), what
//! its functional check expects, and which Wasm modules it loads.
//!
//! Every variant does its work for the same request (`Host: allowed.example.com`), so their costs
//! compare: the allowlist allows it, the tag is added, the JSON record is written to a file. The
//! `suite` and `gateway` rows run the egress gateway's shipped plugin configurations and access-log
//! format ([`shipped`](super::shipped)); the native and Lua equivalents log the same Istio fields.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use e2e::modules::Module;
use e2e::paths;
use e2e::wasm_exports;
use e2e::wasm_filter::{self, WasmFilter};

use super::shipped::Shipped;

/// The host every measured request is for; every allowlist lists it (last, in the scaling runs).
pub const ALLOWED_HOST: &str = "allowed.example.com";
/// A host no allowlist lists; the functional check expects 403 for it.
pub const DENIED_HOST: &str = "denied.example.com";
/// The tag header and the value the native, Lua and hand-configured tagging variants set.
pub const TAG_HEADER: &str = "x-route-subset";
pub const TAG: &str = "bench";

/// Scaling runs: allowlists of these sizes, ours against RBAC's list form.
pub const SCALING_SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The suite, each filter alone, and what they are measured against.
    Main,
    /// What Envoy entering each proxy-wasm callback costs: the do-nothing probe exporting one.
    Callbacks,
    /// Allowlist size against cost.
    Scaling,
    /// What one host call costs: the probe filter repeating it.
    HostCalls,
}

/// What the functional check expects of a variant before it may be measured.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// A host outside the allowlist is answered 403.
    pub denies: bool,
    /// The upstream receives `x-route-subset` with this value.
    pub tag: Option<String>,
    /// Each request leaves one JSON line in the access-log file, containing these fragments (none:
    /// the variant does not log).
    pub log_contains: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub what: String,
    pub group: Group,
    pub filters: Vec<Filter>,
    /// The `access_log:` block of the connection manager, if the variant logs.
    pub access_log: Option<LogFormat>,
    pub expect: Expect,
    /// Wasm modules the variant loads, for the size columns.
    pub modules: Vec<Module>,
    /// Allowlist size for scaling variants.
    pub hosts: Option<usize>,
    /// The host call a probe variant repeats.
    pub probe_call: Option<String>,
}

/// An HTTP filter, rendered into `http_filters` once the access log path is known.
#[derive(Debug, Clone)]
pub enum Filter {
    Wasm(WasmFilter),
    Yaml(String),
}

/// The file access logger's format.
#[derive(Debug, Clone)]
pub enum LogFormat {
    /// Envoy's own `json_format` with these fields (nested objects allowed).
    Json(Map<String, Value>),
    /// The access-log filter's record, published as filter state and printed as it is.
    WasmRecord,
}

impl Variant {
    pub fn http_filters_yaml(&self) -> String {
        self.filters
            .iter()
            .map(|filter| match filter {
                Filter::Wasm(wasm) => wasm.http_yaml(),
                Filter::Yaml(yaml) => yaml.clone(),
            })
            .collect()
    }

    pub fn access_log_yaml(&self, path: &Path) -> String {
        match &self.access_log {
            None => String::new(),
            Some(format) => access_log_yaml(format, path),
        }
    }
}

/// Every variant in measurement order.
pub fn all(quick: bool, shipped: &Shipped) -> Vec<Variant> {
    let mut variants = vec![
        plain(),
        native(shipped),
        lua(shipped),
        wasm_passthrough(),
        allowlist_alone(shipped),
        tagger_alone(shipped),
        access_log_alone(),
        suite(shipped),
        combined(shipped),
        suite_wasm_log(shipped),
    ];
    variants.extend(CALLBACKS.map(callback));
    variants.extend(HOST_CALLS.map(host_call));
    for size in SCALING_SIZES {
        // The 100k RBAC list takes Envoy long to load and is slow to serve; it is measured in the
        // full run only.
        variants.push(scaling_ours(size));
        if !(quick && size == 100_000) {
            variants.push(scaling_rbac(size));
        }
    }
    variants
}

fn variant(name: &str, what: &str) -> Variant {
    Variant {
        name: name.to_string(),
        what: what.to_string(),
        group: Group::Main,
        filters: Vec::new(),
        access_log: None,
        expect: Expect::default(),
        modules: Vec::new(),
        hosts: None,
        probe_call: None,
    }
}

fn plain() -> Variant {
    variant(
        "plain",
        "Envoy, router only: the floor every other variant is measured against",
    )
}

/// Fragments of a JSON record, as Envoy's `json_format` writes them.
fn fragments(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .map(|(key, value)| format!("\"{key}\":\"{value}\""))
        .collect()
}

fn native(shipped: &Shipped) -> Variant {
    Variant {
        filters: vec![
            Filter::Yaml(rbac_yaml(&[ALLOWED_HOST])),
            Filter::Yaml(header_mutation_yaml()),
        ],
        access_log: Some(LogFormat::Json(native_labels(&shipped.log_labels))),
        expect: Expect {
            denies: true,
            tag: Some(TAG.to_string()),
            log_contains: fragments(&[("authority", ALLOWED_HOST), ("subset", TAG)]),
        },
        ..variant(
            "native",
            "Envoy's own filters: RBAC allowlist on :authority, header_mutation adds the tag, file access log with the shipped format's Istio fields (json_format)",
        )
    }
}

fn lua(shipped: &Shipped) -> Variant {
    Variant {
        filters: vec![Filter::Yaml(lua_yaml())],
        access_log: Some(LogFormat::Json(native_labels(&shipped.log_labels))),
        expect: Expect {
            denies: true,
            tag: Some(TAG.to_string()),
            log_contains: fragments(&[("decision", "allowed"), ("subset", TAG)]),
        },
        ..variant(
            "lua",
            "one Lua filter: allowlist (table lookup on the normalised :authority), tag header, decision as dynamic metadata; the native variant's access log",
        )
    }
}

/// The Wasm boundary alone: the benchmark's probe filter (`benches/wasm-probe`) with nothing to do,
/// every callback exported as the SDK builds it.
fn wasm_passthrough() -> Variant {
    Variant {
        filters: vec![Filter::Yaml(probe_yaml(&probe_path(), ""))],
        ..variant(
            "wasm-passthrough",
            "a Rust proxy-wasm filter that does nothing, every callback exported (the SDK's default): what a Wasm filter pays before its own work",
        )
    }
}

/// The callbacks the callback variants export one at a time (`none`: only those every module
/// keeps, [`wasm_exports::ALWAYS_KEPT`]). Envoy enters each of these for a GET answered with a
/// body; the request body and trailers callbacks are not entered for it.
pub const CALLBACKS: [&str; 6] = [
    "none",
    "proxy_on_request_headers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_log",
    "proxy_on_done",
];

/// The name of the variant whose probe exports `callback`.
pub fn callback_variant(callback: &str) -> String {
    format!("callback-{}", callback.trim_start_matches("proxy_on_"))
}

/// The do-nothing probe exporting `callback` only, beyond what every module keeps.
fn callback(callback: &'static str) -> Variant {
    Variant {
        group: Group::Callbacks,
        filters: vec![Filter::Yaml(probe_yaml(&trimmed_probe_path(callback), ""))],
        ..variant(
            &callback_variant(callback),
            &format!("the do-nothing probe exporting {callback} beyond the kept callbacks"),
        )
    }
}

/// The probe making one kind of host call [`PROBE_CALLS`] times per request.
fn host_call(call: &str) -> Variant {
    Variant {
        group: Group::HostCalls,
        filters: vec![Filter::Yaml(probe_yaml(
            &probe_path(),
            &format!("{call} {PROBE_CALLS}"),
        ))],
        probe_call: Some(call.to_string()),
        ..variant(
            &format!("probe-{call}"),
            &format!("the probe filter making {PROBE_CALLS} {call} calls per request"),
        )
    }
}

/// The host calls the probe can make, as its configuration names them.
const HOST_CALLS: [&str; 8] = [
    "request_header",
    "request_headers",
    "property",
    "log_property",
    "set_filter_state",
    "increment_counter",
    "set_request_header",
    "clear_route_cache",
];

/// Calls per request in a host-call variant: enough to stand well above the round-to-round noise.
pub const PROBE_CALLS: u32 = 10;

/// The probe's crate, which `cargo xtask bench` builds with the shipped modules.
pub const PROBE_PACKAGE: &str = "wasm-probe";

/// The built probe module.
pub fn probe_path() -> PathBuf {
    paths::cargo_wasm_dir().join("wasm_probe.wasm")
}

/// The probe with only `callback` exported beyond the kept callbacks, written by
/// [`write_trimmed_probes`].
fn trimmed_probe_path(callback: &str) -> PathBuf {
    paths::target_dir()
        .join("bench")
        .join(format!("wasm_probe.{callback}.wasm"))
}

/// Writes the probe once per [`CALLBACKS`] entry, its other callback exports removed as the build
/// removes a filter's unimplemented ones.
pub fn write_trimmed_probes() -> Result<(), String> {
    let path = probe_path();
    let wasm = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    for callback in CALLBACKS {
        let trimmed = wasm_exports::without_unused_callbacks(&wasm, &[callback])
            .map_err(|error| format!("{}: {error}", path.display()))?
            .unwrap_or_else(|| wasm.clone());
        let to = trimmed_probe_path(callback);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        }
        std::fs::write(&to, trimmed).map_err(|error| format!("{}: {error}", to.display()))?;
    }
    Ok(())
}

fn probe_yaml(module: &Path, configuration: &str) -> String {
    wasm_filter::http_yaml_for_file("probe", module, configuration)
}

fn allowlist_config(hosts: &[String]) -> String {
    serde_json::json!({ "hosts": hosts }).to_string()
}

fn access_log_config() -> String {
    serde_json::json!({"gateway": "bench", "sinks": {"filter_state": true}}).to_string()
}

/// What the shipped suite's record holds for the measured request.
fn shipped_record(shipped: &Shipped) -> Vec<String> {
    fragments(&[("decision", "allowed"), ("subset", &shipped.tag)])
}

fn shipped_allowlist(shipped: &Shipped) -> Filter {
    Filter::Wasm(WasmFilter::http(
        Module::HostAllowlist,
        shipped.allowlist.to_string(),
    ))
}

fn shipped_tagger(shipped: &Shipped) -> Filter {
    Filter::Wasm(WasmFilter::http(
        Module::SubsetTagger,
        shipped.tagger.to_string(),
    ))
}

fn allowlist_alone(shipped: &Shipped) -> Variant {
    Variant {
        filters: vec![shipped_allowlist(shipped)],
        expect: Expect {
            denies: true,
            ..Expect::default()
        },
        modules: vec![Module::HostAllowlist],
        ..variant(
            "host-allowlist",
            "our host-allowlist alone, its shipped pluginConfig (the bench host listed)",
        )
    }
}

fn tagger_alone(shipped: &Shipped) -> Variant {
    Variant {
        filters: vec![shipped_tagger(shipped)],
        expect: Expect {
            tag: Some(shipped.tag.clone()),
            ..Expect::default()
        },
        modules: vec![Module::SubsetTagger],
        ..variant(
            "subset-tagger",
            "our subset-tagger alone, its shipped pluginConfig (one rule on the bench host)",
        )
    }
}

fn access_log_alone() -> Variant {
    Variant {
        filters: vec![Filter::Wasm(WasmFilter::http(
            Module::AccessLog,
            access_log_config(),
        ))],
        access_log: Some(LogFormat::WasmRecord),
        expect: Expect {
            log_contains: fragments(&[("authority", ALLOWED_HOST), ("gateway", "bench")]),
            ..Expect::default()
        },
        modules: vec![Module::AccessLog],
        ..variant(
            "access-log",
            "our access-log alone (opt-in): every request's JSON record as filter state, printed by a file access log",
        )
    }
}

fn suite(shipped: &Shipped) -> Variant {
    Variant {
        filters: vec![shipped_allowlist(shipped), shipped_tagger(shipped)],
        access_log: Some(LogFormat::Json(shipped.log_labels.clone())),
        expect: Expect {
            denies: true,
            tag: Some(shipped.tag.clone()),
            log_contains: shipped_record(shipped),
        },
        modules: vec![Module::HostAllowlist, Module::SubsetTagger],
        ..variant(
            "suite",
            "the shipped egress HTTP path: host-allowlist and subset-tagger with egress-gateway.yaml's pluginConfigs, Envoy's file access log with mesh-config.yaml's JSON format",
        )
    }
}

fn combined(shipped: &Shipped) -> Variant {
    let configuration = serde_json::json!({
        "allowlist": shipped.allowlist,
        "subset": shipped.tagger,
    })
    .to_string();
    Variant {
        filters: vec![Filter::Wasm(WasmFilter::http(
            Module::Gateway,
            configuration,
        ))],
        access_log: Some(LogFormat::Json(shipped.log_labels.clone())),
        expect: Expect {
            denies: true,
            tag: Some(shipped.tag.clone()),
            log_contains: shipped_record(shipped),
        },
        modules: vec![Module::Gateway],
        ..variant(
            "gateway",
            "the combined module: allowlist and subset sections with the same configurations, the same native access log",
        )
    }
}

fn suite_wasm_log(shipped: &Shipped) -> Variant {
    Variant {
        filters: vec![
            shipped_allowlist(shipped),
            shipped_tagger(shipped),
            Filter::Wasm(WasmFilter::http(Module::AccessLog, access_log_config())),
        ],
        access_log: Some(LogFormat::WasmRecord),
        expect: Expect {
            denies: true,
            tag: Some(shipped.tag.clone()),
            log_contains: shipped_record(shipped),
        },
        modules: vec![
            Module::HostAllowlist,
            Module::SubsetTagger,
            Module::AccessLog,
        ],
        ..variant(
            "suite-wasm-log",
            "the earlier suite: the same two modules and access-log, its Wasm record printed by the file access log",
        )
    }
}

/// `size` hosts, the measured one last, so a list scan walks them all.
fn scaling_hosts(size: usize) -> Vec<String> {
    let mut hosts: Vec<String> = (1..size).map(|i| format!("h{i}.bench.example")).collect();
    hosts.push(ALLOWED_HOST.to_string());
    hosts
}

fn scaling_ours(size: usize) -> Variant {
    Variant {
        group: Group::Scaling,
        filters: vec![Filter::Wasm(WasmFilter::http(
            Module::HostAllowlist,
            allowlist_config(&scaling_hosts(size)),
        ))],
        expect: Expect {
            denies: true,
            ..Expect::default()
        },
        modules: vec![Module::HostAllowlist],
        hosts: Some(size),
        ..variant(
            &format!("allowlist-{size}"),
            &format!("host-allowlist with {size} hosts"),
        )
    }
}

fn scaling_rbac(size: usize) -> Variant {
    let hosts = scaling_hosts(size);
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    Variant {
        group: Group::Scaling,
        filters: vec![Filter::Yaml(rbac_yaml(&hosts))],
        expect: Expect {
            denies: true,
            ..Expect::default()
        },
        hosts: Some(size),
        ..variant(
            &format!("rbac-{size}"),
            &format!("RBAC with {size} :authority matchers (list form)"),
        )
    }
}

/// RBAC allowing requests whose `:authority` is one of `hosts`, case-insensitively: the list form,
/// one permission per host, as an operator writes it (exact names; ports are not covered).
fn rbac_yaml(hosts: &[&str]) -> String {
    let mut yaml = String::from(
        "- name: envoy.filters.http.rbac\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC\n    rules:\n      action: ALLOW\n      policies:\n        allowlist:\n          principals: [{any: true}]\n          permissions:\n",
    );
    for host in hosts {
        let _ = writeln!(
            yaml,
            "          - header: {{name: \":authority\", string_match: {{exact: \"{host}\", ignore_case: true}}}}"
        );
    }
    yaml
}

fn header_mutation_yaml() -> String {
    format!(
        "- name: envoy.filters.http.header_mutation\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation\n    mutations:\n      request_mutations:\n      - append:\n          header: {{key: {TAG_HEADER}, value: {TAG}}}\n          append_action: OVERWRITE_IF_EXISTS_OR_ADD\n"
    )
}

fn lua_yaml() -> String {
    let code = format!(
        r#"local allowed = {{ ["{ALLOWED_HOST}"] = true }}

function envoy_on_request(handle)
  local authority = handle:headers():get(":authority") or ""
  local host = string.lower(authority):gsub(":%d+$", ""):gsub("%.$", "")
  local meta = handle:streamInfo():dynamicMetadata()
  if not allowed[host] then
    meta:set("bench.lua", "decision", "denied")
    handle:respond({{[":status"] = "403", ["x-gateway-wasm-denied-reason"] = "host_not_listed"}}, "host not allowed")
    return
  end
  meta:set("bench.lua", "decision", "allowed")
  handle:headers():replace("{TAG_HEADER}", "{TAG}")
  handle:clearRouteCache()
end
"#
    );
    let indented: String = code
        .lines()
        .map(|line| format!("        {line}\n"))
        .collect();
    format!(
        "- name: envoy.filters.http.lua\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n    default_source_code:\n      inline_string: |\n{indented}"
    )
}

/// The shipped format with the native stand-ins for what our filters publish: the same Istio
/// fields, the decision from the Lua filter's dynamic metadata (RBAC publishes none for an allowed
/// request, so native logs it as null) and the tag from the request header. The allowlist's reason
/// and rule have no native equivalent and are left out.
fn native_labels(shipped: &Map<String, Value>) -> Map<String, Value> {
    shipped
        .iter()
        .filter_map(|(key, value)| {
            let value = match value {
                Value::String(format) if format.contains("%FILTER_STATE(") => {
                    native_stand_in(format)?
                }
                Value::Object(fields) => Value::Object(native_labels(fields)),
                other => other.clone(),
            };
            Some((key.clone(), value))
        })
        .collect()
}

fn native_stand_in(format: &str) -> Option<Value> {
    let stand_in = if format.contains("gateway_wasm.allowlist.decision") {
        "%DYNAMIC_METADATA(bench.lua:decision)%"
    } else if format.contains("gateway_wasm.subset.name") {
        "%REQ(X-ROUTE-SUBSET)%"
    } else {
        return None;
    };
    Some(Value::from(stand_in))
}

fn access_log_yaml(format: &LogFormat, path: &Path) -> String {
    let path = Value::String(path.display().to_string());
    let log_format = match format {
        LogFormat::WasmRecord => {
            "      text_format_source:\n        inline_string: \"%FILTER_STATE(wasm.gateway_wasm.access_log:PLAIN)%\\n\"\n".to_string()
        }
        // JSON is YAML: the fields as one flow mapping.
        LogFormat::Json(fields) => format!(
            "      json_format: {}\n",
            Value::Object(fields.clone())
        ),
    };
    format!(
        "access_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {path}\n    log_format:\n{log_format}"
    )
}
