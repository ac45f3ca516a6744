//! What is local in a rendering: the names the harness finds listeners by, the placeholders that
//! stand for ports and addresses, and the stand-ins that answer for the services Istio would
//! reach (gateways/run-envoy.sh and tests/src/template.rs fill the placeholders in).

use gateway_core::plugin_config::PluginFilter;

/// `{{NAME}}`, the placeholder syntax of gateways/run-envoy.sh and tests/src/template.rs.
pub fn placeholder(name: &str) -> String {
    format!("{{{{{name}}}}}")
}

/// The local endpoint (host placeholder, port placeholder) standing in for a service port.
pub fn stand_in(host: &str, port: u32) -> Result<(String, String), String> {
    let (host_var, port_var) = match (host, port) {
        ("www.google.com" | "google.com", 80) => ("GOOGLE_HOST", "GOOGLE_PORT"),
        ("www.google.com" | "google.com", 443) => ("GOOGLE_HOST", "GOOGLE_TLS_PORT"),
        ("command-runner.default.svc.cluster.local", 8080) => ("APP_HOST", "APP_PORT"),
        ("log-collector.observability.svc.cluster.local", 8080) => {
            ("COLLECTOR_HOST", "COLLECTOR_PORT")
        }
        ("istio-egressgateway.istio-system.svc.cluster.local", 80) => {
            ("EGRESS_GATEWAY_HOST", "EGRESS_GATEWAY_HTTP_PORT")
        }
        ("istio-egressgateway.istio-system.svc.cluster.local", 443) => {
            ("EGRESS_GATEWAY_HOST", "EGRESS_GATEWAY_TLS_PORT")
        }
        // Every other external host is the rest of the internet: what nothing may reach.
        (host, 80) if !host.ends_with(".cluster.local") => ("INTERNET_HOST", "INTERNET_PORT"),
        (host, 443) if !host.ends_with(".cluster.local") => ("INTERNET_HOST", "INTERNET_TLS_PORT"),
        _ => {
            return Err(format!(
                "no local stand-in for {host} port {port} (xtask/src/render/local.rs)"
            ))
        }
    };
    Ok((placeholder(host_var), placeholder(port_var)))
}

/// The file a plugin's `url` names, as Istio's agent would have fetched it: the image's filter
/// (read as `cargo xtask check-config` reads it) is the module `target/modules/<filter>.wasm` the
/// build installs.
pub fn module_file(url: &str) -> Result<String, String> {
    let filter = PluginFilter::of_url(url)
        .ok_or_else(|| format!("url {url:?} names none of the filters"))?;
    Ok(format!(
        "{}/{}.wasm",
        placeholder("WASM_DIR"),
        filter.name().replace('-', "_")
    ))
}
