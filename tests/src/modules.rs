//! The filters' Wasm modules, built once per test process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::paths;

/// A filter module: its crate (the Cargo package) and the file name cargo gives its `.wasm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    HostAllowlist,
    SubsetTagger,
    AccessLog,
    /// The three features in one HTTP filter, configured by sections.
    Gateway,
}

impl Module {
    pub const ALL: [Module; 4] = [
        Module::HostAllowlist,
        Module::SubsetTagger,
        Module::AccessLog,
        Module::Gateway,
    ];

    pub fn package(self) -> &'static str {
        match self {
            Module::HostAllowlist => "host-allowlist",
            Module::SubsetTagger => "subset-tagger",
            Module::AccessLog => "access-log",
            Module::Gateway => "gateway",
        }
    }

    pub fn file_name(self) -> String {
        format!("{}.wasm", self.package().replace('-', "_"))
    }

    /// The module's path, building all modules first if this process has not done so yet.
    pub fn path(self) -> PathBuf {
        if let Err(error) = build_once() {
            panic!("{error}");
        }
        paths::wasm_dir().join(self.file_name())
    }

    /// The module built with the `test-trap` feature (a request carrying
    /// `x-gateway-wasm-test-trap: <package>` panics it), in its own target directory so the shipped
    /// modules are never this build. Built once per process.
    pub fn test_trap_path(self) -> PathBuf {
        if let Err(error) = build_test_trap_once() {
            panic!("{error}");
        }
        test_trap_wasm_dir().join(self.file_name())
    }
}

/// The request header that traps a `test-trap` module; its value names the filter's package.
pub const TEST_TRAP_HEADER: &str = "x-gateway-wasm-test-trap";

/// Where the `test-trap` variants are built: a target directory of their own.
pub fn test_trap_wasm_dir() -> PathBuf {
    paths::target_dir().join("test-trap").join("wasm32-wasip1").join("release")
}

/// Builds every module (release, wasm32-wasip1) once per process; later calls return the first
/// result. Cargo makes the build a no-op when nothing changed, so this is cheap after `xtask build`.
pub fn build_once() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

/// `cargo build --release --target wasm32-wasip1` for every filter package.
pub fn build_command() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(paths::workspace_root())
        .args(["build", "--release", "--target", "wasm32-wasip1"]);
    for module in Module::ALL {
        command.args(["--package", module.package()]);
    }
    command
}

fn build_test_trap_once() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build_test_trap).clone()
}

fn build_test_trap() -> Result<(), String> {
    let mut command = build_command();
    command.arg("--target-dir").arg(paths::target_dir().join("test-trap"));
    let features: Vec<String> = Module::ALL
        .iter()
        .map(|module| format!("{}/test-trap", module.package()))
        .collect();
    command.arg("--features").arg(features.join(","));
    let status = command
        .status()
        .map_err(|error| format!("cannot run cargo to build the test-trap modules: {error}"))?;
    if !status.success() {
        return Err(format!("building the test-trap modules failed ({status})"));
    }
    Ok(())
}

fn build() -> Result<(), String> {
    let status = build_command()
        .status()
        .map_err(|error| format!("cannot run cargo to build the Wasm modules: {error}"))?;
    if !status.success() {
        return Err(format!("building the Wasm modules failed ({status})"));
    }
    for module in Module::ALL {
        let path = paths::wasm_dir().join(module.file_name());
        if !path.is_file() {
            return Err(format!("the build did not produce {}", path.display()));
        }
    }
    Ok(())
}
