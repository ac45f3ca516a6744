//! `cargo xtask bench [--quick]`: what the filters cost, measured side by side in one run.
//!
//! Every variant (plain Envoy, Envoy's native equivalent, Lua, each of our filters, the suite, the
//! combined module, allowlist sizes) runs in its own Envoy (`--concurrency 1`, pinned with taskset
//! to core 0), all started up front and functionally checked. Then rounds of load, interleaved
//! (A B C … A B C …), from wrk on core 1 against a backend Envoy also on core 1. The robust figure
//! is Envoy's CPU time per request minus plain Envoy's in the same round. A full run then counts
//! the main variants' instructions per request under callgrind, with the callback probes and the
//! smallest and largest allowlist (`--instructions` does only that).
//! Writes `BENCHMARKS.md`.

mod check;
mod instructions;
mod measure;
mod report;
mod shipped;
mod variants;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::template::{self, Vars};
use e2e::{modules, paths};

use crate::system_packages::Purpose;
use crate::{cmd, setup};
use instructions::Counted;
use measure::Sample;
use variants::{Group, Variant, ALLOWED_HOST};

/// How long and how often.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub quick: bool,
    pub rounds: usize,
    pub duration: Duration,
    pub warm_up: Duration,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                rounds: 3,
                duration: Duration::from_secs(2),
                warm_up: Duration::from_secs(1),
            }
        } else {
            Self {
                quick,
                rounds: 5,
                duration: Duration::from_secs(6),
                warm_up: Duration::from_secs(2),
            }
        }
    }
}

/// A started variant.
struct Running {
    variant: Variant,
    envoy: Envoy,
    addr: SocketAddr,
}

/// One variant's results: a sample per round.
pub struct Measured {
    pub variant: Variant,
    pub samples: Vec<Sample>,
}

/// The command line: `--quick` (timed rounds only, shorter), `--instructions` (the callgrind
/// counts only), and `--only a,b,…` to measure some variants (plain Envoy always; with
/// `--instructions`, each named one is counted, a host-call probe too).
struct Options {
    quick: bool,
    instructions_only: bool,
    only: Option<Vec<String>>,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        instructions_only: false,
        only: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--instructions" => options.instructions_only = true,
            "--only" => {
                let names = args
                    .next()
                    .ok_or("--only needs a comma-separated list of variants")?;
                options.only = Some(names.split(',').map(str::to_string).collect());
            }
            other => {
                return Err(format!(
                    "unexpected argument {other:?}: the options are --quick, --instructions and --only a,b,…"
                ))
            }
        }
    }
    Ok(options)
}

/// Every variant of the plan, or the `--only` ones and plain Envoy (the reference every Δ needs).
fn selected(quick: bool, only: Option<&[String]>) -> Result<Vec<Variant>, String> {
    let all = variants::all(quick, &shipped::read()?);
    let Some(only) = only else {
        return Ok(all);
    };
    if let Some(unknown) = only
        .iter()
        .find(|name| !all.iter().any(|v| &v.name == *name))
    {
        let names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
        return Err(format!(
            "no variant {unknown:?}; the variants: {}",
            names.join(", ")
        ));
    }
    Ok(all
        .into_iter()
        .filter(|v| v.name == "plain" || only.contains(&v.name))
        .collect())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Options {
        quick,
        instructions_only,
        only,
    } = options(args)?;
    let plan = Plan::new(quick);
    let started = Instant::now();
    let variants = selected(quick, only.as_deref())?;
    setup::for_gateways(Purpose::Bench)?;
    cmd::build_modules()?;
    cmd::run(&mut modules::build_command_for(&[variants::PROBE_PACKAGE]))?;
    variants::write_trimmed_probes()?;
    require_two_cores()?;
    let load_before = report::load_average();
    // This process (the functional checks, wrk's parent) stays off the measured core.
    measure::pin(std::process::id(), measure::LOAD_CPU)?;

    let backend = start_backend()?;
    let backend_port = backend.listener_addr("backend")?.port();
    if instructions_only {
        // Named variants are counted whatever their group (a host-call probe's instructions too).
        let named = only.is_some();
        let counted = count_instructions(&variants, backend_port, named)?;
        print!("\n{}", instructions::section(&counted));
        println!(
            "bench: --instructions run, BENCHMARKS.md left as it was ({:.0?})",
            started.elapsed()
        );
        return Ok(());
    }
    let mut running = Vec::with_capacity(variants.len());
    // The callback probes differ by a fraction of a microsecond, below the timed rounds' noise:
    // they are counted in instructions only.
    for variant in variants
        .iter()
        .filter(|v| v.group != Group::Callbacks)
        .cloned()
    {
        println!("bench: starting and checking {}", variant.name);
        running.push(start_variant(variant, backend_port, None)?);
    }

    println!("bench: warming up ({:?} each)", plan.warm_up);
    for variant in &running {
        measure::run(
            variant.envoy.pid(),
            &url(variant.addr),
            ALLOWED_HOST,
            plan.warm_up,
        )
        .map_err(|error| format!("{}: {error}", variant.variant.name))?;
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); running.len()];
    for round in 1..=plan.rounds {
        for (variant, samples) in running.iter().zip(samples.iter_mut()) {
            let sample = measure::run(
                variant.envoy.pid(),
                &url(variant.addr),
                ALLOWED_HOST,
                plan.duration,
            )
            .map_err(|error| format!("{} (round {round}): {error}", variant.variant.name))?;
            println!(
                "bench: round {round}/{} {:<16} {:>9.0} req/s  {:>7.2} µs CPU/req",
                plan.rounds,
                variant.variant.name,
                sample.requests_per_second,
                sample.cpu_per_request_us()
            );
            samples.push(sample);
        }
    }
    let load_after = report::load_average();
    let measured: Vec<Measured> = running
        .into_iter()
        .zip(samples)
        .map(|(running, samples)| Measured {
            variant: running.variant,
            samples,
        })
        .collect();
    print!("{}", report::summary(&measured));
    // A quick run stays within its few minutes: callgrind runs Envoy some fifty times slower.
    let counted = if quick {
        Vec::new()
    } else {
        count_instructions(&variants, backend_port, false)?
    };
    if !counted.is_empty() {
        print!("\n{}", instructions::section(&counted));
    }
    if only.is_some() {
        // A partial run is for looking into one cost; BENCHMARKS.md is the whole comparison.
        println!(
            "bench: --only run, BENCHMARKS.md left as it was ({:.0?})",
            started.elapsed()
        );
    } else {
        let path = paths::workspace_root().join("BENCHMARKS.md");
        let findings = std::fs::read_to_string(&path)
            .ok()
            .and_then(|previous| report::findings(&previous));
        let text = report::render(&report::Context {
            plan,
            load_before,
            load_after,
            elapsed: started.elapsed(),
            wrk_example: cmd::show(&measure::wrk_command(
                "http://127.0.0.1:PORT/",
                ALLOWED_HOST,
                plan.duration,
            )),
            measured: &measured,
            instructions: &counted,
            findings,
        })?;
        std::fs::write(&path, &text).map_err(|error| format!("{}: {error}", path.display()))?;
        println!(
            "bench: wrote {} in {:.0?}",
            path.display(),
            started.elapsed()
        );
    }
    drop(backend);
    Ok(())
}

/// Envoy on one core, the load generator on the other. (The tools are installed by setup.)
fn require_two_cores() -> Result<(), String> {
    if std::thread::available_parallelism().map_or(0, usize::from) < 2 {
        return Err(
            "the benchmark needs two cores: Envoy on one, the load generator on the other".into(),
        );
    }
    Ok(())
}

fn templates_dir() -> PathBuf {
    paths::workspace_root().join("xtask").join("bench-envoy")
}

fn start_backend() -> Result<Envoy, String> {
    let bootstrap = template::render_file(&templates_dir().join("backend.yaml"), &Vars::new())?;
    let envoy = Envoy::start(EnvoyOptions::new("bench-backend", bootstrap))?;
    measure::pin(envoy.pid(), measure::LOAD_CPU)?;
    Ok(envoy)
}

/// The instructions per request of each variant [`instructions::counts`] (or, with `every`, of each
/// variant), one variant at a time under callgrind.
fn count_instructions(
    variants: &[Variant],
    backend_port: u16,
    every: bool,
) -> Result<Vec<Counted>, String> {
    let mut counted = Vec::new();
    for variant in variants.iter().filter(|v| every || instructions::counts(v)) {
        println!(
            "bench: counting {}'s instructions under callgrind",
            variant.name
        );
        let profiles = Envoy::work_dir(&format!("bench-callgrind-{}", variant.name))?;
        let running = start_variant(variant.clone(), backend_port, Some(profiles.path()))?;
        let per_request = instructions::per_request(
            &running.envoy,
            profiles.path(),
            &url(running.addr),
            &variant.name,
        )
        .map_err(|error| format!("{}: {error}", variant.name))?;
        println!("bench: {} {per_request:.0} instructions/req", variant.name);
        counted.push(Counted {
            name: variant.name.clone(),
            group: variant.group,
            per_request,
        });
    }
    Ok(counted)
}

/// How often the functional check is tried on an Envoy under callgrind.
const CALLGRIND_CHECK_ATTEMPTS: usize = 4;

/// Starts `variant`'s Envoy, under callgrind when given a directory for its profiles, and checks
/// that it works.
fn start_variant(
    variant: Variant,
    backend_port: u16,
    callgrind_profiles: Option<&std::path::Path>,
) -> Result<Running, String> {
    let work_dir = Envoy::work_dir(&format!("bench-{}", variant.name))?;
    let access_log = work_dir.path().join("access.log");
    let vars = Vars::new()
        .set("BACKEND_PORT", backend_port)
        .set("HTTP_FILTERS", variant.http_filters_yaml())
        .set("ACCESS_LOG", variant.access_log_yaml(&access_log));
    let bootstrap = template::render_file(&templates_dir().join("gateway.yaml"), &vars)?;
    let mut options = EnvoyOptions::new(&format!("bench-{}", variant.name), bootstrap);
    if let Some(dir) = callgrind_profiles {
        options.wrapper = instructions::wrapper(dir);
        options.start_timeout = instructions::START_TIMEOUT;
    }
    let envoy =
        Envoy::start_in(options, work_dir).map_err(|error| format!("{}: {error}", variant.name))?;
    measure::pin(envoy.pid(), measure::ENVOY_CPU)?;
    let addr = envoy.listener_addr("bench")?;
    // Under callgrind, the first requests through a Wasm VM can outlast the client's timeout (V8
    // compiles the module's code as it first runs, here some fifty times slower): a failed check
    // is tried again there, a few times.
    let attempts = if callgrind_profiles.is_some() {
        CALLGRIND_CHECK_ATTEMPTS
    } else {
        1
    };
    let mut outcome = check::check(&variant, addr, &access_log);
    for _ in 1..attempts {
        if outcome.is_ok() {
            break;
        }
        outcome = check::check(&variant, addr, &access_log);
    }
    outcome?;
    Ok(Running {
        variant,
        envoy,
        addr,
    })
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}
