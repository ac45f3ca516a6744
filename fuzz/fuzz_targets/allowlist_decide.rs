//! The allowlist matcher through the request and connection flows, against an independent
//! oracle: nothing is allowed that the configuration does not list, whatever the authority, the
//! connection's TLS-ness and SNI; a listed host without a mismatching SNI is allowed on the ports
//! its entry covers (no port: 80 and 443; `:*`: every port); under `on_sni_mismatch: strict` an
//! SNI that is a host name must be the authority's host.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use gateway_core::allowlist::{Action, Allowlist, Outcome};
use gateway_core::host::{Authority, Host};
use gateway_fuzz::{Connection, Request};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"{
  "hosts": ["www.google.com", "google.com", "*.googleapis.com", "api.example.com:8443", "10.0.0.7", "[2001:db8::7]", "0x7f000001", "dev.example.com:*"],
  "host_regex": ["^bucket-[0-9]+\\.storage\\.example\\.com$"],
  "deny": {"status": 403, "body": "host not allowed"}
}"#;

fn allowlist() -> &'static Allowlist {
    static ALLOWLIST: OnceLock<Allowlist> = OnceLock::new();
    ALLOWLIST.get_or_init(|| Allowlist::from_json(CONFIG.as_bytes()).expect("the fuzz configuration is valid"))
}

fn strict_allowlist() -> &'static Allowlist {
    static ALLOWLIST: OnceLock<Allowlist> = OnceLock::new();
    ALLOWLIST.get_or_init(|| {
        let mut config: serde_json::Value = serde_json::from_str(CONFIG).unwrap();
        config["on_sni_mismatch"] = "strict".into();
        Allowlist::from_json(config.to_string().as_bytes()).expect("the fuzz configuration is valid")
    })
}

/// Istio's mutual-TLS SNI (a cluster name, `outbound|80|subset|fqdn` or `outbound_.80_.subset_.fqdn`),
/// which is never a mismatch. Looser than the filter's own check: the oracle only needs to know what
/// may be excepted.
fn may_be_istio_sni(sni: &str) -> bool {
    sni.starts_with("outbound|") || sni.starts_with("outbound_.")
}

/// Whether the configuration lists `host` on some port, and whether with an entry without a port
/// (which covers 80 and 443 for requests, every port for connections).
fn listed(host: &Host) -> (bool, bool) {
    match host {
        Host::Name(name) => {
            let portless = name == "www.google.com"
                || name == "google.com"
                || name.strip_suffix(".googleapis.com").is_some_and(|prefix| !prefix.is_empty())
                || bucket(name);
            (portless || name == "api.example.com" || name == "dev.example.com", portless)
        }
        Host::Ipv4(address) => {
            let listed = address.octets() == [10, 0, 0, 7];
            (listed, listed)
        }
        Host::Ipv6(address) => {
            let listed = address.segments() == [0x2001, 0xdb8, 0, 0, 0, 0, 0, 7];
            (listed, listed)
        }
        Host::NumericSpelling(spelling) => {
            let listed = spelling == "0x7f000001";
            (listed, listed)
        }
    }
}

fn bucket(name: &str) -> bool {
    name.strip_suffix(".storage.example.com")
        .and_then(|label| label.strip_prefix("bucket-"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Debug, Arbitrary)]
struct Input {
    request: Request,
    connection: Connection,
}

fuzz_target!(|input: Input| {
    let allowlist = allowlist();
    let verdict = allowlist.decide_request(&input.request);
    let authority = input.request.authority.as_deref().map(Authority::parse);
    let sni = input.request.sni.as_deref().filter(|sni| !sni.is_empty());
    match verdict.decision.outcome {
        Outcome::Allowed => {
            assert_eq!(verdict.action, Action::Continue);
            let Some(Ok(authority)) = &authority else {
                panic!("allowed an authority that does not parse: {input:?}");
            };
            assert!(listed(authority.host()).0, "allowed an unlisted host: {input:?} -> {authority:?}");
            // An SNI that is not a host name cannot front for one and is no mismatch; one that is
            // must be the authority's host or a listed one.
            if let Some(Ok(sni_host)) = sni.filter(|sni| !may_be_istio_sni(sni)).map(Host::parse) {
                assert!(
                    &sni_host == authority.host() || listed(&sni_host).0,
                    "allowed under an unlisted SNI: {input:?}"
                );
            }
        }
        Outcome::Denied => assert!(matches!(verdict.action, Action::Respond(_)), "{input:?}"),
        Outcome::AuditDenied => panic!("audit outcome in enforce mode: {input:?}"),
    }
    if let (Some(Ok(authority)), None) = (&authority, sni) {
        let default_port = authority.port().is_none_or(|port| port == 80 || port == 443);
        let every_port = matches!(authority.host(), Host::Name(name) if name == "dev.example.com");
        if (listed(authority.host()).1 && default_port) || every_port {
            assert_eq!(verdict.decision.outcome, Outcome::Allowed, "denied a listed host: {input:?}");
        }
    }

    let strict = strict_allowlist().decide_request(&input.request);
    if strict.decision.outcome == Outcome::Allowed {
        assert_eq!(verdict.decision.outcome, Outcome::Allowed, "strict allowed what reject denied: {input:?}");
        if let (Some(Ok(authority)), Some(sni)) = (&authority, sni) {
            assert!(
                may_be_istio_sni(sni) || Host::parse(sni).as_ref() == Ok(authority.host()),
                "strict allowed under another SNI: {input:?}"
            );
        }
    }

    let verdict = allowlist.decide_connection(&input.connection);
    if verdict.decision.outcome == Outcome::Allowed {
        assert_eq!(verdict.action, Action::Continue);
        let sni = input.connection.sni.as_deref().map(Host::parse);
        let Some(Ok(sni)) = sni else {
            panic!("allowed a connection without a valid SNI: {input:?}");
        };
        assert!(listed(&sni).0, "allowed an unlisted SNI: {input:?}");
    } else {
        assert_eq!(verdict.action, Action::Close, "{input:?}");
    }
});
