//! `cargo xtask test`: setup, build, lint, then every test: unit and end-to-end (`cargo test
//! --workspace`, against the real Envoy setup installed) and the core crate's tests compiled to
//! wasm32-unknown-unknown, run under wasm-bindgen-test in Node.

use std::process::Command;

use crate::{cmd, setup};

pub fn run(cargo_test_args: &[String]) -> Result<(), String> {
    let tools = setup::for_tests()?;
    cmd::build_modules()?;
    cmd::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    cmd::run(
        cargo()
            .args(["test", "--workspace"])
            .args(cargo_test_args)
            .env("ENVOY_BIN", &tools.envoy),
    )?;
    wasm_core_tests(&tools)
}

/// The core crate's unit tests on wasm32-unknown-unknown. Fails unless tests actually ran, so a
/// runner that silently finds nothing cannot pass.
fn wasm_core_tests(tools: &setup::TestTools) -> Result<(), String> {
    let mut command = cargo();
    command
        .args([
            "test",
            "--package",
            "gateway-core",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            &tools.wasm_bindgen_test_runner,
        );
    let shown = cmd::show(&command);
    println!("$ {shown}");
    let output = command
        .output()
        .map_err(|error| format!("cannot run `{shown}`: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!("`{shown}` failed ({})", output.status));
    }
    let passed = passed_count(&stdout);
    if passed == 0 {
        return Err("the wasm-bindgen-test run executed no test".to_string());
    }
    println!("core tests on wasm32-unknown-unknown (Node): {passed} passed");
    Ok(())
}

/// Sums the "N passed" counts of every `test result:` line.
fn passed_count(stdout: &str) -> usize {
    stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("test result: "))
        .filter_map(|rest| {
            let before = rest.split(" passed").next()?;
            before.rsplit(' ').next()?.parse::<usize>().ok()
        })
        .sum()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}
