//! `cargo xtask render`: the local gateways and sidecar in `gateways/`, rendered from
//! `wasm-plugins-manifests/` by istiod's rules, so the demo, the tests and docker-compose run what
//! the manifests would make Istio run. A test fails when a committed rendering is stale.

mod envoy;
mod istiod;
mod local;
mod manifests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use envoy::GatewayProxy;
use manifests::Manifests;

/// One rendered file: where it goes under `gateways/`, and its text.
pub struct Rendering {
    pub file: String,
    pub text: String,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn read(dirs: &[PathBuf]) -> Result<Manifests, String> {
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    manifests::read_dirs(&dirs)
}

/// A proxy a rendering configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    EgressGateway,
    IngressGateway,
    /// command-runner's sidecar.
    Sidecar,
}

impl Proxy {
    fn file(self) -> &'static str {
        match self {
            Proxy::EgressGateway => "egress-gateway.yaml",
            Proxy::IngressGateway => "ingress-gateway.yaml",
            Proxy::Sidecar => "sidecar.yaml",
        }
    }
}

/// A set of manifests and what is rendered from it.
struct Variant {
    /// Directories under `wasm-plugins-manifests/`, each adding to or replacing what the ones before
    /// it hold ("" is the shipped manifests).
    dirs: &'static [&'static str],
    /// Where its files go under `gateways/`.
    out: &'static str,
    proxies: &'static [Proxy],
}

const VARIANTS: [Variant; 3] = [
    // The shipped manifests, and what only the local setup adds: a host with a ServiceEntry that
    // the allowlist does not list.
    Variant {
        dirs: &["", "local-only"],
        out: "",
        proxies: &[Proxy::EgressGateway, Proxy::IngressGateway, Proxy::Sidecar],
    },
    // Istio mutual TLS between the sidecar and the egress gateway, the sidecar sending Istio's SNI.
    Variant {
        dirs: &["", "mtls"],
        out: "mtls",
        proxies: &[Proxy::EgressGateway, Proxy::Sidecar],
    },
    // The same with the DestinationRule's `sni`: only the sidecar changes.
    Variant {
        dirs: &["", "mtls", "mtls/with-sni"],
        out: "mtls/with-sni",
        proxies: &[Proxy::Sidecar],
    },
];

fn variant_dirs(root: &Path, variant: &Variant) -> Vec<PathBuf> {
    let manifests = root.join("wasm-plugins-manifests");
    variant.dirs.iter().map(|dir| manifests.join(dir)).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

const GENERATED: &str = "Rendered by `cargo xtask render` from wasm-plugins-manifests/ (xtask/src/render/): do not edit.\n\
The double-brace placeholders are filled in by whoever runs it (gateways/run-envoy.sh for\n\
docker-compose, tests/src/template.rs for the demo and the tests): ports, where the modules and the\n\
stand-ins are.";

/// One proxy's configuration from `manifests`.
pub fn render(manifests: &Manifests, proxy: Proxy) -> Result<String, String> {
    match proxy {
        Proxy::EgressGateway => envoy::gateway(
            manifests,
            &GatewayProxy {
                role: "egress",
                labels: labels(&[("app", "istio-egressgateway"), ("istio", "egressgateway")]),
            },
            &format!("Egress gateway (istio: egressgateway): the only way out of the mesh.\n{GENERATED}"),
        ),
        Proxy::IngressGateway => envoy::gateway(
            manifests,
            &GatewayProxy {
                role: "ingress",
                labels: labels(&[("app", "istio-ingressgateway"), ("istio", "ingressgateway")]),
            },
            &format!("Ingress gateway (istio: ingressgateway): the mesh's front door.\n{GENERATED}"),
        ),
        Proxy::Sidecar => envoy::sidecar(
            manifests,
            &format!("command-runner's sidecar, its outbound side: how the app's calls leave.\n{GENERATED}"),
        ),
    }
}

/// Every committed rendering.
pub fn render_all(root: &Path) -> Result<Vec<Rendering>, String> {
    let mut renderings = Vec::new();
    for variant in &VARIANTS {
        let manifests = read(&variant_dirs(root, variant))
            .map_err(|error| format!("{}: {error}", variant.dirs.join(" + ")))?;
        for proxy in variant.proxies {
            let file = Path::new(variant.out).join(proxy.file());
            let text = render(&manifests, *proxy)
                .map_err(|error| format!("gateways/{}: {error}", file.display()))?;
            renderings.push(Rendering {
                file: file.display().to_string(),
                text,
            });
        }
    }
    Ok(renderings)
}

pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("render takes no arguments, got {args:?}"));
    }
    let root = workspace_root();
    for rendering in render_all(&root)? {
        let path = root.join("gateways").join(&rendering.file);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        std::fs::write(&path, &rendering.text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("rendered {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
