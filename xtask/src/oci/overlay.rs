//! The Kustomize overlay `oci push` writes by default: the committed WasmPlugin manifests as its base
//! (when they are a Kustomize base) and, per WasmPlugin of a pushed filter, a JSON patch setting the
//! pushed `url` and `sha256`. A deployment pipeline applies it (`kubectl apply -k DIR`) or copies its
//! patches; the committed files stay as they are.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::manifests::PluginName;

/// One WasmPlugin pinned to a pushed image.
pub struct Pin {
    pub plugin: PluginName,
    pub url: String,
    pub digest_hex: String,
}

/// The overlay's `kustomization.yaml`: `base` (a path relative to the overlay) as its resource.
pub fn kustomization(base: Option<&Path>, pins: &[Pin]) -> String {
    let mut text = String::from(
        "# Written by `cargo xtask oci push`: pins each WasmPlugin to the image just pushed.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n",
    );
    if let Some(base) = base {
        let _ = writeln!(text, "resources:\n  - {}", base.display());
    }
    if pins.is_empty() {
        text.push_str("patches: []\n");
    } else {
        text.push_str("patches:\n");
    }
    for pin in pins {
        let _ = writeln!(
            text,
            "  - target:\n      group: extensions.istio.io\n      kind: WasmPlugin\n      name: {}",
            pin.plugin.name
        );
        if let Some(namespace) = &pin.plugin.namespace {
            let _ = writeln!(text, "      namespace: {namespace}");
        }
        // `add` replaces a member that is there and adds one that is not.
        let _ = writeln!(
            text,
            "    patch: |-\n      - op: add\n        path: /spec/url\n        value: {}\n      - op: add\n        path: /spec/sha256\n        value: {}",
            pin.url, pin.digest_hex
        );
    }
    text
}

/// `to` relative to `from` (both absolute directories), e.g. `../../wasm-plugins-manifests`.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for component in &to[common..] {
        relative.push(component);
    }
    relative
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_each_plugin_by_name_and_namespace() {
        let pins = [
            Pin {
                plugin: PluginName {
                    name: "egress-host-allowlist".to_string(),
                    namespace: Some("istio-system".to_string()),
                },
                url: "oci://r.io/w/host-allowlist:v1".to_string(),
                digest_hex: "ab".repeat(32),
            },
            Pin {
                plugin: PluginName {
                    name: "log".to_string(),
                    namespace: None,
                },
                url: "oci://r.io/w/access-log:v1".to_string(),
                digest_hex: "cd".repeat(32),
            },
        ];
        let text = kustomization(Some(Path::new("../../wasm-plugins-manifests")), &pins);
        let expected = format!(
            "# Written by `cargo xtask oci push`: pins each WasmPlugin to the image just pushed.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../wasm-plugins-manifests
patches:
  - target:
      group: extensions.istio.io
      kind: WasmPlugin
      name: egress-host-allowlist
      namespace: istio-system
    patch: |-
      - op: add
        path: /spec/url
        value: oci://r.io/w/host-allowlist:v1
      - op: add
        path: /spec/sha256
        value: {}
  - target:
      group: extensions.istio.io
      kind: WasmPlugin
      name: log
    patch: |-
      - op: add
        path: /spec/url
        value: oci://r.io/w/access-log:v1
      - op: add
        path: /spec/sha256
        value: {}
",
            "ab".repeat(32),
            "cd".repeat(32)
        );
        assert_eq!(text, expected);
        assert!(!kustomization(None, &pins).contains("resources:"));
        assert!(kustomization(None, &[]).ends_with("kind: Kustomization\npatches: []\n"));
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        assert_eq!(
            relative_path(
                Path::new("/w/target/oci/pinned-overlay"),
                Path::new("/w/wasm-plugins-manifests")
            ),
            Path::new("../../../wasm-plugins-manifests")
        );
        assert_eq!(
            relative_path(Path::new("/w/a"), Path::new("/w/a/b")),
            Path::new("b")
        );
    }
}
