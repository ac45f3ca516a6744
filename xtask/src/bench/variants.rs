//! What is measured: each variant is one Envoy configuration (its HTTP filters and access log), what
//! its functional check expects, and which Wasm modules it loads.
//!
//! Every variant does its work for the same request (`Host: allowed.example.com`), so their costs
//! compare: the allowlist allows it, the tag `bench` is added, the JSON record is written to a file.

use std::fmt::Write as _;
use std::path::Path;

use e2e::modules::Module;
use e2e::paths;
use e2e::wasm_filter::{self, WasmFilter};

/// The host every measured request is for; every allowlist lists it (last, in the scaling runs).
pub const ALLOWED_HOST: &str = "allowed.example.com";
/// A host no allowlist lists; the functional check expects 403 for it.
pub const DENIED_HOST: &str = "denied.example.com";
/// The tag header and the value every tagging variant sets.
pub const TAG_HEADER: &str = "x-route-subset";
pub const TAG: &str = "bench";

/// Scaling runs: allowlists of these sizes, ours against RBAC's list form.
pub const SCALING_SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The suite, each filter alone, and what they are measured against.
    Main,
    /// Allowlist size against cost.
    Scaling,
    /// What one host call costs: the probe filter repeating it.
    HostCalls,
}

/// What the functional check expects of a variant before it may be measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect {
    /// A host outside the allowlist is answered 403.
    pub denies: bool,
    /// The upstream receives `x-route-subset: bench`.
    pub tags: bool,
    /// Each request leaves one JSON line in the access-log file, containing these fragments.
    pub log_contains: Option<&'static [&'static str]>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Envoy's own `json_format`, Istio's fields (the native and Lua variants).
    NativeJson,
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
        match self.access_log {
            None => String::new(),
            Some(format) => access_log_yaml(format, path),
        }
    }
}

/// Every variant in measurement order.
pub fn all(quick: bool) -> Vec<Variant> {
    let mut variants = vec![
        plain(),
        native(),
        lua(),
        wasm_passthrough(),
        allowlist_alone(),
        tagger_alone(),
        access_log_alone(),
        suite(),
        combined(),
    ];
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

fn native() -> Variant {
    Variant {
        filters: vec![Filter::Yaml(rbac_yaml(&[ALLOWED_HOST])), Filter::Yaml(header_mutation_yaml())],
        access_log: Some(LogFormat::NativeJson),
        expect: Expect {
            denies: true,
            tags: true,
            log_contains: Some(&["\"authority\":\"allowed.example.com\"", "\"subset\":\"bench\""]),
        },
        ..variant(
            "native",
            "Envoy's own filters: RBAC allowlist on :authority, header_mutation adds the tag, file access log with json_format",
        )
    }
}

fn lua() -> Variant {
    Variant {
        filters: vec![Filter::Yaml(lua_yaml())],
        access_log: Some(LogFormat::NativeJson),
        expect: Expect {
            denies: true,
            tags: true,
            log_contains: Some(&["\"decision\":\"allowed\"", "\"subset\":\"bench\""]),
        },
        ..variant(
            "lua",
            "one Lua filter: allowlist (table lookup on the normalised :authority), tag header, decision as dynamic metadata; file access log with json_format",
        )
    }
}

/// The Wasm boundary alone: the benchmark's probe filter (`benches/wasm-probe`) with nothing to do.
fn wasm_passthrough() -> Variant {
    Variant {
        filters: vec![Filter::Yaml(probe_yaml(""))],
        ..variant(
            "wasm-passthrough",
            "a Rust proxy-wasm filter that does nothing: what every Wasm filter pays before its own work",
        )
    }
}

/// The probe making one kind of host call [`PROBE_CALLS`] times per request.
fn host_call(call: &str) -> Variant {
    Variant {
        group: Group::HostCalls,
        filters: vec![Filter::Yaml(probe_yaml(&format!("{call} {PROBE_CALLS}")))],
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
pub fn probe_path() -> std::path::PathBuf {
    paths::cargo_wasm_dir().join("wasm_probe.wasm")
}

fn probe_yaml(configuration: &str) -> String {
    wasm_filter::http_yaml_for_file("probe", &probe_path(), configuration)
}

fn allowlist_config(hosts: &[String]) -> String {
    serde_json::json!({ "hosts": hosts }).to_string()
}

fn tagger_config() -> String {
    serde_json::json!({
        "rules": [{"match": {"hosts": [ALLOWED_HOST]}, "subset": TAG}]
    })
    .to_string()
}

fn access_log_config() -> String {
    serde_json::json!({"gateway": "bench", "sinks": {"filter_state": true}}).to_string()
}

fn allowlist_alone() -> Variant {
    Variant {
        filters: vec![Filter::Wasm(WasmFilter::http(
            Module::HostAllowlist,
            allowlist_config(&[ALLOWED_HOST.to_string()]),
        ))],
        expect: Expect {
            denies: true,
            ..Expect::default()
        },
        modules: vec![Module::HostAllowlist],
        ..variant(
            "host-allowlist",
            "our host-allowlist alone (one host listed)",
        )
    }
}

fn tagger_alone() -> Variant {
    Variant {
        filters: vec![Filter::Wasm(WasmFilter::http(
            Module::SubsetTagger,
            tagger_config(),
        ))],
        expect: Expect {
            tags: true,
            ..Expect::default()
        },
        modules: vec![Module::SubsetTagger],
        ..variant(
            "subset-tagger",
            "our subset-tagger alone (one rule on the host)",
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
            log_contains: Some(&[
                "\"authority\":\"allowed.example.com\"",
                "\"gateway\":\"bench\"",
            ]),
            ..Expect::default()
        },
        modules: vec![Module::AccessLog],
        ..variant(
            "access-log",
            "our access-log alone: the JSON record as filter state, printed by a file access log",
        )
    }
}

fn suite() -> Variant {
    Variant {
        filters: vec![
            Filter::Wasm(WasmFilter::http(
                Module::HostAllowlist,
                allowlist_config(&[ALLOWED_HOST.to_string()]),
            )),
            Filter::Wasm(WasmFilter::http(Module::SubsetTagger, tagger_config())),
            Filter::Wasm(WasmFilter::http(Module::AccessLog, access_log_config())),
        ],
        access_log: Some(LogFormat::WasmRecord),
        expect: Expect {
            denies: true,
            tags: true,
            log_contains: Some(&["\"decision\":\"allowed\"", "\"subset\":\"bench\""]),
        },
        modules: vec![
            Module::HostAllowlist,
            Module::SubsetTagger,
            Module::AccessLog,
        ],
        ..variant(
            "suite",
            "the three modules in one chain: host-allowlist, subset-tagger, access-log",
        )
    }
}

fn combined() -> Variant {
    let configuration = serde_json::json!({
        "allowlist": {"hosts": [ALLOWED_HOST]},
        "subset": {"rules": [{"match": {"hosts": [ALLOWED_HOST]}, "subset": TAG}]},
        "access_log": {"gateway": "bench", "sinks": {"filter_state": true}},
    })
    .to_string();
    Variant {
        filters: vec![Filter::Wasm(WasmFilter::http(
            Module::Gateway,
            configuration,
        ))],
        access_log: Some(LogFormat::WasmRecord),
        expect: Expect {
            denies: true,
            tags: true,
            log_contains: Some(&["\"decision\":\"allowed\"", "\"subset\":\"bench\""]),
        },
        modules: vec![Module::Gateway],
        ..variant(
            "gateway",
            "the combined module: the same three features in one filter",
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

fn access_log_yaml(format: LogFormat, path: &Path) -> String {
    let path = serde_json::Value::String(path.display().to_string());
    let log_format = match format {
        LogFormat::WasmRecord => {
            "      text_format_source:\n        inline_string: \"%FILTER_STATE(wasm.gateway_wasm.access_log:PLAIN)%\\n\"\n".to_string()
        }
        LogFormat::NativeJson => {
            // Istio's JSON access-log fields, plus what our record adds (decision, subset).
            let fields = [
                ("start_time", "%START_TIME%"),
                ("method", "%REQ(:METHOD)%"),
                ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
                ("protocol", "%PROTOCOL%"),
                ("response_code", "%RESPONSE_CODE%"),
                ("response_flags", "%RESPONSE_FLAGS%"),
                ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
                ("bytes_received", "%BYTES_RECEIVED%"),
                ("bytes_sent", "%BYTES_SENT%"),
                ("duration", "%DURATION%"),
                ("upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"),
                ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
                ("user_agent", "%REQ(USER-AGENT)%"),
                ("request_id", "%REQ(X-REQUEST-ID)%"),
                ("authority", "%REQ(:AUTHORITY)%"),
                ("upstream_host", "%UPSTREAM_HOST%"),
                ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
                ("upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"),
                ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
                ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
                ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
                ("route_name", "%ROUTE_NAME%"),
                ("gateway", "bench"),
                ("decision", "%DYNAMIC_METADATA(bench.lua:decision)%"),
                ("subset", "%REQ(X-ROUTE-SUBSET)%"),
            ];
            let mut yaml = String::from("      json_format:\n");
            for (key, value) in fields {
                let _ = writeln!(yaml, "        {key}: \"{value}\"");
            }
            yaml
        }
    };
    format!(
        "access_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {path}\n    log_format:\n{log_format}"
    )
}
