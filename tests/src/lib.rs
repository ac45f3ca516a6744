//! End-to-end harness for gateway-wasm: the built Wasm modules running in a real Envoy 1.40 child
//! process, in front of real HTTP and TLS servers on 127.0.0.1, driven by real HTTP/1.1 and HTTP/2
//! clients. Everything it starts is torn down on drop, also when a test fails.
//!
//! `cargo xtask demo` uses the same pieces to run the local ingress and egress gateways.

pub mod client;
pub mod compose;
pub mod compose_walkthrough;
pub mod envoy;
pub mod gateways;
pub mod json_lines;
pub mod kustomize;
pub mod lds;
pub mod modules;
pub mod paths;
pub mod pki;
pub mod template;
pub mod upstream;
pub mod walkthrough;
pub mod wasm_exports;
pub mod wasm_filter;
pub mod wasm_opt;

mod runtime;

/// Harness errors are strings with context: a test that fails should say what it was doing.
pub type Result<T> = std::result::Result<T, String>;

/// The values of header `name` (any case) in a list of `(name, value)` pairs, in order.
fn header_values<'h, 'n>(
    headers: &'h [(String, String)],
    name: &'n str,
) -> impl Iterator<Item = &'h str> + use<'h, 'n> {
    headers
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}
