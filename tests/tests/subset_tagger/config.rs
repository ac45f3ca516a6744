//! A bad configuration is refused as a whole: Envoy logs one line per problem, each naming its
//! field, and exits at start-up instead of running a half-configured tagger.

use e2e::envoy::{tail, Envoy, EnvoyOptions};
use gateway_core::subset::TaggerConfig;

use crate::gateway::{bootstrap, subset_routes, tagger_filter, Subsets};

/// (what is wrong, configuration, the fields the error lines must name, in order)
const CASES: [(&str, &str, &[&str]); 5] = [
    (
        "weights summing to 0",
        r#"{"rules": [{"match": {"hosts": ["shop.example.com"]}, "split": [{"subset": "v1", "weight": 0}, {"subset": "v2", "weight": 0}], "sticky": {"cookie": "session"}}]}"#,
        &["rules[0].split"],
    ),
    (
        "an empty subset name",
        r#"{"rules": [{"subset": ""}]}"#,
        &["rules[0].subset"],
    ),
    (
        "a bad regex",
        r#"{"rules": [{"match": {"path_regex": "/api/(v1"}, "subset": "v1"}]}"#,
        &["rules[0].match.path_regex"],
    ),
    (
        "a Unicode class, which ASCII-mode regexes refuse",
        r#"{"rules": [{"match": {"path_regex": "/\\p{L}+"}, "subset": "v1"}]}"#,
        &["rules[0].match.path_regex"],
    ),
    (
        "every problem at once, each on its line",
        r#"{"default_subset": "", "rules": [
            {"match": {"headers": {"x-beta": {"regex": "[tru"}}}, "subset": "beta"},
            {"split": [{"subset": "v1", "weight": 0}]},
            {"split": [{"subset": "", "weight": 1}]}
        ]}"#,
        &[
            "default_subset",
            "rules[0].match.headers.x-beta",
            "rules[1].split",
            "rules[2].split[0].subset",
        ],
    ),
];

#[test]
fn a_bad_configuration_makes_envoy_exit_with_field_named_errors() {
    let subsets = Subsets::start();
    for (what, config, fields) in CASES {
        // The core names the problems; the filter must print exactly those lines.
        let errors = TaggerConfig::from_json(config.as_bytes()).expect_err(what);
        let named: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(named, fields, "{what}: the core's errors: {errors}");

        let failure = Envoy::start_expecting_failure(EnvoyOptions::new(
            "tagger-bad-config",
            bootstrap(&subsets, tagger_filter(config), &subset_routes(true)),
        ))
        .unwrap_or_else(|error| panic!("{what}: {error}"));
        assert!(!failure.status.success(), "{what}: {}", failure.status);
        for error in errors.iter() {
            let line = format!(
                "subset-tagger: invalid configuration: {}: {}",
                error.field, error.reason
            );
            assert!(
                failure.log.contains(&line),
                "{what}: {line:?} not in Envoy's log:\n{}",
                tail(&failure.log, 40)
            );
        }
        let printed = failure
            .log
            .matches("subset-tagger: invalid configuration: ")
            .count();
        assert_eq!(
            printed,
            fields.len(),
            "{what}: one line per problem:\n{}",
            tail(&failure.log, 40)
        );
        assert!(!failure.log.contains("configuration accepted"), "{what}");
    }
    assert!(["v1", "v2", "beta", "google", "default"]
        .iter()
        .all(|name| subsets.get(name).requests().is_empty()));
}
