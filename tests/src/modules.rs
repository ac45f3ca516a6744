//! The filters' Wasm modules, built once per test process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{paths, wasm_exports, wasm_opt};

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

    /// The proxy-wasm callbacks the filter implements, beyond those every module keeps: the build
    /// removes the exports of all others, so Envoy does not call into the VM for nothing
    /// ([`crate::wasm_exports`]). A filter that starts implementing a callback must list it here;
    /// the `callbacks_cover_every_implemented_callback` test checks the filter sources.
    pub fn callbacks(self) -> &'static [&'static str] {
        match self {
            Module::HostAllowlist => &[
                "proxy_on_request_headers",
                "proxy_on_new_connection",
                "proxy_on_downstream_data",
            ],
            Module::SubsetTagger => &["proxy_on_request_headers", "proxy_on_response_headers"],
            Module::AccessLog => &[
                "proxy_on_log",
                "proxy_on_tick",
                "proxy_on_http_call_response",
            ],
            Module::Gateway => &[
                "proxy_on_request_headers",
                "proxy_on_response_headers",
                "proxy_on_log",
                "proxy_on_tick",
                "proxy_on_http_call_response",
            ],
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

/// The target directory of the `test-trap` variants, apart from the shipped modules' one.
fn test_trap_target_dir() -> PathBuf {
    paths::target_dir().join("test-trap")
}

/// Where the `test-trap` variants are installed, as [`paths::wasm_dir`] is for the shipped ones.
pub fn test_trap_wasm_dir() -> PathBuf {
    test_trap_target_dir().join("modules")
}

/// Builds every module (release, wasm32-wasip1) once per process; later calls return the first
/// result. Cargo makes the build a no-op when nothing changed, so this is cheap after `xtask build`.
pub fn build_once() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

/// `cargo build --release --target wasm32-wasip1` for every filter package.
pub fn build_command() -> Command {
    build_command_for(&Module::ALL.map(Module::package))
}

/// `cargo build --release --target wasm32-wasip1` for these packages of the workspace.
pub fn build_command_for(packages: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(paths::workspace_root()).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip1",
    ]);
    for package in packages {
        command.args(["--package", package]);
    }
    command
}

fn build_test_trap_once() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build_test_trap).clone()
}

fn build_test_trap() -> Result<(), String> {
    let mut command = build_command();
    command.arg("--target-dir").arg(test_trap_target_dir());
    let features: Vec<String> = Module::ALL
        .iter()
        .map(|module| format!("{}/test-trap", module.package()))
        .collect();
    command.arg("--features").arg(features.join(","));
    build_and_install(
        "test-trap modules",
        command,
        &test_trap_target_dir().join("wasm32-wasip1").join("release"),
        &test_trap_wasm_dir(),
    )
}

fn build() -> Result<(), String> {
    build_and_install(
        "Wasm modules",
        build_command(),
        &paths::cargo_wasm_dir(),
        &paths::wasm_dir(),
    )
}

/// Runs `cargo`, a build of the modules into `cargo_dir`, and [`install`]s them into
/// `modules_dir`, holding a lock file beside `modules_dir` throughout (waiting for it first).
/// Builds run at once (tests start `xtask` processes), and cargo replaces the files in its output
/// directory on every build, even one with nothing to compile: no other build may run cargo until
/// this one has read cargo's output. wasm-opt is checked first, so a missing one stops the build
/// before minutes of compiling.
fn build_and_install(
    what: &str,
    mut cargo: Command,
    cargo_dir: &Path,
    modules_dir: &Path,
) -> Result<(), String> {
    wasm_opt::check_version()?;
    std::fs::create_dir_all(modules_dir)
        .map_err(|error| format!("{}: {error}", modules_dir.display()))?;
    let lock_path = modules_dir.with_extension("lock");
    let lock = File::create(&lock_path)
        .and_then(|lock| lock.lock().map(|()| lock))
        .map_err(|error| format!("cannot lock {}: {error}", lock_path.display()))?;
    let status = cargo
        .status()
        .map_err(|error| format!("cannot run cargo to build the {what}: {error}"))?;
    if !status.success() {
        return Err(format!("building the {what} failed ({status})"));
    }
    install(cargo_dir, modules_dir)?;
    drop(lock);
    Ok(())
}

/// The last step of every module build, under its lock: writes each module from cargo's output
/// directory to `to`, keeping only the callback exports it implements ([`Module::callbacks`]), so
/// Envoy does not call into the VM for nothing, and then optimised by [`wasm_opt`], which also
/// drops the code only those exports reached. A module is written beside its place and renamed
/// into it, so a reader (another test's Envoy) sees the old module or the new one, whole. A module
/// that is already up to date is left untouched, and wasm-opt runs only when its input changed
/// (the [`wasm_opt::recipe`] kept beside the module says what it was).
fn install(cargo_dir: &Path, to: &Path) -> Result<(), String> {
    for module in Module::ALL {
        let built = cargo_dir.join(module.file_name());
        let wasm = std::fs::read(&built)
            .map_err(|error| format!("the build did not produce {}: {error}", built.display()))?;
        let trimmed = wasm_exports::without_unused_callbacks(&wasm, module.callbacks())
            .map_err(|error| format!("{}: {error}", built.display()))?
            .unwrap_or(wasm);
        let path = to.join(module.file_name());
        let recipe_path = path.with_extension("wasm.recipe");
        let recipe = wasm_opt::recipe(&trimmed);
        if path.is_file() && std::fs::read(&recipe_path).is_ok_and(|kept| kept == recipe) {
            continue;
        }
        let optimized = wasm_opt::optimize(&trimmed, &path)
            .map_err(|error| format!("{}: {error}", built.display()))?;
        if !std::fs::read(&path).is_ok_and(|installed| installed == optimized) {
            write_into_place(&path, &optimized)?;
        }
        write_into_place(&recipe_path, &recipe)?;
    }
    Ok(())
}

/// Writes `bytes` beside `path` and renames them into place.
fn write_into_place(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let staged = path.with_extension(format!(
        "{}.partial",
        path.extension().and_then(|ext| ext.to_str()).unwrap_or("")
    ));
    std::fs::write(&staged, bytes)
        .and_then(|()| std::fs::rename(&staged, path))
        .map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK trait method behind each callback export.
    const CALLBACK_METHODS: [(&str, &str); 20] = [
        ("on_vm_start", "proxy_on_vm_start"),
        ("on_configure", "proxy_on_configure"),
        ("on_http_request_headers", "proxy_on_request_headers"),
        ("on_http_request_body", "proxy_on_request_body"),
        ("on_http_request_trailers", "proxy_on_request_trailers"),
        ("on_http_response_headers", "proxy_on_response_headers"),
        ("on_http_response_body", "proxy_on_response_body"),
        ("on_http_response_trailers", "proxy_on_response_trailers"),
        ("on_log", "proxy_on_log"),
        ("on_done", "proxy_on_done"),
        ("on_tick", "proxy_on_tick"),
        ("on_http_call_response", "proxy_on_http_call_response"),
        ("on_queue_ready", "proxy_on_queue_ready"),
        ("on_new_connection", "proxy_on_new_connection"),
        ("on_downstream_data", "proxy_on_downstream_data"),
        (
            "on_downstream_close",
            "proxy_on_downstream_connection_close",
        ),
        ("on_upstream_data", "proxy_on_upstream_data"),
        ("on_upstream_close", "proxy_on_upstream_connection_close"),
        ("on_grpc_call_response", "proxy_on_grpc_receive"),
        ("on_foreign_function", "proxy_on_foreign_function"),
    ];

    /// Every `fn on_…(` a filter crate defines must keep its export, or Envoy would never call it.
    #[test]
    fn callbacks_cover_every_implemented_callback() {
        for module in Module::ALL {
            let src = paths::workspace_root()
                .join("filters")
                .join(module.package())
                .join("src");
            let mut sources = String::new();
            for entry in std::fs::read_dir(&src).unwrap() {
                sources.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
            }
            let methods: Vec<String> = sources
                .split("fn on_")
                .skip(1)
                .filter_map(|rest| rest.split_once('(').map(|(name, _)| format!("on_{name}")))
                .collect();
            assert!(
                !methods.is_empty(),
                "no callback found in {}",
                src.display()
            );
            for method in methods {
                let (_, export) = CALLBACK_METHODS
                    .iter()
                    .find(|(name, _)| *name == method)
                    .unwrap_or_else(|| {
                        panic!("{}: unknown callback method {method}", module.package())
                    });
                assert!(
                    wasm_exports::ALWAYS_KEPT.contains(export)
                        || module.callbacks().contains(export),
                    "{} implements {method} but Module::callbacks does not keep {export}",
                    module.package()
                );
            }
        }
    }
}
