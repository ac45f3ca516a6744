//! host-allowlist end to end: the module in real Envoy 1.40 in front of real upstreams on
//! loopback, driven by real HTTP/1.1, HTTP/2 and TLS clients. One Envoy per configuration, many
//! requests through it; every denial is checked against what the upstream recorded.

mod config;
mod egress;
mod http;
mod istio_sni;
mod normalisation;
mod passthrough;
mod plugin_name;
mod ports;
mod sni;
mod support;
