//! host-allowlist: the plugin configuration as written (JSON). Field names are the contract of issue 3;
//! `schemas/host-allowlist.schema.json` describes the same document.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denied requests are answered by the filter and never reach the upstream.
    #[default]
    Enforce,
    /// Everything passes; denials are only recorded as "would deny".
    Audit,
}

/// The answer to a denied HTTP request (the filter adds a reason header).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    #[serde(default = "Denial::default_status")]
    pub status: u32,
    #[serde(default = "Denial::default_body")]
    pub body: String,
}

impl Denial {
    fn default_status() -> u32 {
        403
    }
    fn default_body() -> String {
        "host not allowed".to_string()
    }
}

impl Default for Denial {
    fn default() -> Self {
        Self {
            status: Self::default_status(),
            body: Self::default_body(),
        }
    }
}

/// What to do when a TLS-terminating listener's SNI names another host than the request's authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSniMismatch {
    /// Answer `421 Misdirected Request`, unless both names are allowed (HTTP/2 connection coalescing
    /// under a multi-name certificate is legitimate).
    #[default]
    Reject,
    /// Answer `421 Misdirected Request` whenever the SNI names another host than the authority, even
    /// when both are allowed: for ingress listeners where each host's TLS settings (its certificate,
    /// client certificates on its own chain) must hold for its requests, so that a connection opened
    /// for one allowed host cannot carry requests for another (domain fronting). Istio's own
    /// mutual-TLS SNI is excepted.
    Strict,
    /// Decide on the authority alone.
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub host_regex: Vec<String>,
    #[serde(default)]
    pub deny: Denial,
    #[serde(default)]
    pub on_sni_mismatch: OnSniMismatch,
}
