//! `BENCHMARKS.md`: when and where, how, the raw samples, medians, differences from plain Envoy in
//! the same round, ratios, the budget, module sizes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use e2e::modules::Module;
use e2e::paths;

use super::instructions::{self, Counted, Counts, SCALING_PAIR};
use super::measure::{CONNECTIONS, ENVOY_CPU, LOAD_CPU};
use super::variants::{Group, PROBE_CALLS};
use super::{Measured, Plan};
use crate::cmd;

/// The budget of issue 18: each row's instructions per request over plain Envoy, divided by the
/// native equivalent's.
const RATIO_TARGETS: [(&str, f64); 4] = [
    ("suite", 1.5),
    ("gateway", 1.3),
    ("host-allowlist", 0.6),
    ("access-log", 2.5),
];
/// Δ(allowlist-100000) / Δ(allowlist-10), in instructions and in CPU time.
const FLATNESS_BUDGET: f64 = 1.10;

/// A module's size, gzip-compressed (what a registry stores and Istio pulls): one feature, or the
/// combined module.
fn module_budget_bytes(module: Module) -> u64 {
    match module {
        Module::Gateway => 160 * 1024,
        Module::HostAllowlist | Module::SubsetTagger | Module::AccessLog => 100 * 1024,
    }
}

pub struct Context<'a> {
    pub plan: Plan,
    pub load_before: String,
    pub load_after: String,
    pub elapsed: Duration,
    pub wrk_example: String,
    pub measured: &'a [Measured],
    /// Empty in a quick run.
    pub instructions: &'a [Counted],
    /// The hand-written section of the previous `BENCHMARKS.md`, if it had one ([`findings`]).
    pub findings: Option<String>,
}

/// The heading of `BENCHMARKS.md`'s one hand-written section: what the figures were used for
/// (decisions taken or not, and why), which no run can write. The bench keeps it from one run to
/// the next, up to the next `## ` heading; its subsections use `###`.
pub const FINDINGS_HEADING: &str =
    "## Findings (hand-written; `cargo xtask bench` keeps this section)";

/// The hand-written section of `previous` (a `BENCHMARKS.md`), heading included.
pub fn findings(previous: &str) -> Option<String> {
    let start = previous.find(FINDINGS_HEADING)?;
    let section = previous.get(start..)?;
    let body = section.get(FINDINGS_HEADING.len()..)?;
    let end = body
        .find("\n## ")
        .map_or(section.len(), |at| FINDINGS_HEADING.len() + at);
    section.get(..end).map(|text| text.trim_end().to_string())
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match (
        values.len() % 2,
        values.get(middle),
        middle.checked_sub(1).and_then(|i| values.get(i)),
    ) {
        (1, Some(value), _) => *value,
        (_, Some(high), Some(low)) => (high + low) / 2.0,
        _ => f64::NAN,
    }
}

/// Per variant, the medians and the per-round differences from plain Envoy.
struct Row<'a> {
    measured: &'a Measured,
    rps: f64,
    p50: f64,
    p99: f64,
    cpu: f64,
    /// Median over rounds of (this variant's CPU/req − plain's CPU/req in that round).
    delta: f64,
    deltas: Vec<f64>,
    rss_mib: f64,
}

fn rows(measured: &[Measured]) -> Vec<Row<'_>> {
    let plain = measured.iter().find(|m| m.variant.name == "plain");
    measured
        .iter()
        .map(|m| {
            let deltas: Vec<f64> = match plain {
                Some(plain) => m
                    .samples
                    .iter()
                    .zip(&plain.samples)
                    .map(|(s, p)| s.cpu_per_request_us() - p.cpu_per_request_us())
                    .collect(),
                None => Vec::new(),
            };
            Row {
                measured: m,
                rps: median(m.samples.iter().map(|s| s.requests_per_second).collect()),
                p50: median(m.samples.iter().map(|s| s.p50_us).collect()),
                p99: median(m.samples.iter().map(|s| s.p99_us).collect()),
                cpu: median(m.samples.iter().map(|s| s.cpu_per_request_us()).collect()),
                delta: median(deltas.clone()),
                deltas,
                rss_mib: m.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            }
        })
        .collect()
}

fn find<'a>(rows: &'a [Row<'a>], name: &str) -> Option<&'a Row<'a>> {
    rows.iter().find(|row| row.measured.variant.name == name)
}

/// Raw and gzip-compressed size of a built module.
pub fn module_sizes(module: Module) -> Result<(u64, u64), String> {
    file_sizes(&paths::wasm_dir().join(module.file_name()))
}

fn file_sizes(path: &std::path::Path) -> Result<(u64, u64), String> {
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&bytes)
        .map_err(|error| error.to_string())?;
    let gzip = encoder.finish().map_err(|error| error.to_string())?;
    Ok((bytes.len() as u64, gzip.len() as u64))
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    // The machine's cores, not this process's: the harness pins itself to the load generator's.
    let cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = cmd::output(Command::new("uname").args(["-srm"])).unwrap_or_default();
    format!("{model}, {cores} cores, {memory} memory, {}", kernel.trim())
}

fn envoy_version() -> String {
    cmd::output(Command::new(paths::envoy_bin()).arg("--version"))
        .map(|v| {
            v.trim()
                .rsplit("version: ")
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn now_utc() -> String {
    cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_string())
        .unwrap_or_default()
}

fn fmt(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "n/a".to_string()
    }
}

fn signed(value: f64) -> String {
    if value.is_finite() {
        format!("{value:+.2}")
    } else {
        "n/a".to_string()
    }
}

pub fn render(context: &Context<'_>) -> Result<String, String> {
    let rows = rows(context.measured);
    let plan = context.plan;
    let mut out = String::new();
    let native = find(&rows, "native").map_or(f64::NAN, |r| r.delta);
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "What the filters cost Envoy, measured side by side in one run by `cargo xtask bench{}` \
         (the harness is `xtask/src/bench/`, the Envoy configurations `xtask/bench-envoy/`). \
         These are figures of one machine at one time, not guarantees; the differences from plain \
         Envoy and the ratios carry over better than the absolute numbers.\n",
        if plan.quick { " --quick" } else { "" }
    );
    let _ = writeln!(out, "- Date: {}", now_utc());
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(out, "- Envoy: {}", envoy_version());
    let _ = writeln!(
        out,
        "- Load average (1, 5, 15 min) before: {}; after: {}. The machine was shared: other work \
         running at the same time shows in the absolute figures more than in the same-round differences.",
        context.load_before, context.load_after
    );
    let _ = writeln!(
        out,
        "- Plan: {} rounds × {} s per variant, after a {} s warm-up each, interleaved (every variant once per round, in the order of the tables); the whole run took {:.0} s.",
        plan.rounds,
        plan.duration.as_secs(),
        plan.warm_up.as_secs(),
        context.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "- Each variant: its own Envoy, `--concurrency 1`, pinned with `taskset -a -p -c {ENVOY_CPU}`. Load on core {LOAD_CPU}: `{}` (1 thread, {CONNECTIONS} keep-alive connections, HTTP/1.1), against a backend Envoy answering 200 itself, also on core {LOAD_CPU}.",
        context.wrk_example
    );
    let _ = writeln!(
        out,
        "- CPU/req: Envoy's utime + stime (all threads, `/proc/<pid>/stat`) over the run, divided by the requests wrk completed. **Δ plain** is that minus plain Envoy's CPU/req **in the same round**, median over rounds: the noise-robust figure. Latencies are wrk's (on a shared core with the backend, so they include both). RSS is the largest VmRSS seen.",
    );
    let _ = writeln!(
        out,
        "- Before measuring, each variant passed a functional check: `allowed.example.com` answers 200; where it applies, `denied.example.com` gets 403, the upstream received the `x-route-subset` tag the variant sets, the access-log file holds the JSON record (with `decision` and `subset` where they apply). wrk reporting any non-2xx response fails the run.\n"
    );

    let _ = writeln!(out, "## Suite and each filter\n");
    let _ = writeln!(
        out,
        "| variant | what | req/s | p50 µs | p99 µs | CPU µs/req | Δ plain µs/req | Δ / Δ native | RSS MiB | modules (raw / gzip) |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows
        .iter()
        .filter(|r| r.measured.variant.group == Group::Main)
    {
        let variant = &row.measured.variant;
        let modules: Vec<String> = variant
            .modules
            .iter()
            .map(|m| {
                module_sizes(*m)
                    .map(|(raw, gz)| format!("{} {} / {}", m.package(), kb(raw), kb(gz)))
            })
            .collect::<Result<_, _>>()?;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            variant.name,
            variant.what,
            fmt(row.rps, 0),
            fmt(row.p50, 0),
            fmt(row.p99, 0),
            fmt(row.cpu, 2),
            if variant.name == "plain" {
                "0 (reference)".to_string()
            } else {
                signed(row.delta)
            },
            if variant.name == "plain" {
                String::new()
            } else {
                fmt(row.delta / native, 2)
            },
            fmt(row.rss_mib, 1),
            if modules.is_empty() {
                "–".to_string()
            } else {
                modules.join("; ")
            },
        );
    }

    if context.instructions.is_empty() {
        let _ = writeln!(
            out,
            "\nA quick run counts no instructions; `cargo xtask bench` or `--instructions` does."
        );
    } else {
        let _ = write!(out, "\n{}", instructions::section(context.instructions));
    }

    let _ = writeln!(out, "\n## Allowlist size (request host listed last)\n");
    let _ = writeln!(
        out,
        "| hosts | host-allowlist Δ plain µs/req | host-allowlist req/s | host-allowlist RSS MiB | RBAC list Δ plain µs/req | RBAC req/s | RBAC RSS MiB |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let sizes: BTreeSet<usize> = rows
        .iter()
        .filter_map(|r| r.measured.variant.hosts)
        .collect();
    for size in &sizes {
        let ours = find(&rows, &format!("allowlist-{size}"));
        let rbac = find(&rows, &format!("rbac-{size}"));
        let cell = |row: Option<&Row<'_>>, f: &dyn Fn(&Row<'_>) -> String| {
            row.map_or("not run".to_string(), f)
        };
        let _ = writeln!(
            out,
            "| {size} | {} | {} | {} | {} | {} | {} |",
            cell(ours, &|r| signed(r.delta)),
            cell(ours, &|r| fmt(r.rps, 0)),
            cell(ours, &|r| fmt(r.rss_mib, 1)),
            cell(rbac, &|r| signed(r.delta)),
            cell(rbac, &|r| fmt(r.rps, 0)),
            cell(rbac, &|r| fmt(r.rss_mib, 1)),
        );
    }

    host_call_table(&mut out, &rows);

    budget(&mut out, &rows, context.instructions)?;
    let (raw, gzip) = file_sizes(&super::variants::probe_path())?;
    let _ = writeln!(
        out,
        "| for scale, not a target: the do-nothing probe (proxy-wasm SDK and std alone) | {} gzip ({} raw) | |",
        kb(gzip),
        kb(raw)
    );

    if let Some(findings) = &context.findings {
        let _ = writeln!(out, "\n{findings}");
    }

    let _ = writeln!(out, "\n## Raw samples\n");
    let _ = writeln!(
        out,
        "Per round: req/s, p50/p99 µs, Envoy CPU µs/req, Δ plain µs/req, RSS MiB.\n"
    );
    let _ = writeln!(out, "| variant | round | req/s | p50 | p99 | CPU µs/req | Δ plain | requests | CPU s | RSS MiB |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        for (index, sample) in row.measured.samples.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {} | {} | {:.2} | {:.1} |",
                row.measured.variant.name,
                index + 1,
                sample.requests_per_second,
                sample.p50_us,
                sample.p99_us,
                sample.cpu_per_request_us(),
                row.deltas.get(index).map_or("".to_string(), |d| signed(*d)),
                sample.requests,
                sample.cpu_us / 1e6,
                sample.rss_kib as f64 / 1024.0
            );
        }
    }
    Ok(out)
}

/// The budget of issue 18: Δ / Δ native in instructions per request (the figure that moves least
/// between runs), the allowlist's flatness in instructions and in CPU time, module sizes gzip.
fn budget(out: &mut String, rows: &[Row<'_>], counted: &[Counted]) -> Result<(), String> {
    let _ = writeln!(out, "\n## Budget (issue 18)\n");
    let _ = writeln!(
        out,
        "Ratios are instructions per request over plain Envoy, divided by the native equivalent's (RBAC, header_mutation, JSON file access log), counted in the same run.\n"
    );
    let _ = writeln!(out, "| target | measured | met |\n|---|---|---|");
    // A figure the run did not produce (a quick run counts no instructions; a noisy round can
    // leave a Δ at or below zero, where a ratio means nothing) meets no target and misses none.
    let verdict = |measured: f64, target: f64| match measured {
        m if !m.is_finite() => "–",
        m if m <= target => "yes",
        _ => "**no**",
    };
    let counts = Counts(counted);
    let native = counts.delta("native");
    for (name, target) in RATIO_TARGETS {
        let ratio = counts.ratio(name);
        let measured = if ratio.is_finite() {
            format!(
                "{ratio:.2} ({:+.0} vs native's {native:+.0} instructions/req)",
                counts.delta(name)
            )
        } else {
            "not counted (quick run)".to_string()
        };
        let _ = writeln!(
            out,
            "| {name}: Δ / Δ native ≤ {target} | {measured} | {} |",
            verdict(ratio, target)
        );
    }
    let [small, large] = SCALING_PAIR;
    let ratio = counts.scaling_ratio();
    let _ = writeln!(
        out,
        "| host-allowlist flat, instructions: Δ({large}) / Δ({small}) ≤ {FLATNESS_BUDGET} | {} | {} |",
        if ratio.is_finite() {
            format!(
                "{ratio:.2} ({:+.0} vs {:+.0} instructions/req)",
                counts.delta(large),
                counts.delta(small)
            )
        } else {
            "not counted (quick run)".to_string()
        },
        verdict(ratio, FLATNESS_BUDGET)
    );
    if let (Some(small_row), Some(large_row)) = (find(rows, small), find(rows, large)) {
        let ratio = if small_row.delta > 0.0 {
            large_row.delta / small_row.delta
        } else {
            f64::NAN
        };
        let _ = writeln!(
            out,
            "| host-allowlist flat, CPU time: Δ({large}) / Δ({small}) ≤ {FLATNESS_BUDGET} | {} ({} vs {} µs/req) | {} |",
            fmt(ratio, 2),
            signed(large_row.delta),
            signed(small_row.delta),
            verdict(ratio, FLATNESS_BUDGET)
        );
    }
    for module in Module::ALL {
        let (raw, gzip) = module_sizes(module)?;
        let limit = module_budget_bytes(module);
        let _ = writeln!(
            out,
            "| {}.wasm ≤ {} gzip | {} gzip ({} raw) | {} |",
            module.package(),
            kb(limit),
            kb(gzip),
            kb(raw),
            verdict(gzip as f64, limit as f64)
        );
    }
    Ok(())
}

/// One host call's cost: the probe repeating it, minus the do-nothing probe in the same round, over
/// the number of calls; median over rounds.
fn host_call_table(out: &mut String, rows: &[Row<'_>]) {
    let Some(passthrough) = find(rows, "wasm-passthrough") else {
        return;
    };
    let probes: Vec<&Row<'_>> = rows
        .iter()
        .filter(|r| r.measured.variant.group == Group::HostCalls)
        .collect();
    if probes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## What one host call costs\n");
    let _ = writeln!(
        out,
        "The probe filter (`benches/wasm-probe`) makes one kind of host call {PROBE_CALLS} times per request; \
         the cost of one call is its Δ minus the do-nothing probe's Δ in the same round, over {PROBE_CALLS}. \
         The do-nothing probe itself (the Wasm boundary: context, stream callbacks) costs {} µs/req.\n",
        signed(passthrough.delta)
    );
    let _ = writeln!(
        out,
        "A call that hands a value to the filter costs more than one that does not: Envoy calls back \
         into the VM to allocate the value's memory. One read of the whole header map costs little more \
         than one header, so the filters read headers that way where they need several. Filter state is \
         written to a new key each time, as a filter publishing its decision does; `clear_route_cache` \
         repeated costs only the call, while the route is chosen again once, when the router asks.\n"
    );
    let _ = writeln!(out, "| host call | µs per call |\n|---|---:|");
    for probe in probes {
        let per_call: Vec<f64> = probe
            .deltas
            .iter()
            .zip(&passthrough.deltas)
            .map(|(probe, floor)| (probe - floor) / f64::from(PROBE_CALLS))
            .collect();
        let call = probe
            .measured
            .variant
            .probe_call
            .as_deref()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} |",
            call_description(call),
            fmt(median(per_call), 2)
        );
    }
}

fn call_description(call: &str) -> String {
    let what = match call {
        "request_header" => "one request header by name (`:authority`)",
        "request_headers" => "every request header in one call",
        "property" => "an attribute during the request (`connection.requested_server_name`)",
        "log_property" => "an attribute in `on_log` (`xds.route_name`)",
        "set_filter_state" => "filter state written (`proxy_set_property`)",
        "increment_counter" => "a counter incremented",
        "set_request_header" => "a request header written",
        "clear_route_cache" => "`clear_route_cache` (Envoy chooses the route again)",
        other => other,
    };
    format!("`{call}`: {what}")
}

/// The main table, for the terminal.
pub fn summary(measured: &[Measured]) -> String {
    let rows = rows(measured);
    let mut out = String::from("\nvariant            req/s   CPU µs/req   Δ plain\n");
    for row in &rows {
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>10} {:>9}",
            row.measured.variant.name,
            fmt(row.rps, 0),
            fmt(row.cpu, 2),
            signed(row.delta)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_section_is_kept_up_to_the_next_heading() {
        let previous = format!(
            "# Benchmarks\n\n## Budget\n\n| a |\n\n{FINDINGS_HEADING}\n\nWhy.\n\n### Detail\n\nMore.\n\n## Raw samples\n\n| x |\n"
        );
        assert_eq!(
            findings(&previous).as_deref(),
            Some(format!("{FINDINGS_HEADING}\n\nWhy.\n\n### Detail\n\nMore.").as_str())
        );
        let last = format!("# Benchmarks\n\n{FINDINGS_HEADING}\n\nWhy.\n");
        assert_eq!(
            findings(&last).as_deref(),
            Some(format!("{FINDINGS_HEADING}\n\nWhy.").as_str())
        );
        assert_eq!(findings("# Benchmarks\n"), None);
    }
}
