//! subset-tagger end to end, in real Envoy 1.40: the filter sets the tag header, Envoy's routes
//! match it with header matchers (as a VirtualService does) and send each subset to its own
//! upstream. Each test starts its own Envoy and upstreams on ports the kernel picks.

mod config;
mod gateway;
mod routing;
mod spoofing;
mod sticky;

/// The issue's example configuration: a fixed tag for google, a beta tag for one API with a header,
/// and a sticky 90/10 canary for the rest of the shop.
pub const ISSUE_CONFIG: &str = r#"{
  "header": "x-route-subset",
  "rules": [
    {"match": {"hosts": ["www.google.com", "google.com"]}, "subset": "google"},
    {"match": {"hosts": ["shop.example.com"], "path_prefix": "/api/", "headers": {"x-beta": "true"}}, "subset": "beta"},
    {"name": "shop-canary", "match": {"hosts": ["shop.example.com"]},
     "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}],
     "sticky": {"cookie": "session"}}
  ]
}"#;
