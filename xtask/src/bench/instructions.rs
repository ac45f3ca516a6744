//! Instructions per request under callgrind: each counted variant's Envoy runs under
//! `valgrind --tool=callgrind`, takes a warm-up, then a fixed number of requests between zeroing
//! and dumping the counters. Unlike CPU time on a shared machine, the count barely moves from one
//! run to the next (a few parts in ten thousand idle, about 1 % under heavy load, as Envoy's event
//! loop batches differently), so it shows small changes that the timed rounds' noise hides. It is
//! the figure the budget is written in (issue 18); as it is a proxy, not a time (a cache miss or a
//! system call counts as little as any other instruction), the timed rounds stay as a cross-check.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::envoy::Envoy;
use e2e::modules::Module;
use e2e::paths;

use super::variants::{callback_variant, Group, Variant, ALLOWED_HOST, CALLBACKS, PROBE_CALLS};
use crate::cmd;

/// Requests counted per variant, and taken before counting (V8 compiles the Wasm code lazily and
/// tiers it up; Envoy warms its own caches).
const REQUESTS: u64 = 2000;
const WARM_UP_REQUESTS: u64 = 500;
/// Keep-alive connections of the fixed-count client.
const CONNECTIONS: u32 = 4;
/// Envoy under callgrind starts some fifty times slower; three modules take over a minute.
pub const START_TIMEOUT: Duration = Duration::from_secs(600);

/// The command that runs Envoy under callgrind, its profiles written into `dir`.
pub fn wrapper(dir: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        // V8 writes and rewrites the machine code it runs.
        "--smc-check=all-non-file".into(),
        format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()),
        "--quiet".into(),
    ]
}

/// Where each counted variant's profile is kept, for `callgrind_annotate` (Envoy's binary is
/// stripped, so it attributes Envoy's own code by address only; the split between Envoy, V8's
/// generated code and the libraries still shows).
pub fn kept_profile(variant: &str) -> PathBuf {
    paths::target_dir()
        .join("bench")
        .join("callgrind")
        .join(format!("callgrind.out.{variant}"))
}

/// The instructions Envoy `envoy` (started under [`wrapper`], profiles in `dir`) executes per
/// request of [`REQUESTS`] to `url`; the profile is kept as [`kept_profile`]`(variant)`. `Err` when
/// a request fails or the profile cannot be read.
pub fn per_request(envoy: &Envoy, dir: &Path, url: &str, variant: &str) -> Result<f64, String> {
    send(url, WARM_UP_REQUESTS)?;
    let pid = envoy.pid().to_string();
    callgrind_control("--zero", &pid)?;
    send(url, REQUESTS)?;
    callgrind_control("--dump", &pid)?;
    let profile = dir.join(format!("callgrind.out.{pid}.1"));
    let text = std::fs::read_to_string(&profile)
        .map_err(|error| format!("{}: {error}", profile.display()))?;
    let instructions = total_instructions(&text)
        .ok_or_else(|| format!("{}: no `summary:` line", profile.display()))?;
    let kept = kept_profile(variant);
    if let Some(parent) = kept.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("{}: {error}", parent.display()))?;
    }
    std::fs::write(&kept, &text).map_err(|error| format!("{}: {error}", kept.display()))?;
    Ok(instructions as f64 / REQUESTS as f64)
}

/// Zeroes or dumps the counters of the callgrind process `pid`.
fn callgrind_control(action: &str, pid: &str) -> Result<(), String> {
    let mut command = Command::new("callgrind_control");
    command.args([action, pid]);
    cmd::output(&mut command)
        .map(drop)
        .ok_or_else(|| format!("`{}` failed", cmd::show(&command)))
}

fn h2load_command(url: &str, requests: u64) -> Command {
    let mut command = Command::new("h2load");
    command
        .args(["--h1", "-n"])
        .arg(requests.to_string())
        .arg("-c")
        .arg(CONNECTIONS.to_string())
        .args(["-H"])
        .arg(format!(":authority: {ALLOWED_HOST}"))
        .arg(url);
    command
}

/// Sends `requests` over [`CONNECTIONS`] keep-alive HTTP/1.1 connections; every answer must be 2xx.
fn send(url: &str, requests: u64) -> Result<(), String> {
    let mut command = h2load_command(url, requests);
    let shown = cmd::show(&command);
    let output = command
        .output()
        .map_err(|error| format!("cannot run `{shown}`: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match successes(&stdout) {
        Some(count) if output.status.success() && count == requests => Ok(()),
        _ => Err(format!(
            "`{shown}` did not get {requests} 2xx answers ({}):\n{stdout}",
            output.status
        )),
    }
}

/// The 2xx count of h2load's `status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx` line.
fn successes(h2load_output: &str) -> Option<u64> {
    let codes = h2load_output
        .lines()
        .find_map(|line| line.trim().strip_prefix("status codes:"))?;
    codes
        .split(',')
        .find_map(|part| part.trim().strip_suffix(" 2xx"))?
        .parse()
        .ok()
}

/// A callgrind profile's event total (`summary: 123` with only the default `Ir` event).
fn total_instructions(profile: &str) -> Option<u64> {
    profile
        .lines()
        .find_map(|line| line.strip_prefix("summary:"))?
        .trim()
        .parse()
        .ok()
}

/// One variant's count.
pub struct Counted {
    pub name: String,
    pub group: Group,
    pub per_request: f64,
}

/// The counts by variant name.
pub struct Counts<'a>(pub &'a [Counted]);

impl Counts<'_> {
    pub fn of(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|c| c.name == name)
            .map_or(f64::NAN, |c| c.per_request)
    }

    /// Instructions per request over plain Envoy's.
    pub fn delta(&self, name: &str) -> f64 {
        self.of(name) - self.of("plain")
    }

    /// Δ over native's Δ: what the budget is written in.
    pub fn ratio(&self, name: &str) -> f64 {
        self.delta(name) / self.delta("native")
    }

    /// Δ(allowlist-100000) / Δ(allowlist-10).
    pub fn scaling_ratio(&self) -> f64 {
        let [small, large] = SCALING_PAIR;
        self.delta(large) / self.delta(small)
    }
}

fn ratio_cell(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "–".to_string()
    }
}

/// The `BENCHMARKS.md` section.
pub fn section(counted: &[Counted]) -> String {
    let mut out = String::from("## Instructions per request (callgrind)\n\n");
    let _ = writeln!(
        out,
        "Each main variant once more, alone, under `{}`: {WARM_UP_REQUESTS} requests \
         to warm up, then {REQUESTS} (`{}`) between zeroing and dumping callgrind's counters. The \
         figure is every instruction the Envoy process executed, divided by the requests. It moves \
         about 1 % between runs on a loaded machine (far less on an idle one), so it shows changes \
         the timed rounds' noise hides; but it is a \
         proxy for time, not time (a cache miss or a system call counts as one instruction). \
         This is the figure the budget is written in.\n",
        wrapper(Path::new("DIR")).join(" "),
        cmd::show(&h2load_command("http://127.0.0.1:PORT/", REQUESTS)),
    );
    let _ = writeln!(
        out,
        "| variant | instructions/req | Δ plain | Δ / Δ native |\n|---|---:|---:|---:|"
    );
    let counts = Counts(counted);
    for count in counted.iter().filter(|c| c.group == Group::Main) {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:+.0} | {} |",
            count.name,
            count.per_request,
            counts.delta(&count.name),
            // Without native in the run (`--only`), there is no ratio.
            ratio_cell(counts.ratio(&count.name))
        );
    }
    callbacks_table(&mut out, &counts);
    host_calls_table(&mut out, &counts);
    let [small, large] = SCALING_PAIR;
    if counts.of(small).is_finite() && counts.of(large).is_finite() {
        let _ = writeln!(
            out,
            "\nAllowlist size, the request's host listed last: {small} {:+.0}, {large} {:+.0} \
             instructions/req over plain; Δ({large}) / Δ({small}) = {}.",
            counts.delta(small),
            counts.delta(large),
            ratio_cell(counts.scaling_ratio())
        );
    }
    out
}

/// What one host call costs in instructions, when the host-call probes were counted (`--instructions
/// --only probe-…,wasm-passthrough`): the probe's count minus the do-nothing probe's, over the calls.
fn host_calls_table(out: &mut String, counts: &Counts<'_>) {
    let floor = counts.of("wasm-passthrough");
    let probes: Vec<&Counted> = counts
        .0
        .iter()
        .filter(|c| c.group == Group::HostCalls)
        .collect();
    if probes.is_empty() || !floor.is_finite() {
        return;
    }
    let _ = writeln!(out, "\n### What one host call costs\n");
    let _ = writeln!(
        out,
        "The probe making one kind of host call {PROBE_CALLS} times per request, minus the \
         do-nothing probe (`wasm-passthrough`), over {PROBE_CALLS}.\n"
    );
    let _ = writeln!(
        out,
        "| probe | instructions/req | instructions per call |\n|---|---:|---:|"
    );
    for probe in probes {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} |",
            probe.name,
            probe.per_request,
            (probe.per_request - floor) / f64::from(PROBE_CALLS)
        );
    }
}

/// What Envoy entering each callback costs: the do-nothing probe exporting only the callbacks every
/// module keeps (a context created and deleted per request), then one more each.
fn callbacks_table(out: &mut String, counts: &Counts<'_>) {
    let callbacks: Vec<&Counted> = counts
        .0
        .iter()
        .filter(|c| c.group == Group::Callbacks)
        .collect();
    let floor = counts.of("callback-none");
    if callbacks.is_empty() || !floor.is_finite() {
        return;
    }
    let _ = writeln!(out, "\n### What each proxy-wasm callback costs\n");
    let _ = writeln!(
        out,
        "The do-nothing probe (`benches/wasm-probe`) with its callback exports removed as the build \
         removes a filter's unimplemented ones (`tests/src/wasm_exports.rs`), keeping \
         `{}`, then with one callback more: Envoy enters an exported callback for every request \
         and skips a missing one. `callback-none` over plain Envoy is what a Wasm filter pays for \
         its context (created, then deleted); each other row over `callback-none` is what entering \
         that callback costs, with nothing done inside. `wasm-passthrough` exports them all.\n",
        e2e::wasm_exports::ALWAYS_KEPT.join("`, `")
    );
    let _ = writeln!(
        out,
        "| variant | instructions/req | Δ plain | Δ callback-none |\n|---|---:|---:|---:|"
    );
    let passthrough = counts.0.iter().find(|c| c.name == "wasm-passthrough");
    for count in callbacks.into_iter().chain(passthrough) {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:+.0} | {:+.0} |",
            count.name,
            count.per_request,
            counts.delta(&count.name),
            count.per_request - floor
        );
    }
    let _ = writeln!(
        out,
        "\nWhat each shipped module pays for the Wasm boundary per request of this bench, before \
         any host call: its context plus the callbacks above that it exports (the build keeps \
         those it implements, `Module::callbacks`). Each value a host call hands over adds one \
         more entry into the VM (`proxy_on_memory_allocate`), counted with the host call.\n"
    );
    let _ = writeln!(
        out,
        "| module | callbacks entered | fixed cost, instructions/req |\n|---|---|---:|"
    );
    for module in Module::ALL {
        let entered: Vec<&str> = CALLBACKS
            .iter()
            .copied()
            .filter(|callback| module.callbacks().contains(callback))
            .collect();
        let cost = counts.delta("callback-none")
            + entered
                .iter()
                .map(|callback| counts.of(&callback_variant(callback)) - floor)
                .sum::<f64>();
        let mut names = vec!["context create, delete".to_string()];
        names.extend(
            entered
                .iter()
                .map(|c| c.trim_start_matches("proxy_on_").to_string()),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} |",
            module.package(),
            names.join(", "),
            cost
        );
    }
}

/// Whether the bench measures instructions for `variant`: the main comparison, the callback probes,
/// and the smallest and largest allowlist (is the allowlist flat?); not the sizes between, the RBAC
/// lists or the host-call probes, whose timed figures answer their questions.
pub fn counts(variant: &Variant) -> bool {
    match variant.group {
        Group::Main | Group::Callbacks => true,
        Group::Scaling => SCALING_PAIR.contains(&variant.name.as_str()),
        Group::HostCalls => false,
    }
}

/// The allowlist sizes whose instructions are compared: Δ(large) / Δ(small) near 1 is a flat cost.
pub const SCALING_PAIR: [&str; 2] = ["allowlist-10", "allowlist-100000"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2load_status_codes_give_the_successes() {
        let output = "finished in 1.2s, 1600 req/s, 200KB/s\n\
                      requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed\n\
                      status codes: 1998 2xx, 0 3xx, 2 4xx, 0 5xx\n";
        assert_eq!(successes(output), Some(1998));
        assert_eq!(successes("requests: 0 total"), None);
    }

    #[test]
    fn a_module_pays_its_context_and_the_callbacks_it_exports() {
        let count = |name: &str, group: Group, per_request: f64| Counted {
            name: name.to_string(),
            group,
            per_request,
        };
        let counted = [
            count("plain", Group::Main, 1000.0),
            count("native", Group::Main, 1100.0),
            count("callback-none", Group::Callbacks, 1010.0),
            count("callback-request_headers", Group::Callbacks, 1013.0),
            count("callback-response_headers", Group::Callbacks, 1015.0),
            count("callback-response_body", Group::Callbacks, 1020.0),
            count("callback-log", Group::Callbacks, 1017.0),
            count("callback-done", Group::Callbacks, 1011.0),
        ];
        let section = section(&counted);
        // 10 for the context, 3 for request headers.
        assert!(
            section.contains("| host-allowlist | context create, delete, request_headers | 13 |"),
            "{section}"
        );
        // 10 + 3 + 5.
        assert!(section.contains("| subset-tagger | context create, delete, request_headers, response_headers | 18 |"), "{section}");
        // 10 + 7.
        assert!(
            section.contains("| access-log | context create, delete, log | 17 |"),
            "{section}"
        );
    }

    #[test]
    fn the_profile_summary_is_the_total() {
        let profile = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 154087115\n";
        assert_eq!(total_instructions(profile), Some(154_087_115));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }
}
