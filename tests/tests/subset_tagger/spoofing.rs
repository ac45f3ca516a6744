//! The tag header belongs to the filter: a client-sent copy is overwritten by the rule's value, or
//! removed when no rule matches, so a client cannot pick its own subset; unless the configuration
//! trusts the client.

use e2e::client::{HttpRequest, Protocol};

use gateway_core::subset::Outcome;

use crate::gateway::{
    core_config, core_decision, get, predicted_upstream, served_by, Gateway, Headers, Subsets,
    DEFAULT, TAG,
};
use crate::ISSUE_CONFIG;

const PROTOCOLS: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

/// Sends `request` and checks that it landed on `upstream` with exactly `tags` as the tag header.
fn assert_lands(
    gateway: &Gateway,
    subsets: &Subsets,
    protocol: Protocol,
    request: &HttpRequest,
    upstream: &str,
    tags: &[&str],
) {
    let context = format!(
        "{protocol:?} {} {} {:?}",
        request.authority, request.path, request.headers
    );
    let response = gateway.send(protocol, request);
    assert_eq!(
        response.status,
        200,
        "{context}: {}\n{}",
        response.body_text(),
        gateway.log_tail()
    );
    assert_eq!(
        served_by(&response),
        Some(upstream),
        "{context}: {}",
        subsets.counts()
    );
    let seen = subsets.get(upstream).requests();
    let arrived = seen
        .iter()
        .find(|seen| seen.path == request.path)
        .unwrap_or_else(|| panic!("{context}: not recorded"));
    let seen_tags: Vec<&str> = arrived.header_values(TAG).collect();
    assert_eq!(
        seen_tags, tags,
        "{context}: the tag header(s) the upstream saw"
    );
}

#[test]
fn a_client_sent_tag_does_not_steer() {
    let subsets = Subsets::start();
    let gateway = Gateway::tagger("tagger-spoof", &subsets, ISSUE_CONFIG, true);
    let core = core_config(ISSUE_CONFIG);
    // (authority, path, headers, upstream, tags the upstream must see)
    let cases: Vec<(&str, &str, Headers, &str, Vec<&str>)> = vec![
        (
            "google.com",
            "/overwritten",
            vec![(TAG, "v2")],
            "google",
            vec!["google"],
        ),
        (
            "unknown.example.org",
            "/removed",
            vec![(TAG, "v2")],
            DEFAULT,
            vec![],
        ),
        (
            "unknown.example.org",
            "/two-removed",
            vec![(TAG, "v2"), (TAG, "beta")],
            DEFAULT,
            vec![],
        ),
        (
            "google.com",
            "/one-of-two-right",
            vec![(TAG, "google"), (TAG, "v2")],
            "google",
            vec!["google"],
        ),
        (
            "google.com",
            "/one-of-two-right-last",
            vec![(TAG, "v2"), (TAG, "google")],
            "google",
            vec!["google"],
        ),
        (
            "shop.example.com",
            "/api/spoofed-case",
            vec![("x-beta", "true"), ("X-Route-Subset", "v1")],
            "beta",
            vec!["beta"],
        ),
        // The beta header is a condition, the tag is not: sending `beta` as the tag buys nothing.
        (
            "shop.example.com",
            "/api/no-beta",
            vec![(TAG, "beta"), ("cookie", "session=user-1")],
            "v1",
            vec!["v1"],
        ),
    ];
    for protocol in PROTOCOLS {
        for (authority, path, headers, upstream, tags) in &cases {
            let request = get(authority, &format!("{path}?via={protocol:?}"), headers);
            assert_eq!(
                &predicted_upstream(&core, &request),
                upstream,
                "the core disagrees on {request:?}"
            );
            assert_lands(&gateway, &subsets, protocol, &request, upstream, tags);
        }
    }
    // No client reached the subset it asked for but was not given.
    assert!(
        subsets.get("v2").requests().is_empty(),
        "{}",
        subsets.counts()
    );
    gateway.assert_no_wasm_errors();
    let sent = (cases.len() * PROTOCOLS.len()) as u64;
    assert_eq!(gateway.counter("client_header_replaced"), sent);
    assert_eq!(gateway.counter("client_trusted"), 0);
    assert_eq!(gateway.counter("untagged"), 2 * PROTOCOLS.len() as u64);
}

#[test]
fn a_trusted_client_keeps_its_tag() {
    let config = ISSUE_CONFIG.replacen('{', r#"{"trust_client_header": true,"#, 1);
    let subsets = Subsets::start();
    let gateway = Gateway::tagger("tagger-trusting", &subsets, &config, true);
    let core = core_config(&config);
    assert!(core.trust_client_header);
    let cases: Vec<(&str, &str, Headers, &str, Vec<&str>)> = vec![
        (
            "google.com",
            "/trusted",
            vec![(TAG, "v2")],
            "v2",
            vec!["v2"],
        ),
        (
            "unknown.example.org",
            "/trusted-beta",
            vec![(TAG, "beta")],
            "beta",
            vec!["beta"],
        ),
        // Without the header, the rules decide as usual.
        ("google.com", "/no-header", vec![], "google", vec!["google"]),
        (
            "unknown.example.org",
            "/no-header-no-rule",
            vec![],
            DEFAULT,
            vec![],
        ),
    ];
    for protocol in PROTOCOLS {
        for (authority, path, headers, upstream, tags) in &cases {
            let request = get(authority, &format!("{path}?via={protocol:?}"), headers);
            let decision = core_decision(&core, &request);
            match headers.first() {
                Some((_, value)) => {
                    assert_eq!(
                        decision.outcome,
                        Outcome::ClientTrusted {
                            value: value.to_string()
                        },
                        "{request:?}"
                    )
                }
                None => assert_eq!(
                    decision.tagged_subset().unwrap_or(DEFAULT),
                    *upstream,
                    "{request:?}"
                ),
            }
            assert_lands(&gateway, &subsets, protocol, &request, upstream, tags);
        }
    }
    let per_protocol = PROTOCOLS.len() as u64;
    assert_eq!(gateway.counter("client_trusted"), 2 * per_protocol);
    assert_eq!(gateway.counter("client_header_replaced"), 0);
    assert_eq!(gateway.tagged("google"), per_protocol);
    assert_eq!(gateway.counter("untagged"), per_protocol);
}
