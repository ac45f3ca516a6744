//! The subset-tagger's proxy-wasm side, shared by the subset-tagger filter and the combined gateway
//! module: its counters, writing the tag header, and the randomness of unkeyed splits.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use gateway_core::stable_hash::fmix64;
use gateway_core::subset::{Decision, HeaderAction, Outcome, TaggerConfig};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType};

use crate::{clear_route_cache, log, Counter};

/// The counters of one configuration, defined at configure time so a request only increments.
pub struct Stats {
    /// `subset_tagger.tagged` tagged `subset`, one per subset the configuration can choose.
    tagged: HashMap<String, Counter>,
    /// `subset_tagger.untagged`: no rule matched and there is no default subset.
    untagged: Counter,
    /// `subset_tagger.client_trusted`: `trust_client_header` let a client-sent tag stand.
    client_trusted: Counter,
    /// `subset_tagger.client_header_replaced`: a client-sent tag was overwritten or removed.
    client_header_replaced: Counter,
}

impl Stats {
    pub fn define(filter: &str, config: &TaggerConfig) -> Self {
        let counter = |name: &str| Counter::define(filter, &format!("subset_tagger.{name}"));
        Self {
            tagged: config
                .subsets()
                .into_iter()
                .map(|subset| {
                    let tagged = Counter::define_tagged(
                        filter,
                        &[("subset", subset)],
                        "subset_tagger.tagged",
                    );
                    (subset.to_string(), tagged)
                })
                .collect(),
            untagged: counter("untagged"),
            client_trusted: counter("client_trusted"),
            client_header_replaced: counter("client_header_replaced"),
        }
    }

    pub fn count(&self, decision: &Decision) {
        let counter = match decision.tagged_subset() {
            Some(subset) => self.tagged.get(subset).copied(),
            None if matches!(decision.outcome, Outcome::ClientTrusted { .. }) => {
                Some(self.client_trusted)
            }
            None => Some(self.untagged),
        };
        counter.into_iter().for_each(Counter::increment);
        if decision.client_header_replaced {
            self.client_header_replaced.increment();
        }
    }
}

/// Writes or removes the tag header, then has Envoy choose the route again.
pub fn apply_header(filter: &str, header: &str, action: &HeaderAction) {
    let value = match action {
        HeaderAction::Unchanged => return,
        HeaderAction::Set(value) => Some(value.as_str()),
        HeaderAction::Remove => None,
    };
    // Replacing sets one value in place of every copy; `None` removes every copy.
    if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, header, value) {
        log(
            LogLevel::Error,
            &format!("{filter}: cannot write request header {header}: {status:?}"),
        );
        return;
    }
    clear_route_cache(filter);
}

/// Adds the sticky-key cookie decided with the request to the response.
pub fn add_set_cookie(filter: &str, cookie: &str) {
    // Added, not replaced: the upstream's own cookies must reach the client too.
    if let Err(status) =
        hostcalls::add_map_value(MapType::HttpResponseHeaders, "set-cookie", cookie)
    {
        log(
            LogLevel::Warn,
            &format!("{filter}: cannot add set-cookie: {status:?}"),
        );
    }
}

/// Every request header, read in one host call. The byte form: the string form of the SDK traps on
/// a header value that is not UTF-8, which any client can send. Such a value is read lossily; it
/// can only fail to match.
pub fn request_headers(filter: &str) -> Vec<(String, String)> {
    match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
        Ok(headers) => headers
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect(),
        Err(status) => {
            log(
                LogLevel::Error,
                &format!("{filter}: cannot read request headers: {status:?}"),
            );
            Vec::new()
        }
    }
}

/// Wasm has no entropy source here (no getrandom in Envoy's VM), and a canary split needs spread,
/// not secrecy: the host clock in nanoseconds and this stream's id, mixed.
pub fn random_u64(context_id: u32) -> u64 {
    let nanos = hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
        // Truncation keeps the low bits, the ones that change from request to request.
        .map_or(0, |since| since.as_nanos() as u64);
    fmix64(nanos ^ fmix64(u64::from(context_id)))
}
