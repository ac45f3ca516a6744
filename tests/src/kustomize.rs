//! `kubectl kustomize`: a Kustomize directory rendered as a cluster would be given it. The renderer
//! reads the optional components' gateways from it, and the manifests' tests check every rendering.

use std::path::Path;
use std::process::Command;

use crate::Result;

/// The YAML documents `kubectl kustomize dir` prints.
pub fn build(dir: &Path) -> Result<String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|error| {
            format!(
                "cannot run `kubectl kustomize {}`, which needs kubectl 1.22 or later (README, Set-up): {error}",
                dir.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "kubectl kustomize {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|error| format!("kubectl kustomize {}: {error}", dir.display()))
}
