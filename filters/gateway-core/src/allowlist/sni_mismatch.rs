//! Whether a TLS-terminating listener's SNI misdirects a request: the comparison of the connection's
//! TLS server name with the request's (allowed) authority that `on_sni_mismatch` governs.

use super::config::OnSniMismatch;
use super::istio_sni::is_istio_cluster_sni;
use super::Allowlist;
use crate::host::{Authority, Host};

impl Allowlist {
    /// Whether `sni` (non-empty, as received) makes a request for the allowed `authority`, held to
    /// `port`, a misdirected one.
    ///
    /// Under `reject`, an SNI that is a host name must be the authority's host or an allowed host on
    /// the authority's port (HTTP/2 coalescing under a multi-name certificate). An SNI that is not a
    /// host name (Istio's `outbound|80|google|…` cluster name, or anything else that does not parse)
    /// selects no certificate of a named host, so it cannot front for one: it is not a mismatch.
    /// Istio's DNS SRV form (`outbound_.80_.google_.…`) parses as a name but names a cluster, and is
    /// excepted likewise.
    ///
    /// Under `strict`, every SNI other than Istio's cluster names must be the authority's host: an
    /// SNI that is not a host name differs from every authority.
    pub(super) fn sni_misdirects(&self, sni: &str, authority: &Authority, port: u16) -> bool {
        match self.on_sni_mismatch {
            OnSniMismatch::Allow => false,
            OnSniMismatch::Reject => {
                if is_istio_cluster_sni(sni) {
                    return false;
                }
                match Host::parse(sni) {
                    Ok(host) => {
                        host != *authority.host() && self.find_request(&host, port).is_none()
                    }
                    Err(_) => false,
                }
            }
            OnSniMismatch::Strict => {
                !is_istio_cluster_sni(sni)
                    && Host::parse(sni).map_or(true, |host| host != *authority.host())
            }
        }
    }
}
