//! The committed renderings are what the manifests render to.

use super::*;

/// The manifests the local gateways of the demo and the tests are rendered from.
fn local_manifests(root: &Path) -> Result<Manifests, String> {
    read(&variant_dirs(root, &VARIANTS[0]))
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
