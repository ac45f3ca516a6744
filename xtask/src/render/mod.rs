//! `cargo xtask render`: the local gateways and sidecar in `gateways/`, rendered from
//! `wasm-plugins-manifests/` by istiod's rules, so the demo, the tests and docker-compose run what
//! the manifests would make Istio run. A test fails when a committed rendering is stale. The
//! variants of optional components (`gateways/wasm-access-log/`, `gateways/sampled-access-log/`)
//! are read from `kubectl kustomize` of their `tests/kustomize/` fixture, as a cluster would be
//! given them, so rendering needs kubectl, as the manifests' tests do.

mod envoy;
mod istiod;
mod local;
pub mod manifests;

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

/// Where a variant's manifests come from, read in order: a later resource of the same kind,
/// namespace and name replaces an earlier one (see `manifests::read_text`).
enum Source {
    /// Every `*.yaml` directly in a directory under `wasm-plugins-manifests/` ("" is the shipped
    /// manifests).
    Dir(&'static str),
    /// One file under `wasm-plugins-manifests/`.
    File(&'static str),
    /// `kubectl kustomize` of a directory under the workspace root: a base with components, as a
    /// cluster would be given it.
    Kustomization(&'static str),
}

/// A set of manifests and what is rendered from it.
struct Variant {
    sources: &'static [Source],
    /// Where its files go under `gateways/`.
    out: &'static str,
    proxies: &'static [Proxy],
}

const VARIANTS: [Variant; 5] = [
    // The shipped manifests, and what only the local setup adds: a host with a ServiceEntry that
    // the allowlist does not list.
    Variant {
        sources: &[Source::Dir(""), Source::Dir("local-only")],
        out: "",
        proxies: &[Proxy::EgressGateway, Proxy::IngressGateway, Proxy::Sidecar],
    },
    // Istio mutual TLS between the sidecar and the egress gateway, the sidecar sending Istio's SNI.
    Variant {
        sources: &[Source::Dir(""), Source::Dir("mtls")],
        out: "mtls",
        proxies: &[Proxy::EgressGateway, Proxy::Sidecar],
    },
    // The same with the DestinationRule's `sni`: only the sidecar changes.
    Variant {
        sources: &[
            Source::Dir(""),
            Source::Dir("mtls"),
            Source::Dir("mtls/with-sni"),
        ],
        out: "mtls/with-sni",
        proxies: &[Proxy::Sidecar],
    },
    // The opt-in Wasm access log (kustomize/wasm-access-log): the gateways' records built by the
    // access-log module. The mesh config is an install setting, outside Kustomize.
    Variant {
        sources: &[
            Source::Kustomization("tests/kustomize/wasm-access-log"),
            Source::File("mesh-config.yaml"),
            Source::Dir("local-only"),
        ],
        out: "wasm-access-log",
        proxies: &[Proxy::EgressGateway, Proxy::IngressGateway],
    },
    // The native JSON record, sampled by a CEL filter (kustomize/sampled-access-log).
    Variant {
        sources: &[
            Source::Kustomization("tests/kustomize/sampled-access-log"),
            Source::File("mesh-config.yaml"),
            Source::Dir("local-only"),
        ],
        out: "sampled-access-log",
        proxies: &[Proxy::EgressGateway, Proxy::IngressGateway],
    },
];

fn read_variant(root: &Path, variant: &Variant) -> Result<Manifests, String> {
    let manifests_dir = root.join("wasm-plugins-manifests");
    let mut manifests = Manifests::default();
    for source in variant.sources {
        match source {
            Source::Dir(dir) => manifests::read_dir(&manifests_dir.join(dir), &mut manifests)?,
            Source::File(file) => manifests::read_file(&manifests_dir.join(file), &mut manifests)?,
            Source::Kustomization(dir) => {
                manifests::read_kustomization(&root.join(dir), &mut manifests)?
            }
        }
    }
    Ok(manifests)
}

fn variant_name(variant: &Variant) -> String {
    if variant.out.is_empty() {
        "the shipped manifests".to_string()
    } else {
        variant.out.to_string()
    }
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
        let manifests = read_variant(root, variant)
            .map_err(|error| format!("{}: {error}", variant_name(variant)))?;
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
