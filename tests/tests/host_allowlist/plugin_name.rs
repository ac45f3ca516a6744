//! The plugin's name (Envoy's root id, Istio's `pluginName`) does not choose the mode: Envoy's
//! stream does. A network filter under any name decides on the SNI, an HTTP filter named
//! `network` decides on the authority, and neither traps.

use e2e::client::{self, HttpRequest, Protocol};
use e2e::modules::Module;
use e2e::wasm_filter::WasmFilter;
use serde_json::json;

use crate::support::{Expect, HttpGateway, PassthroughGateway, ALLOWED, DENIED};

fn config() -> String {
    json!({"hosts": ["www.google.com"]}).to_string()
}

#[test]
fn a_network_plugin_with_another_name_decides_on_the_sni() {
    let mut filter = WasmFilter::network(Module::HostAllowlist, config());
    filter.root_id = "egress-host-allowlist-tls".to_string();
    let gateway = PassthroughGateway::start_with(
        "allowlist-network-misnamed",
        filter,
        &["www.google.com", "evil.example.com"],
    );
    let tls = gateway.client(Protocol::Http1, Some("www.google.com"));
    let response = client::send(
        gateway.addr,
        Protocol::Http1,
        Some(&tls),
        &HttpRequest::get("www.google.com", "/"),
    )
    .unwrap_or_else(|error| panic!("{error}\n{}", gateway.log_tail()));
    assert_eq!(response.status, 200, "{}", gateway.log_tail());
    assert_eq!(response.header("x-upstream"), Some(gateway.upstream.name()));

    let tls = gateway.client(Protocol::Http1, Some("evil.example.com"));
    assert!(client::tls_handshake(gateway.addr, &tls).is_err());
    assert_eq!(gateway.upstream.connections(), 1, "{}", gateway.log_tail());
    assert_eq!(gateway.counter(ALLOWED), 1);
    assert_eq!(gateway.counter(DENIED), 1);
    assert!(
        !gateway.log_tail().contains("panicked"),
        "{}",
        gateway.log_tail()
    );
}

#[test]
fn an_http_plugin_named_network_decides_on_the_authority() {
    let mut filter = WasmFilter::http(Module::HostAllowlist, config());
    filter.root_id = "network".to_string();
    let gateway = HttpGateway::plain_with("allowlist-http-named-network", filter);
    gateway.check_authorities(&[
        ("www.google.com", Expect::Passes),
        ("evil.example.com", Expect::Denied("host_not_listed")),
    ]);
    assert_eq!(gateway.counter(ALLOWED), 2);
    assert_eq!(gateway.counter(DENIED), 2);
    assert!(
        !gateway.log_tail().contains("panicked"),
        "{}",
        gateway.log_tail()
    );
}
