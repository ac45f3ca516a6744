//! The committed renderings are what the manifests render to.

use super::*;

/// The manifests the local gateways of the demo and the tests are rendered from.
fn local_manifests(root: &Path) -> Result<Manifests, String> {
    read_variant(root, &VARIANTS[0])
}

#[test]
fn committed_renderings_are_fresh() {
    let root = workspace_root();
    for rendering in render_all(&root).unwrap() {
        let path = root.join("gateways").join(&rendering.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendering.text,
            "{} is stale: run `cargo xtask render` and commit it",
            path.display()
        );
    }
}

/// The egress gateway rendered from `manifests`, in real Envoy, with a stand-in for the google
/// hosts; the answer to `GET / Host: www.google.com` on its HTTP listener (port 80's).
fn egress_http_answer(manifests: &Manifests) -> Result<u16, String> {
    use e2e::client::{self, HttpRequest, Protocol};
    use e2e::envoy::{Envoy, EnvoyOptions};
    use e2e::gateways::{egress_gateway_vars, EgressUpstreamPorts};
    use e2e::upstream::Upstream;

    e2e::modules::build_once()?;
    let egress = render(manifests, Proxy::EgressGateway)?;
    let google = Upstream::start("google")?;
    let elsewhere = Upstream::start("elsewhere")?;
    let dir = Envoy::work_dir("egress-rendered")?;
    let vars = egress_gateway_vars(
        0,
        0,
        0,
        &dir.path().join("access.log"),
        EgressUpstreamPorts::http_only(google.port(), elsewhere.port(), elsewhere.port()),
    );
    let envoy = Envoy::start_in(
        EnvoyOptions::new("egress-rendered", e2e::template::render(&egress, &vars)?),
        dir,
    )?;
    let response = client::send(
        envoy.listener_addr("egress_http")?,
        Protocol::Http1,
        None,
        &HttpRequest::get("www.google.com", "/"),
    )?;
    Ok(response.status)
}

/// istiod puts a NETWORK plugin without `match` in front of every chain of the gateway, the
/// port-80 HTTP chain too: there the allowlist sees plaintext HTTP without SNI and closes it. The
/// shipped `match` ports keep the egress NETWORK plugins on the TLS listener only.
#[test]
fn a_network_plugin_without_match_ports_closes_the_http_chain() {
    let root = workspace_root();
    let shipped = local_manifests(&root).unwrap();
    assert!(
        shipped
            .plugins
            .iter()
            .filter(|plugin| plugin.spec.plugin_type.as_deref() == Some("NETWORK"))
            .all(|plugin| !plugin.spec.traffic_selectors.is_empty()),
        "every shipped NETWORK plugin has match ports"
    );
    assert_eq!(egress_http_answer(&shipped), Ok(200));

    let mut without_match = local_manifests(&root).unwrap();
    for plugin in &mut without_match.plugins {
        plugin.spec.traffic_selectors.clear();
    }
    let answer = egress_http_answer(&without_match);
    assert!(
        answer.is_err(),
        "the HTTP chain should be closed by the allowlist in network mode, got {answer:?}"
    );
}

/// Each gateway logs through the provider its Telemetry selects: the shipped manifests' native
/// JSON record (its own `gateway` constant, no Wasm record), the opt-in Wasm record, and the
/// sampled variant's CEL filter as the component writes it, on every access log of the gateway.
#[test]
fn the_access_log_is_the_telemetry_provider_s() {
    let root = workspace_root();
    let shipped = read_variant(&root, &VARIANTS[0]).unwrap();
    let egress = render(&shipped, Proxy::EgressGateway).unwrap();
    let ingress = render(&shipped, Proxy::IngressGateway).unwrap();
    assert!(
        egress.contains("provider gateway-wasm-json-egress")
            && egress.contains("gateway: \"egress\"")
    );
    assert!(
        ingress.contains("provider gateway-wasm-json-ingress")
            && ingress.contains("gateway: \"ingress\"")
    );
    for rendering in [&egress, &ingress] {
        assert!(
            !rendering.contains("gateway_wasm.access_log"),
            "{rendering}"
        );
        assert!(
            rendering.contains("subset: \"%FILTER_STATE(wasm.gateway_wasm.subset.name:PLAIN)%\"")
        );
    }
    // Sidecars keep Istio's own log: no Telemetry selects them and the mesh sets no accessLogFile.
    assert!(!render(&shipped, Proxy::Sidecar)
        .unwrap()
        .contains("access_log"));

    let wasm = read_variant(&root, &VARIANTS[3]).unwrap();
    let egress = render(&wasm, Proxy::EgressGateway).unwrap();
    assert!(
        egress.contains("inline_string: \"%FILTER_STATE(wasm.gateway_wasm.access_log:PLAIN)%\\n\"")
    );
    assert!(!egress.contains("json_format"));

    let component = std::fs::read_to_string(
        root.join("wasm-plugins-manifests/kustomize/sampled-access-log/kustomization.yaml"),
    )
    .unwrap();
    let expression = component
        .split("expression: >-\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let sampled = read_variant(&root, &VARIANTS[4]).unwrap();
    let egress = render(&sampled, Proxy::EgressGateway).unwrap();
    let logs = egress.matches("- name: envoy.access_loggers.file").count();
    let filtered = egress
        .matches(&format!(
            "expression: {}",
            serde_json::to_string(expression.trim()).unwrap()
        ))
        .count();
    // The HTTP connection manager, the two listeners' NR logs and the three TLS chains.
    assert_eq!((logs, filtered), (6, 6), "{egress}");
}

#[test]
fn a_telemetry_naming_an_undefined_provider_fails_the_rendering_naming_it() {
    let root = workspace_root();
    let mut manifests = read_variant(&root, &VARIANTS[0]).unwrap();
    manifests
        .extension_providers
        .remove("gateway-wasm-json-egress");
    let error = render(&manifests, Proxy::EgressGateway).unwrap_err();
    assert!(error.contains("\"gateway-wasm-json-egress\""), "{error}");
}
