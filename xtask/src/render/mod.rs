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
pub use manifests::Manifests;

/// One rendered file: where it goes under `gateways/`, and its text.
pub struct Rendering {
    pub file: &'static str,
    pub text: String,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The manifests the local gateways are rendered from: the shipped ones, and what only the local
/// setup adds (a host with a ServiceEntry that the allowlist does not list).
pub fn manifest_dirs(root: &Path) -> Vec<PathBuf> {
    let manifests = root.join("wasm-plugins-manifests");
    vec![manifests.clone(), manifests.join("local-only")]
}

pub fn read(dirs: &[PathBuf]) -> Result<Manifests, String> {
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    manifests::read_dirs(&dirs)
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

pub fn render_all(manifests: &Manifests) -> Result<Vec<Rendering>, String> {
    let egress = GatewayProxy {
        role: "egress",
        labels: labels(&[("app", "istio-egressgateway"), ("istio", "egressgateway")]),
    };
    let ingress = GatewayProxy {
        role: "ingress",
        labels: labels(&[("app", "istio-ingressgateway"), ("istio", "ingressgateway")]),
    };
    Ok(vec![
        Rendering {
            file: "egress-gateway.yaml",
            text: envoy::gateway(
                manifests,
                &egress,
                &format!("Egress gateway (istio: egressgateway): the only way out of the mesh.\n{GENERATED}"),
            )?,
        },
        Rendering {
            file: "ingress-gateway.yaml",
            text: envoy::gateway(
                manifests,
                &ingress,
                &format!("Ingress gateway (istio: ingressgateway): the mesh's front door.\n{GENERATED}"),
            )?,
        },
        Rendering {
            file: "sidecar.yaml",
            text: envoy::sidecar(
                manifests,
                &format!("command-runner's sidecar, its outbound side: how the app's calls leave.\n{GENERATED}"),
            )?,
        },
    ])
}

pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("render takes no arguments, got {args:?}"));
    }
    let root = workspace_root();
    let manifests = read(&manifest_dirs(&root))?;
    for rendering in render_all(&manifests)? {
        let path = root.join("gateways").join(rendering.file);
        std::fs::write(&path, &rendering.text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("rendered {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
