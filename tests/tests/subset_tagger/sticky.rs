//! Sticky weighted splits in real Envoy: a key (cookie, header or query parameter) always lands on
//! the subset the core's documented hash gives it, on every request, worker and gateway replica;
//! and `set_cookie` hands a client without a key the key that keeps it where it landed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use e2e::client::{HttpRequest, Protocol};
use e2e::upstream::Reply;
use gateway_core::subset::TaggerConfig;

use crate::gateway::{
    core_config, predicted_upstream, served_by, subset_routes, tagger_filter, Gateway, Subsets,
    SUBSETS, TAG,
};

const STICKY_CONFIG: &str = r#"{
  "header": "x-route-subset",
  "rules": [
    {"name": "by-cookie", "match": {"hosts": ["shop.example.com"]},
     "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}], "sticky": {"cookie": "session"}},
    {"name": "by-header", "match": {"hosts": ["api.example.com"]},
     "split": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 30}, {"subset": "beta", "weight": 20}],
     "sticky": {"header": "x-user-id"}},
    {"name": "by-query", "match": {"hosts": ["web.example.com"]},
     "split": [{"subset": "v1", "weight": 1}, {"subset": "v2", "weight": 1}], "sticky": {"query": "uid"}}
  ]
}"#;

/// Two workers per Envoy, so that keys also cross worker threads (each with its own Wasm VM).
const WORKERS: u32 = 2;

fn cookie_request(n: usize) -> HttpRequest {
    HttpRequest::get("shop.example.com", &format!("/cart?n={n}"))
        .header("cookie", &format!("lang=en; session=user-{n}; theme=dark"))
}

fn header_request(n: usize) -> HttpRequest {
    HttpRequest::get("api.example.com", &format!("/orders?n={n}"))
        .header("x-user-id", &format!("customer-{n}"))
}

fn query_request(n: usize) -> HttpRequest {
    // `%2D` is `-`: the key is the decoded value, as the core reads it.
    HttpRequest::get(
        "web.example.com",
        &format!("/page?lang=en&uid=visitor%2D{n}&n={n}"),
    )
}

/// Sends `request` and checks it landed where the core says; returns that subset.
fn send_and_check(
    gateway: &Gateway,
    subsets: &Subsets,
    core: &TaggerConfig,
    protocol: Protocol,
    request: &HttpRequest,
) -> String {
    let expected = predicted_upstream(core, request);
    let response = gateway.send(protocol, request);
    assert_eq!(
        response.status,
        200,
        "{} {protocol:?} {}: {}",
        gateway.envoy.name(),
        request.path,
        gateway.log_tail()
    );
    assert_eq!(
        served_by(&response),
        Some(expected.as_str()),
        "{} {protocol:?} {:?}: not where the core's hash puts it ({})",
        gateway.envoy.name(),
        request,
        subsets.counts()
    );
    expected
}

/// Connections each worker of `gateway` accepted on its listener.
fn connections_per_worker(gateway: &Gateway) -> Vec<u64> {
    (0..WORKERS)
        .map(|worker| {
            let stat = format!("listener.gateway.worker_{worker}.downstream_cx_total");
            gateway.envoy.stat(&stat).unwrap().unwrap_or(0)
        })
        .collect()
}

#[test]
fn a_sticky_key_lands_on_its_hashed_subset_across_requests_workers_and_replicas() {
    let subsets = Subsets::start();
    let core = core_config(STICKY_CONFIG);
    let filters = tagger_filter(STICKY_CONFIG);
    // Two gateway replicas, started separately: what a restart or a second pod is.
    let first = Gateway::start(
        "sticky-first",
        &subsets,
        filters.clone(),
        &subset_routes(true),
        WORKERS,
    );
    let second = Gateway::start(
        "sticky-second",
        &subsets,
        filters,
        &subset_routes(true),
        WORKERS,
    );
    let mut sent_first = 0u64;

    // The 90/10 cookie split over 2000 keys: every key where the hash puts it, on both replicas,
    // one over HTTP/1.1 and the other over HTTP/2; the shares close to the weights.
    const KEYS: usize = 2000;
    let mut shares: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..KEYS {
        let request = cookie_request(n);
        let on_first = send_and_check(&first, &subsets, &core, Protocol::Http1, &request);
        let on_second = send_and_check(&second, &subsets, &core, Protocol::Http2, &request);
        assert_eq!(on_first, on_second);
        *shares.entry(on_first).or_default() += 1;
        sent_first += 1;
    }
    let v1_percent = shares.get("v1").copied().unwrap_or(0) as f64 * 100.0 / KEYS as f64;
    assert!(
        (87.0..=93.0).contains(&v1_percent),
        "v1 got {v1_percent}% of the keys, weight 90: {shares:?}"
    );
    assert_eq!(
        shares.keys().collect::<Vec<_>>(),
        ["v1", "v2"],
        "{shares:?}"
    );

    // Header and query keys, 300 each, on both replicas: every subset of each split gets keys.
    for (make, subsets_expected) in [
        (
            header_request as fn(usize) -> HttpRequest,
            vec!["beta", "v1", "v2"],
        ),
        (query_request, vec!["v1", "v2"]),
    ] {
        let mut seen = BTreeSet::new();
        for n in 0..300 {
            let request = make(n);
            let on_first = send_and_check(&first, &subsets, &core, Protocol::Http2, &request);
            let on_second = send_and_check(&second, &subsets, &core, Protocol::Http1, &request);
            assert_eq!(on_first, on_second);
            seen.insert(on_first);
            sent_first += 1;
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), subsets_expected);
    }

    // A few keys again and again, alternating replicas and protocols: never a different subset.
    for n in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
        let request = cookie_request(n);
        let subset = predicted_upstream(&core, &request);
        for round in 0..20 {
            let (gateway, protocol) = match round % 4 {
                0 => (&first, Protocol::Http1),
                1 => (&second, Protocol::Http1),
                2 => (&first, Protocol::Http2),
                _ => (&second, Protocol::Http2),
            };
            assert_eq!(
                send_and_check(gateway, &subsets, &core, protocol, &request),
                subset
            );
            if gateway.addr == first.addr {
                sent_first += 1;
            }
        }
    }

    // HTTP/2 clients send each cookie in its own `cookie` field (RFC 9113 8.2.3), and some HTTP/1.1
    // clients repeat the header too: the key is found in whichever field holds it.
    for n in 100..140 {
        let request = HttpRequest::get("shop.example.com", &format!("/split-cookies?n={n}"))
            .header("cookie", "lang=en")
            .header("cookie", &format!("session=user-{n}"))
            .header("cookie", "theme=dark");
        let subset = predicted_upstream(&core, &cookie_request(n));
        for protocol in [Protocol::Http1, Protocol::Http2] {
            assert_eq!(
                send_and_check(&first, &subsets, &core, protocol, &request),
                subset,
                "{protocol:?} {n}"
            );
            sent_first += 1;
        }
    }

    // Each upstream saw only its own tag, and the first replica counted every tag it set.
    for subset in SUBSETS {
        let seen = subsets.get(subset).requests();
        assert!(
            seen.iter()
                .all(|request| request.header_values(TAG).eq([subset])),
            "{subset}"
        );
    }
    let counted: u64 = ["v1", "v2", "beta"]
        .iter()
        .map(|subset| first.tagged(subset))
        .sum();
    assert_eq!(counted, sent_first);
    for gateway in [&first, &second] {
        gateway.assert_no_wasm_errors();
        let workers = connections_per_worker(gateway);
        assert!(
            workers.iter().all(|&accepted| accepted > 0),
            "{}: connections per worker {workers:?}",
            gateway.envoy.name()
        );
    }
}

const SET_COOKIE_CONFIG: &str = r#"{
  "rules": [
    {"match": {"hosts": ["shop.example.com"]},
     "split": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 50}], "sticky": {"cookie": "session"},
     "set_cookie": {"max_age": 3600, "secure": true, "same_site": "strict"}}
  ]
}"#;

/// The key in a `set-cookie` the filter gave, after checking the configured attributes.
fn handed_out_key(set_cookie: &str) -> String {
    let (pair, attributes) = set_cookie
        .split_once("; ")
        .unwrap_or_else(|| panic!("{set_cookie}"));
    assert_eq!(
        attributes, "Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Strict",
        "{set_cookie}"
    );
    let key = pair
        .strip_prefix("session=")
        .unwrap_or_else(|| panic!("{set_cookie}"));
    assert!(
        key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{set_cookie}"
    );
    key.to_string()
}

#[test]
fn set_cookie_gives_a_new_client_a_key_that_keeps_it_on_its_subset() {
    // Upstreams that set their own cookie: the filter must add its cookie, not replace theirs.
    let subsets = Subsets::start_with(|name| {
        let body = format!("upstream {name}\n");
        let cookie = format!("from-{name}=1; Path=/");
        Arc::new(move |_| {
            let mut reply = Reply::new(200, body.clone());
            reply
                .headers
                .push(("set-cookie".to_string(), cookie.clone()));
            reply
        })
    });
    let gateway = Gateway::tagger("tagger-set-cookie", &subsets, SET_COOKIE_CONFIG, true);
    let core = core_config(SET_COOKIE_CONFIG);

    let mut keys = BTreeSet::new();
    let mut landed = BTreeSet::new();
    for client in 0..40 {
        let protocol = if client % 2 == 0 {
            Protocol::Http1
        } else {
            Protocol::Http2
        };
        let first = gateway.send(
            protocol,
            &HttpRequest::get("shop.example.com", &format!("/new?client={client}")),
        );
        assert_eq!(first.status, 200, "{}", gateway.log_tail());
        let subset = served_by(&first).unwrap_or_default().to_string();
        let cookies: Vec<&str> = first.header_values("set-cookie").collect();
        let ours: Vec<&&str> = cookies
            .iter()
            .filter(|cookie| cookie.starts_with("session="))
            .collect();
        assert_eq!(ours.len(), 1, "{protocol:?}: {cookies:?}");
        assert!(
            cookies.contains(&format!("from-{subset}=1; Path=/").as_str()),
            "upstream's cookie lost: {cookies:?}"
        );
        let key = handed_out_key(ours[0]);
        assert!(keys.insert(key.clone()), "key {key} handed out twice");

        // The key is the one that chose the subset: the core agrees, and coming back with it stays.
        let returning = |n: usize| {
            HttpRequest::get("shop.example.com", &format!("/back?client={client}&n={n}"))
                .header("cookie", &format!("session={key}"))
        };
        assert_eq!(
            predicted_upstream(&core, &returning(0)),
            subset,
            "key {key}"
        );
        for (n, protocol) in [Protocol::Http1, Protocol::Http2, Protocol::Http1]
            .into_iter()
            .enumerate()
        {
            let again = gateway.send(protocol, &returning(n));
            assert_eq!(
                served_by(&again),
                Some(subset.as_str()),
                "client {client} with key {key}, {protocol:?}"
            );
            assert!(
                again
                    .header_values("set-cookie")
                    .all(|cookie| !cookie.starts_with("session=")),
                "a client with a key got another: {:?}",
                again.headers
            );
        }
        landed.insert(subset);
    }
    gateway.assert_no_wasm_errors();
    // New clients spread over both halves (all 40 on one side: about 1 in 2^39).
    assert_eq!(landed.into_iter().collect::<Vec<_>>(), ["v1", "v2"]);
}
