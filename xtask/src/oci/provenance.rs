//! The provenance an image's annotations carry: the filter's name and description, the workspace's
//! version and licence, and, from the git checkout it is built in, the source repository (the
//! `origin` remote, without any credentials in it), the commit and the commit's time.

use std::process::Command;

use e2e::modules::Module;

use super::layout::Provenance;
use crate::cmd;

/// What is the same for every image of one build.
pub struct Checkout {
    source: Option<String>,
    revision: Option<String>,
    created: Option<String>,
}

impl Checkout {
    /// Reads the git checkout of the workspace; outside one, source, revision and time stay unknown.
    pub fn read() -> Checkout {
        let git = |args: &[&str]| {
            cmd::output(
                Command::new("git")
                    .arg("-C")
                    .arg(e2e::paths::workspace_root())
                    .args(args),
            )
            .map(|output| output.trim().to_string())
            .filter(|output| !output.is_empty())
        };
        Checkout {
            source: git(&["config", "--get", "remote.origin.url"])
                .map(|url| without_credentials(&url)),
            revision: git(&["rev-parse", "HEAD"]),
            created: git(&["log", "-1", "--format=%cI", "HEAD"]),
        }
    }

    pub fn provenance(&self, module: Module) -> Provenance {
        Provenance {
            title: module.package().to_string(),
            description: description(module).to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            licenses: env!("CARGO_PKG_LICENSE").to_string(),
            source: self.source.clone(),
            revision: self.revision.clone(),
            created: self.created.clone(),
        }
    }
}

fn description(module: Module) -> &'static str {
    match module {
        Module::HostAllowlist => {
            "proxy-wasm filter for Envoy and Istio gateways: denies requests and TLS connections to hosts not on its allowlist"
        }
        Module::SubsetTagger => {
            "proxy-wasm filter for Envoy and Istio gateways: tags requests with a subset chosen by host rules, for routing"
        }
        Module::AccessLog => {
            "proxy-wasm filter for Envoy and Istio gateways: one JSON access-log record per request or connection"
        }
        Module::Gateway => {
            "proxy-wasm module for Envoy and Istio gateways: host allowlist, subset tagging and JSON access log in one filter"
        }
    }
}

/// `https://user:token@host/repo` → `https://host/repo`: a remote URL may carry a secret.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_lose_their_credentials() {
        assert_eq!(
            without_credentials("https://bot:s3cret@git.example.com/team/gateway-wasm.git"),
            "https://git.example.com/team/gateway-wasm.git"
        );
        assert_eq!(
            without_credentials("https://github.com/acme/gateway-wasm"),
            "https://github.com/acme/gateway-wasm"
        );
        assert_eq!(
            without_credentials("git@github.com:acme/gateway-wasm.git"),
            "git@github.com:acme/gateway-wasm.git"
        );
    }

    #[test]
    fn every_module_has_a_title_and_description() {
        let checkout = Checkout {
            source: None,
            revision: Some("abc".to_string()),
            created: None,
        };
        for module in Module::ALL {
            let provenance = checkout.provenance(module);
            assert_eq!(provenance.title, module.package());
            assert!(!provenance.description.is_empty());
            assert_eq!(provenance.licenses, "Apache-2.0");
            assert_eq!(provenance.revision.as_deref(), Some("abc"));
        }
    }
}
