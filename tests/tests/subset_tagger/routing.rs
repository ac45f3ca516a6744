//! Rules tag requests and the route follows the tag: Envoy chose the route before the filter ran,
//! so every request that lands on a subset's upstream proves the filter had the route chosen again.

use e2e::client::{HttpRequest, Protocol};

use crate::gateway::{
    core_config, core_decision, get, predicted_upstream, served_by, subset_routes, tagger_filter,
    Gateway, Headers, Route, Subsets, DEFAULT, TAG,
};
use crate::ISSUE_CONFIG;

const PROTOCOLS: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

/// The first key `user-<n>` that the core sends to `subset` under the shop's canary.
fn shop_key_for(subset: &str) -> String {
    let core = core_config(ISSUE_CONFIG);
    (0..10_000)
        .map(|n| format!("user-{n}"))
        .find(|key| {
            let request = HttpRequest::get("shop.example.com", "/")
                .header("cookie", &format!("session={key}"));
            predicted_upstream(&core, &request) == subset
        })
        .unwrap_or_else(|| panic!("no key for {subset}"))
}

#[test]
fn rules_tag_requests_and_each_lands_on_its_subset_over_http1_and_http2() {
    let subsets = Subsets::start();
    let gateway = Gateway::tagger("tagger-rules", &subsets, ISSUE_CONFIG, true);
    let core = core_config(ISSUE_CONFIG);
    let v1_cookie = format!("session={}", shop_key_for("v1"));
    let v2_cookie = format!("lang=en; session={}", shop_key_for("v2"));
    // (authority, path, headers, upstream, filter state: the subset, `-` where none was published)
    let cases: Vec<(&str, &str, Headers, &str, &str)> = vec![
        ("google.com", "/search", vec![], "google", "google"),
        ("WWW.Google.COM.", "/", vec![], "google", "google"),
        ("www.google.com:80", "/", vec![], "google", "google"),
        (
            "shop.example.com",
            "/api/cart",
            vec![("x-beta", "true")],
            "beta",
            "beta",
        ),
        // Every condition must hold: no beta header, or not under /api/, is the canary's.
        (
            "shop.example.com",
            "/api/cart",
            vec![("x-beta", "false"), ("cookie", &v1_cookie)],
            "v1",
            "v1",
        ),
        (
            "shop.example.com",
            "/web",
            vec![("x-beta", "true"), ("cookie", &v2_cookie)],
            "v2",
            "v2",
        ),
        ("unknown.example.org", "/", vec![], DEFAULT, "-"),
    ];

    let mut logged = Vec::new();
    for protocol in PROTOCOLS {
        for (index, (authority, path, headers, upstream, state)) in cases.iter().enumerate() {
            let path = format!("{path}?case={index}&via={protocol:?}");
            let request = get(authority, &path, headers);
            let context = format!("{protocol:?} {authority}{path}");
            assert_eq!(
                &predicted_upstream(&core, &request),
                upstream,
                "the core disagrees on {context}"
            );

            let response = gateway.send(protocol, &request);
            assert_eq!(
                response.status,
                200,
                "{context}: {}\n{}",
                response.body_text(),
                gateway.log_tail()
            );
            assert_eq!(
                served_by(&response),
                Some(*upstream),
                "{context}: {}",
                subsets.counts()
            );
            let seen = subsets.get(upstream).requests();
            let arrived = seen
                .iter()
                .find(|seen| seen.path == path)
                .unwrap_or_else(|| panic!("{context} not at {upstream}"));
            let tags: Vec<&str> = arrived.header_values(TAG).collect();
            let expected_tags = if *upstream == DEFAULT {
                vec![]
            } else {
                vec![*upstream]
            };
            assert_eq!(tags, expected_tags, "{context}: the tag the upstream saw");

            logged.push((context, path, *upstream, *state));
        }
    }

    // The filter state the access log printed (Envoy flushes its log every few seconds, so this
    // waits once, after all requests).
    for (context, path, upstream, state) in logged {
        let line = gateway.access_line(&path);
        let (cluster, published) = line
            .split_once(" cluster=")
            .and_then(|(_, rest)| rest.split_once(" state="))
            .unwrap_or_else(|| panic!("{context}: {line}"));
        assert_eq!(cluster, upstream, "{context}: {line}");
        assert_eq!(published, state, "{context}: filter state");
    }

    // The filter re-routes explicitly too: Envoy has the `clear_route_cache` foreign function.
    gateway.assert_no_wasm_errors();
    let per_protocol = PROTOCOLS.len() as u64;
    for (subset, expected) in [("google", 3), ("beta", 1), ("v1", 1), ("v2", 1)] {
        assert_eq!(
            gateway.tagged(subset),
            expected * per_protocol,
            "subset_tagger.tagged{{subset={subset}}}"
        );
    }
    for (counter, expected) in [("untagged", 1), ("client_header_replaced", 0)] {
        assert_eq!(
            gateway.counter(counter),
            expected * per_protocol,
            "subset_tagger.{counter}"
        );
    }
}

/// The control: Envoy's native header_mutation filter sets the same tag without clearing the route
/// cache, and the request stays on the default route it got before the filters ran. The tagger
/// steers with the same route table and request, so it is the tagger that has the route re-chosen.
#[test]
fn a_tag_set_without_rerouting_does_not_steer_but_the_taggers_does() {
    let subsets = Subsets::start();
    let mutation = format!(
        "- name: envoy.filters.http.header_mutation\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation\n    mutations:\n      request_mutations:\n      - append:\n          header: {{key: {TAG}, value: google}}\n          append_action: OVERWRITE_IF_EXISTS_OR_ADD\n"
    );
    let native = Gateway::start(
        "native-mutation",
        &subsets,
        mutation,
        &subset_routes(true),
        1,
    );
    let tagger_filters = tagger_filter(ISSUE_CONFIG);
    let tagger = Gateway::start(
        "tagger-reroutes",
        &subsets,
        tagger_filters,
        &subset_routes(true),
        1,
    );

    for protocol in PROTOCOLS {
        let request = HttpRequest::get("google.com", &format!("/native?via={protocol:?}"));
        let response = native.send(protocol, &request);
        assert_eq!(
            served_by(&response),
            Some(DEFAULT),
            "{protocol:?}: {}",
            native.log_tail()
        );
        let seen = subsets.get(DEFAULT).requests();
        let arrived = seen.iter().find(|seen| seen.path == request.path).unwrap();
        assert_eq!(
            arrived.header(TAG),
            Some("google"),
            "the tag was set, yet the route stayed"
        );

        let request = HttpRequest::get("google.com", &format!("/tagger?via={protocol:?}"));
        let response = tagger.send(protocol, &request);
        assert_eq!(
            served_by(&response),
            Some("google"),
            "{protocol:?}: {}",
            tagger.log_tail()
        );
    }
    assert!(subsets
        .get("google")
        .requests()
        .iter()
        .all(|seen| seen.path.starts_with("/tagger")));
}

/// The seed's egress gateway: the WasmPlugin configuration shipped in the manifests, and routes as
/// its VirtualService writes them (authority and `x-route-subset: google` to the google service).
/// An untagged host has no route (404) and reaches nothing; with a catch-all route it takes that.
#[test]
fn the_seeds_egress_pattern_routes_google_by_its_tag() {
    let config = egress_plugin_config();
    let core = core_config(&config);
    let subsets = Subsets::start();
    let filters = tagger_filter(&config);
    let google_routes = || {
        vec![
            Route::AuthorityAndTag {
                authority: "www.google.com",
                tag: "google",
                cluster: "google",
            },
            Route::AuthorityAndTag {
                authority: "google.com",
                tag: "google",
                cluster: "google",
            },
        ]
    };
    let strict = Gateway::start(
        "egress-no-default",
        &subsets,
        filters.clone(),
        &google_routes(),
        1,
    );
    let mut with_default = google_routes();
    with_default.push(Route::Default { cluster: DEFAULT });
    let open = Gateway::start("egress-default", &subsets, filters, &with_default, 1);

    for protocol in PROTOCOLS {
        for host in ["www.google.com", "google.com"] {
            for gateway in [&strict, &open] {
                let request = HttpRequest::get(host, &format!("/?via={protocol:?}"));
                assert_eq!(predicted_upstream(&core, &request), "google");
                let response = gateway.send(protocol, &request);
                assert_eq!(
                    response.status,
                    200,
                    "{protocol:?} {host}: {}",
                    gateway.log_tail()
                );
                assert_eq!(served_by(&response), Some("google"), "{protocol:?} {host}");
            }
        }
        // A spoofed tag on another host neither matches the google routes nor survives the filter.
        let request = HttpRequest::get("example.org", &format!("/elsewhere?via={protocol:?}"))
            .header(TAG, "google");
        assert_eq!(core_decision(&core, &request).tagged_subset(), None);
        let response = strict.send(protocol, &request);
        assert_eq!(
            response.status,
            404,
            "{protocol:?}: {}",
            response.body_text()
        );
        assert_eq!(served_by(&response), None);
        let response = open.send(protocol, &request);
        assert_eq!(served_by(&response), Some(DEFAULT), "{protocol:?}");
        let seen = subsets.get(DEFAULT).requests();
        let arrived = seen.iter().find(|seen| seen.path == request.path).unwrap();
        assert_eq!(arrived.header(TAG), None, "the spoofed tag must be removed");
    }
    let google = subsets.get("google").requests();
    assert_eq!(google.len(), 8, "{}", subsets.counts());
    assert!(google
        .iter()
        .all(|seen| seen.header_values(TAG).eq(["google"])));
    assert_eq!(
        subsets.get(DEFAULT).requests().len(),
        2,
        "only the open gateway's: {}",
        subsets.counts()
    );
    for gateway in [&strict, &open] {
        gateway.assert_no_wasm_errors();
        assert_eq!(gateway.tagged("google"), 4);
        assert_eq!(gateway.counter("untagged"), 2);
        assert_eq!(gateway.counter("client_header_replaced"), 2);
    }
}

/// The `pluginConfig` of the `egress-subset-tagger` WasmPlugin in `wasm-plugins-manifests/`, as JSON.
fn egress_plugin_config() -> String {
    use serde::Deserialize;
    let path = e2e::paths::workspace_root()
        .join("wasm-plugins-manifests")
        .join("egress-gateway.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let plugin = serde_norway::Deserializer::from_str(&text)
        .map(|document| serde_json::Value::deserialize(document).unwrap())
        .find(|document| {
            document["kind"] == "WasmPlugin"
                && document["metadata"]["name"] == "egress-subset-tagger"
        });
    plugin
        .map(|plugin| plugin["spec"]["pluginConfig"].to_string())
        .unwrap_or_else(|| panic!("no egress-subset-tagger WasmPlugin in {}", path.display()))
}

/// Regexes compile in ASCII mode: `\d` and `(?i)` still work on paths and header values.
#[test]
fn regexes_with_ascii_classes_and_case_folding_route() {
    let subsets = Subsets::start();
    let config = r#"{
        "header": "x-route-subset",
        "default_subset": "v1",
        "rules": [{"match": {"path_regex": "/v\\d+/items", "headers": {"x-beta": {"regex": "(?i)yes"}}}, "subset": "v2"}]
    }"#;
    let gateway = Gateway::tagger("tagger-ascii-regex", &subsets, config, true);
    let cases = [
        ("/v2/items", "YES", "v2"),
        ("/v12/items", "yes", "v2"),
        ("/vx/items", "yes", "v1"),
        ("/v2/items/more", "yes", "v1"),
        ("/v2/items", "no", "v1"),
    ];
    for protocol in PROTOCOLS {
        for (path, beta, upstream) in cases {
            let response = gateway.send(
                protocol,
                &get("shop.example.com", path, &[("x-beta", beta)]),
            );
            assert_eq!(
                served_by(&response),
                Some(upstream),
                "{protocol:?} {path} x-beta: {beta}: {}\n{}",
                subsets.counts(),
                gateway.log_tail()
            );
        }
    }
}
