//! `cargo xtask test`: setup, build, lint, then every test: unit and end-to-end (`cargo test
//! --workspace`, against the real Envoy setup installed) and the core crate's tests compiled to
//! wasm32-unknown-unknown, run under wasm-bindgen-test in Node, and the docker-compose stack on
//! the Docker Engine.

use std::process::Command;

use crate::{cmd, images, setup};

pub fn run(cargo_test_args: &[String]) -> Result<(), String> {
    let tools = setup::for_tests()?;
    cmd::build_modules()?;
    // With the compose stack's tests, which only build with the `docker` feature.
    cmd::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "e2e/docker",
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
    wasm_core_tests(&tools)?;
    compose_stack_tests(&tools)
}

/// The docker-compose stack's tests (tests/tests/compose_stack.rs), with the images built here.
/// Without a Docker Engine they are not run, and say so; under CI (`CI=true`) that is a failure.
fn compose_stack_tests(tools: &setup::TestTools) -> Result<(), String> {
    let ci = std::env::var("CI").ok();
    let version = match engine_verdict(e2e::compose::engine_version(), ci.as_deref())? {
        EngineVerdict::Answers(version) => version,
        EngineVerdict::NotRun(line) => {
            println!("{line}");
            return Ok(());
        }
    };
    println!("docker-compose stack tests on Docker Engine {version}");
    for project in e2e::compose::remove_abandoned(e2e::compose::TEST_PROJECT_PREFIX)? {
        println!("removed the stack of a killed test run: {project}");
    }
    images::build(&tools.envoy)?;
    cmd::run(cargo().args([
        "test",
        "--package",
        "e2e",
        "--features",
        "docker",
        "--test",
        "compose_stack",
    ]))
}

#[derive(Debug, PartialEq)]
enum EngineVerdict {
    /// The engine's version: run the tests.
    Answers(String),
    /// The one line that says the tests were not run, and why.
    NotRun(String),
}

/// Whether the compose stack's tests run: without an engine they are not run, which is an error
/// when `ci` (the `CI` variable) is `true`.
fn engine_verdict(
    engine: Result<String, String>,
    ci: Option<&str>,
) -> Result<EngineVerdict, String> {
    match engine {
        Ok(version) => Ok(EngineVerdict::Answers(version)),
        Err(reason) => {
            let line =
                format!("docker-compose stack tests: NOT RUN, no Docker Engine answers ({reason})");
            if ci == Some("true") {
                Err(format!("{line}; CI=true requires the engine"))
            } else {
                Ok(EngineVerdict::NotRun(line))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_engine_the_compose_tests_are_not_run_and_ci_fails() {
        let no_engine = || Err("Cannot connect to the Docker daemon".to_string());
        let EngineVerdict::NotRun(line) = engine_verdict(no_engine(), None).unwrap() else {
            panic!("not run without an engine");
        };
        assert!(
            line.contains("NOT RUN") && line.contains("Cannot connect"),
            "{line}"
        );
        assert!(!line.contains('\n'), "one line: {line}");
        let error = engine_verdict(no_engine(), Some("true")).unwrap_err();
        assert!(
            error.contains("NOT RUN") && error.contains("CI=true"),
            "{error}"
        );
        assert_eq!(
            engine_verdict(Ok("20.10.24".to_string()), Some("true")),
            Ok(EngineVerdict::Answers("20.10.24".to_string()))
        );
    }
}
