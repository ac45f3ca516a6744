//! The TLS server names Istio's own proxies send, which name a cluster rather than a host.
//!
//! A sidecar that reaches a gateway over Istio mutual TLS (DestinationRule `tls.mode: ISTIO_MUTUAL`)
//! sends, unless the DestinationRule sets `sni`, the name of its cluster as SNI
//! (istio/istio `pilot/pkg/networking/core/cluster_tls.go`: "Set default SNI of cluster name for
//! istio_mutual if sni is not set"). Cluster names are built by `BuildSubsetKey` in
//! `pilot/pkg/model/service.go`: `outbound|<port>|<subset>|<service FQDN>`, e.g.
//! `outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local`. With auto mutual TLS the
//! SNI is the DNS SRV form of the same key, `BuildDNSSrvSubsetKey`:
//! `outbound_.<port>_.<subset>_.<service FQDN>` (`cluster_builder.go`, `istioMtlsSni`).
//!
//! Only the `outbound` direction is recognised: `inbound|<port>||` names a sidecar's inbound cluster,
//! which no Istio client sends as SNI.

use crate::host::Host;

/// `BuildSubsetKey` with `TrafficDirectionOutbound`: fields joined by `|`.
const CLUSTER_NAME_PREFIX: &str = "outbound|";
const CLUSTER_NAME_SEPARATOR: &str = "|";
/// `BuildDNSSrvSubsetKey` with `TrafficDirectionOutbound`: fields joined by `_.`.
const DNS_SRV_PREFIX: &str = "outbound_.";
const DNS_SRV_SEPARATOR: &str = "_.";

/// Whether `sni` is an SNI that Istio's sidecars and gateways send for mutual TLS: one of the two
/// outbound cluster-key forms with a port from 1 to 65535 and a service host name. The subset may be
/// empty (a DestinationRule without subsets).
pub fn is_istio_cluster_sni(sni: &str) -> bool {
    let (rest, separator) = if let Some(rest) = sni.strip_prefix(CLUSTER_NAME_PREFIX) {
        (rest, CLUSTER_NAME_SEPARATOR)
    } else if let Some(rest) = sni.strip_prefix(DNS_SRV_PREFIX) {
        (rest, DNS_SRV_SEPARATOR)
    } else {
        return false;
    };
    let Some((port, rest)) = rest.split_once(separator) else {
        return false;
    };
    let Some((subset, service)) = rest.split_once(separator) else {
        return false;
    };
    is_port(port)
        && !subset.contains(['|', '.'])
        && !service.contains('|')
        && matches!(Host::parse(service), Ok(Host::Name(_)))
}

fn is_port(digits: &str) -> bool {
    (1..=5).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u16>().is_ok_and(|port| port != 0)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn istio_cluster_names_are_recognised() {
        for sni in [
            "outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local",
            "outbound|443||istio-egressgateway.istio-system.svc.cluster.local",
            "outbound|8080|v1|reviews.default.svc.cluster.local",
            "outbound_.80_.google_.istio-egressgateway.istio-system.svc.cluster.local",
            "outbound_.443_._.istio-egressgateway.istio-system.svc.cluster.local",
            "outbound_.9080_.v2_.reviews.default.svc.cluster.local",
        ] {
            assert!(is_istio_cluster_sni(sni), "{sni}");
        }
    }

    #[test]
    fn other_names_are_not_istio_cluster_names() {
        for sni in [
            "www.google.com",
            "outbound.example.com",
            "outbound_.example.com",
            "inbound|8080||",
            "inbound_.8080_._.reviews.default.svc.cluster.local",
            "outbound|80|google",
            "outbound|80|google|",
            "outbound|0|google|egress.example",
            "outbound|65536|google|egress.example",
            "outbound|+80|google|egress.example",
            "outbound|80|google|egress.example|extra",
            "outbound|80|a.b|egress.example",
            "outbound|80|google|bad host",
            "outbound|80|google|10.0.0.7",
            "outbound_.80_.google",
            "outbound_.http_.google_.egress.example",
            "OUTBOUND|80|google|egress.example",
        ] {
            assert!(!is_istio_cluster_sni(sni), "{sni}");
        }
    }
}
