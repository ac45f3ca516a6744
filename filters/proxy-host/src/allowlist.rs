//! The host-allowlist's proxy-wasm side, shared by the host-allowlist filter and the combined
//! gateway module: its counters, and carrying out a verdict (count, log, publish, answer).

use gateway_core::allowlist::{Action as VerdictAction, Outcome, Reason, Verdict};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, LogLevel, MapType};

use crate::{clear_route_cache, log, set_filter_state, Counter};

/// Envoy stats: `host_allowlist.allowed`, `host_allowlist.denied` and
/// `host_allowlist.audit_denied`, each tagged with the decision's `reason` (see [`Counter::define_tagged`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    allowed: Counter,
    /// One per reason of [`Reason::DENIALS`], in its order.
    denied: [Counter; Reason::DENIALS.len()],
    audit_denied: [Counter; Reason::DENIALS.len()],
}

impl Counters {
    pub fn define(filter: &str) -> Self {
        let counter = |reason: Reason, name: &str| {
            Counter::define_tagged(filter, &[("reason", reason.as_str())], name)
        };
        Self {
            allowed: counter(Reason::HostListed, "host_allowlist.allowed"),
            denied: Reason::DENIALS.map(|reason| counter(reason, "host_allowlist.denied")),
            audit_denied: Reason::DENIALS
                .map(|reason| counter(reason, "host_allowlist.audit_denied")),
        }
    }

    fn for_denial(counters: &[Counter], reason: Reason) -> Counter {
        Reason::DENIALS
            .iter()
            .zip(counters)
            .find(|(denial, _)| **denial == reason)
            .map(|(_, counter)| *counter)
            .unwrap_or_default()
    }
}

/// Counts, logs and publishes a verdict (its [`filter_state`](gateway_core::allowlist::Decision::filter_state)
/// entries); the caller then applies its action.
pub fn record(filter: &str, verdict: &Verdict<'_>, counters: Counters) {
    match verdict.decision.outcome {
        Outcome::Allowed => counters.allowed.increment(),
        Outcome::Denied => {
            Counters::for_denial(&counters.denied, verdict.decision.reason).increment();
            // Every denial is also in the access log and the counters; this line is for debugging.
            log(
                LogLevel::Debug,
                &format!("{filter}: {}", verdict.log_message()),
            );
        }
        Outcome::AuditDenied => {
            Counters::for_denial(&counters.audit_denied, verdict.decision.reason).increment();
            log(
                LogLevel::Info,
                &format!("{filter}: {}", verdict.log_message()),
            );
        }
    }
    for (key, value) in verdict.decision.filter_state() {
        set_filter_state(filter, key, value);
    }
}

/// Applies an HTTP verdict's action: continue (with the allowed spelling of the authority), or
/// answer locally / close, and stop the request.
pub fn apply_to_request(filter: &str, verdict: &Verdict<'_>) -> Action {
    match verdict.action {
        VerdictAction::Continue => {
            if let Some(authority) = &verdict.canonical_authority {
                set_authority(filter, authority);
            }
            Action::Continue
        }
        VerdictAction::Respond(response) => {
            let headers = response.headers().to_vec();
            if hostcalls::send_http_response(
                response.status,
                headers,
                Some(response.body.as_bytes()),
            )
            .is_err()
            {
                log(
                    LogLevel::Error,
                    &format!("{filter}: could not send the denial"),
                );
            }
            // The local answer replaces the request: nothing of it goes upstream.
            Action::Pause
        }
        VerdictAction::Close => {
            let _ = hostcalls::close_downstream();
            Action::Pause
        }
    }
}

/// Sets `:authority` to the spelling that was allowed and has Envoy choose the route again, so that
/// the route and the upstream see the host that was checked.
fn set_authority(filter: &str, authority: &str) {
    if let Err(status) =
        hostcalls::set_map_value(MapType::HttpRequestHeaders, ":authority", Some(authority))
    {
        log(
            LogLevel::Error,
            &format!("{filter}: cannot set :authority to {authority:?}: {status:?}"),
        );
        return;
    }
    clear_route_cache(filter);
}
