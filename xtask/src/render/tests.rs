//! The committed renderings are what the manifests render to.

use super::*;

#[test]
fn committed_renderings_are_fresh() {
    let root = workspace_root();
    let manifests = read(&manifest_dirs(&root)).unwrap();
    for rendering in render_all(&manifests).unwrap() {
        let path = root.join("gateways").join(rendering.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendering.text,
            "{} is stale: run `cargo xtask render` and commit it",
            path.display()
        );
    }
}
