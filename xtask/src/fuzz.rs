//! `cargo xtask fuzz --time N [TARGET…]`: runs each cargo-fuzz target in `fuzz/` for N seconds on
//! the nightly toolchain (installing cargo-fuzz first when it is missing, and saying so), then
//! prints how long each ran, how many inputs it executed and whether it found anything. Fails when a
//! target crashes, naming the input that did it (under `fuzz/artifacts/<target>/`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use e2e::paths;

use crate::cmd;

const USAGE: &str = "usage: cargo xtask fuzz --time SECONDS [TARGET…]";

pub fn run(args: &[String]) -> Result<(), String> {
    let (seconds, only) = parse_args(args)?;
    let root = paths::workspace_root();
    let fuzz_dir = root.join("fuzz");
    nightly()?;
    cargo_fuzz()?;
    cmd::run(fuzz_command(&root).args(["build", "-O"]))?;
    let listed = cmd::output(fuzz_command(&root).arg("list")).ok_or("`cargo fuzz list` failed")?;
    let targets: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && (only.is_empty() || only.iter().any(|o| o == t)))
        .collect();
    if targets.is_empty() {
        return Err(format!(
            "no fuzz target matches {only:?}; targets:\n{listed}"
        ));
    }
    let mut results = Vec::new();
    for target in targets {
        results.push(run_target(&root, &fuzz_dir, target, seconds)?);
    }
    println!(
        "\n{:<20} {:>8} {:>14} {:>10}  result",
        "target", "seconds", "executions", "exec/s"
    );
    for r in &results {
        println!(
            "{:<20} {:>8.1} {:>14} {:>10.0}  {}",
            r.target,
            r.seconds,
            r.executions,
            r.executions as f64 / r.seconds.max(0.001),
            r.finding.as_deref().unwrap_or("no finding")
        );
    }
    let total: f64 = results.iter().map(|r| r.seconds).sum();
    println!("total fuzzing time {total:.0} s");
    let found: Vec<&FuzzResult> = results.iter().filter(|r| r.finding.is_some()).collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} target(s) found a crash: reproduce with `cargo +nightly fuzz run -O <target> <artifact>`, \
             then add it as a regression test in the core",
            found.len()
        ))
    }
}

fn parse_args(args: &[String]) -> Result<(u64, Vec<String>), String> {
    let mut seconds = None;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time" => {
                let value = args.next().ok_or(USAGE)?;
                seconds =
                    Some(value.parse::<u64>().map_err(|_| {
                        format!("--time {value}: not a number of seconds\n{USAGE}")
                    })?);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            target => targets.push(target.to_string()),
        }
    }
    match seconds {
        Some(seconds) if seconds > 0 => Ok((seconds, targets)),
        _ => Err(USAGE.to_string()),
    }
}

fn fuzz_command(root: &Path) -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(root).args(["+nightly", "fuzz"]);
    command
}

fn nightly() -> Result<(), String> {
    cmd::output(Command::new("cargo").args(["+nightly", "--version"]))
        .map(|version| println!("fuzz: {}", version.trim()))
        .ok_or_else(|| "the nightly toolchain is missing: `rustup toolchain install nightly` (cargo-fuzz needs it)".to_string())
}

fn cargo_fuzz() -> Result<(), String> {
    if let Some(version) =
        cmd::output(Command::new("cargo").args(["+nightly", "fuzz", "--version"]))
    {
        println!("fuzz: {}: already installed", version.trim());
        return Ok(());
    }
    println!("fuzz: cargo-fuzz not found: installing it from crates.io (`cargo install cargo-fuzz`, a few minutes)");
    cmd::run(Command::new("cargo").args(["install", "cargo-fuzz"]))
}

struct FuzzResult {
    target: String,
    seconds: f64,
    executions: u64,
    finding: Option<String>,
}

fn run_target(
    root: &Path,
    fuzz_dir: &Path,
    target: &str,
    seconds: u64,
) -> Result<FuzzResult, String> {
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let mut command = fuzz_command(root);
    command.args(["run", "-O", target]).arg(&corpus);
    let seeds = fuzz_dir.join("seeds").join(target);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    command.args([
        "--",
        &format!("-max_total_time={seconds}"),
        "-print_final_stats=1",
        "-timeout=10",
    ]);
    if target.ends_with("_config") {
        command.arg(format!("-dict={}", fuzz_dir.join("json.dict").display()));
    }
    println!("\n$ {}", cmd::show(&command));
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    let executions = log
        .lines()
        .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let finding = (!output.status.success()).then(|| {
        let artifact = log
            .lines()
            .find_map(|line| line.split("Test unit written to ").nth(1))
            .unwrap_or("(no artifact written)")
            .trim()
            .to_string();
        let panic = log
            .lines()
            .find(|line| line.contains("panicked at"))
            .unwrap_or("")
            .to_string();
        println!("{}", e2e::envoy::tail(&log, 40));
        format!("CRASH {artifact} {panic}")
    });
    println!(
        "fuzz {target}: {elapsed:.1} s, {executions} executions{}",
        if finding.is_some() { ", CRASHED" } else { "" }
    );
    if executions == 0 && finding.is_none() {
        return Err(format!(
            "fuzz {target} executed nothing:\n{}",
            e2e::envoy::tail(&log, 30)
        ));
    }
    Ok(FuzzResult {
        target: target.to_string(),
        seconds: elapsed,
        executions,
        finding,
    })
}
