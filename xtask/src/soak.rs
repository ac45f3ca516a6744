//! `cargo xtask soak [--requests N]` and `cargo xtask load [--seconds S]`: the egress gateway with
//! every module, the opt-in Wasm access log included (gateways/wasm-access-log/egress-gateway.yaml:
//! host-allowlist, subset-tagger and access-log in real Envoy, one worker; the shipped gateway is
//! the same without access-log), under a mix of allowed-and-tagged and denied requests over HTTP/1.1 and HTTP/2.
//!
//! soak: N requests; afterwards the unexpected answers (must be zero), Envoy's RSS and the Wasm VMs'
//! resident linear memory after warm-up and at the end, and the access-log accounting (every request
//! logged once). load: S seconds with enough connections to saturate Envoy's one worker; how
//! busy the worker was (on CPU or waiting for one), the request rate and the unexpected answers
//! (must be zero).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::gateways::{egress_gateway_vars, EgressUpstreamPorts};
use e2e::paths;
use e2e::template;
use e2e::upstream::{Reply, Responder, Upstream};

use crate::system_packages::Purpose;
use crate::traffic::{self, Shape, Tally, Until};
use crate::{cmd, setup};

const DEFAULT_REQUESTS: u64 = 1_000_000;
const DEFAULT_SECONDS: u64 = 60;
/// Requests before the memory baseline: VMs, connection pools and buffers have reached their size.
const WARM_UP_REQUESTS: u64 = 20_000;
const SOAK_SHAPE: Shape = Shape {
    http1_connections: 4,
    http2_connections: 2,
    streams_per_http2_connection: 4,
};
/// Enough requests in flight to keep Envoy's one worker busy all the time.
const LOAD_SHAPE: Shape = Shape {
    http1_connections: 16,
    http2_connections: 4,
    streams_per_http2_connection: 8,
};
const LOG_SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn soak(args: &[String]) -> Result<(), String> {
    let requests = match args {
        [] => DEFAULT_REQUESTS,
        [flag, n] if flag == "--requests" => n
            .parse()
            .map_err(|_| format!("--requests {n}: not a number"))?,
        _ => {
            return Err(format!(
                "unexpected arguments {args:?}: usage: cargo xtask soak [--requests N]"
            ))
        }
    };
    if requests <= WARM_UP_REQUESTS {
        return Err(format!(
            "--requests must be more than the {WARM_UP_REQUESTS} warm-up requests"
        ));
    }
    let gateway = SoakGateway::start()?;
    let addr = gateway.envoy.listener_addr("egress_http")?;
    let tally = Arc::new(Tally::default());

    println!("soak: warm-up, {WARM_UP_REQUESTS} requests");
    traffic::drive(
        addr,
        SOAK_SHAPE,
        Until::Requests(WARM_UP_REQUESTS),
        1,
        Arc::clone(&tally),
    )?;
    let baseline = Memory::read(&gateway.envoy)?;
    println!("soak: after warm-up: {baseline}");

    let mut samples = Vec::new();
    let rest = requests - WARM_UP_REQUESTS;
    let step = rest.div_ceil(10);
    let started = Instant::now();
    let mut done = 0;
    while done < rest {
        let chunk = step.min(rest - done);
        traffic::drive(
            addr,
            SOAK_SHAPE,
            Until::Requests(chunk),
            1,
            Arc::clone(&tally),
        )?;
        done += chunk;
        let memory = Memory::read(&gateway.envoy)?;
        println!(
            "soak: {} requests, {:.0} req/s, {} unexpected; {memory}",
            WARM_UP_REQUESTS + done,
            done as f64 / started.elapsed().as_secs_f64(),
            tally.unexpected.load(Ordering::Relaxed)
        );
        samples.push(memory);
    }
    let elapsed = started.elapsed();
    let sent = tally.sent();
    let logs = gateway.settle_logs(sent)?;
    let last = samples.last().cloned().unwrap_or_else(|| baseline.clone());
    let peak_rss = samples
        .iter()
        .map(|m| m.rss_kib)
        .max()
        .unwrap_or(baseline.rss_kib);
    let peak_wasm = samples
        .iter()
        .map(|m| m.wasm_kib)
        .max()
        .unwrap_or(baseline.wasm_kib);
    let peak_wasm_resident = samples
        .iter()
        .map(|m| m.wasm_resident_kib)
        .max()
        .unwrap_or(baseline.wasm_resident_kib);

    println!("\nsoak report");
    println!("  requests            {sent} ({} HTTP/1.1, {} HTTP/2), {:.0} req/s after warm-up over {:.0} s",
        tally.http1.load(Ordering::Relaxed), tally.http2.load(Ordering::Relaxed),
        rest as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64());
    println!("  statuses            {:?}", status_counts(&tally));
    println!(
        "  unexpected answers  {}",
        tally.unexpected.load(Ordering::Relaxed)
    );
    println!(
        "  Envoy RSS           {} KiB after warm-up, {} KiB at the end ({:+} KiB), peak {} KiB",
        baseline.rss_kib,
        last.rss_kib,
        last.rss_kib as i64 - baseline.rss_kib as i64,
        peak_rss
    );
    println!("  Wasm VM memory      {} KiB after warm-up, {} KiB at the end ({:+} KiB), peak {} KiB (linear memory size, {} VMs)",
        baseline.wasm_kib, last.wasm_kib, last.wasm_kib as i64 - baseline.wasm_kib as i64, peak_wasm, last.wasm_memories);
    println!(
        "  Wasm VM resident    {} KiB after warm-up, {} KiB at the end ({:+} KiB), peak {} KiB",
        baseline.wasm_resident_kib,
        last.wasm_resident_kib,
        last.wasm_resident_kib as i64 - baseline.wasm_resident_kib as i64,
        peak_wasm_resident
    );
    println!("  {logs}");
    report_examples(&tally);
    let mut problems = Vec::new();
    if tally.unexpected.load(Ordering::Relaxed) > 0 {
        problems.push(format!(
            "{} unexpected answers",
            tally.unexpected.load(Ordering::Relaxed)
        ));
    }
    if !logs.every_request_logged_once() {
        problems.push("not every request was logged exactly once".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

pub fn load(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => DEFAULT_SECONDS,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds {n}: not a number"))?,
        _ => {
            return Err(format!(
                "unexpected arguments {args:?}: usage: cargo xtask load [--seconds S]"
            ))
        }
    };
    let gateway = SoakGateway::start()?;
    let addr = gateway.envoy.listener_addr("egress_http")?;
    traffic::drive(
        addr,
        SOAK_SHAPE,
        Until::Requests(WARM_UP_REQUESTS / 4),
        1,
        Arc::new(Tally::default()),
    )?;
    let tally = Arc::new(Tally::default());
    let worker_before = worker_schedstat(gateway.envoy.pid())?;
    let duration = Duration::from_secs(seconds);
    println!(
        "load: {seconds} s, {} HTTP/1.1 connections and {} HTTP/2 connections × {} streams",
        LOAD_SHAPE.http1_connections,
        LOAD_SHAPE.http2_connections,
        LOAD_SHAPE.streams_per_http2_connection
    );
    let elapsed = traffic::drive(
        addr,
        LOAD_SHAPE,
        Until::Elapsed(duration),
        1,
        Arc::clone(&tally),
    )?;
    let worker_after = worker_schedstat(gateway.envoy.pid())?;
    let wall = elapsed.as_secs_f64() * 1e9;
    let running = worker_after.0.saturating_sub(worker_before.0) as f64 / wall;
    let waiting = worker_after.1.saturating_sub(worker_before.1) as f64 / wall;
    let sent = tally.sent();
    let logs = gateway.settle_logs(sent + WARM_UP_REQUESTS / 4)?;
    println!("\nload report");
    println!("  duration            {:.1} s", elapsed.as_secs_f64());
    println!(
        "  requests            {sent} ({} HTTP/1.1, {} HTTP/2), {:.0} req/s",
        tally.http1.load(Ordering::Relaxed),
        tally.http2.load(Ordering::Relaxed),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!("  Envoy worker        on CPU {:.0}% of the time, runnable but waiting for a CPU {:.0}%: busy {:.0}%",
        running * 100.0, waiting * 100.0, (running + waiting) * 100.0);
    println!("  statuses            {:?}", status_counts(&tally));
    println!(
        "  unexpected answers  {}",
        tally.unexpected.load(Ordering::Relaxed)
    );
    println!("  {logs}");
    report_examples(&tally);
    if tally.unexpected.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "{} unexpected answers",
            tally.unexpected.load(Ordering::Relaxed)
        ));
    }
    if !logs.every_request_logged_once() {
        return Err("not every request was logged exactly once".to_string());
    }
    Ok(())
}

fn status_counts(tally: &Tally) -> BTreeMap<u16, u64> {
    tally
        .by_status
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default()
}

fn report_examples(tally: &Tally) {
    if let Ok(examples) = tally.examples.lock() {
        for example in examples.iter() {
            println!("  unexpected: {example}");
        }
    }
}

/// The demo's egress gateway with stand-ins that keep no request (millions would not fit), and a
/// collector that counts the NDJSON lines it receives.
struct SoakGateway {
    envoy: Envoy,
    collected: Arc<AtomicU64>,
    _upstreams: Vec<Upstream>,
}

impl SoakGateway {
    fn start() -> Result<Self, String> {
        setup::for_gateways(Purpose::Demo)?;
        cmd::build_modules()?;
        let google = Upstream::start_unrecorded("google", answer("google"))?;
        let internet = Upstream::start_unrecorded("internet", answer("internet"))?;
        let collected = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&collected);
        let counting: Responder = Arc::new(move |request| {
            let lines = request
                .body
                .split(|b| *b == b'\n')
                .filter(|line| !line.is_empty())
                .count();
            counter.fetch_add(lines as u64, Ordering::Relaxed);
            Reply::new(200, "")
        });
        let collector = Upstream::start_unrecorded("log-collector", counting)?;
        let dir = Envoy::work_dir("soak")?;
        let vars = egress_gateway_vars(
            0,
            0,
            0,
            &dir.path().join("access.log"),
            // No TLS in the mix.
            EgressUpstreamPorts::http_only(google.port(), internet.port(), collector.port()),
        );
        let bootstrap = template::render_file(
            &paths::gateway_configs_dir().join("wasm-access-log/egress-gateway.yaml"),
            &vars,
        )?;
        let envoy = Envoy::start_in(EnvoyOptions::new("soak-egress", bootstrap), dir)?;
        println!(
            "soak: egress gateway (gateways/wasm-access-log/egress-gateway.yaml) up, pid {}, one worker",
            envoy.pid()
        );
        Ok(Self {
            envoy,
            collected,
            _upstreams: vec![google, internet, collector],
        })
    }

    /// Waits (bounded) until the access log has accounted for `requests` records, then reads the
    /// accounting.
    fn settle_logs(&self, requests: u64) -> Result<LogAccounting, String> {
        let deadline = Instant::now() + LOG_SETTLE_TIMEOUT;
        loop {
            let accounting = LogAccounting::read(self, requests)?;
            if accounting.settled() || Instant::now() > deadline {
                return Ok(accounting);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn answer(name: &str) -> Responder {
    let body = format!("upstream {name}\n");
    Arc::new(move |_| Reply::new(200, body.clone()))
}

/// Where every request's record went.
#[derive(Debug)]
struct LogAccounting {
    requests: u64,
    /// `wasmcustom.access_log.records`: records built.
    records: u64,
    /// JSON lines Envoy's native access logger wrote from the filter state.
    file_records: u64,
    sent: u64,
    dropped: u64,
    failed_batches: u64,
    /// NDJSON lines the collector received.
    collected: u64,
}

impl LogAccounting {
    fn read(gateway: &SoakGateway, requests: u64) -> Result<Self, String> {
        let stat = |name: &str| gateway.envoy.stat(name).map(|v| v.unwrap_or(0));
        Ok(Self {
            requests,
            records: stat("wasmcustom.access_log.records")?,
            file_records: json_lines(&gateway.envoy.work_path().join("access.log"))?,
            sent: stat("wasmcustom.access_log.sent")?,
            dropped: stat("wasmcustom.access_log.dropped")?,
            failed_batches: stat("wasmcustom.access_log.failed_batches")?,
            collected: gateway.collected.load(Ordering::Relaxed),
        })
    }

    fn settled(&self) -> bool {
        self.records >= self.requests
            && self.file_records >= self.requests
            && self.collected >= self.sent
            && self.sent + self.dropped + self.failed_batches > 0
            && self.in_flight() == 0
    }

    /// Records neither sent nor dropped nor failed yet (failed batches hold up to batch_size each,
    /// so this is exact only when none failed).
    fn in_flight(&self) -> u64 {
        self.records.saturating_sub(self.sent + self.dropped)
    }

    fn every_request_logged_once(&self) -> bool {
        self.records == self.requests
            && self.file_records == self.requests
            && self.collected == self.sent
            && self.failed_batches == 0
            && self.sent + self.dropped == self.records
    }
}

impl std::fmt::Display for LogAccounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "access log          {} requests: {} records built, {} written by the native logger; \
             collector: {} sent ({} received), {} dropped (buffer full), {} failed batches",
            self.requests,
            self.records,
            self.file_records,
            self.sent,
            self.collected,
            self.dropped,
            self.failed_batches
        )
    }
}

fn json_lines(path: &Path) -> Result<u64, String> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(_) => return Ok(0),
    };
    let mut count = 0;
    for line in std::io::BufReader::with_capacity(1 << 20, file).split(b'\n') {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.first() == Some(&b'{') {
            count += 1;
        }
    }
    Ok(count)
}

/// Envoy's memory: its resident set, and the Wasm VMs' linear memories. V8 reserves each linear
/// memory as one region of about 8 GiB: the memory's current size is the accessible (`rw-p`)
/// mapping right below the inaccessible (`---p`) rest of the reservation. A linear memory never
/// shrinks, so growth of its size is what a leak in a module would show.
#[derive(Debug, Clone)]
struct Memory {
    rss_kib: u64,
    /// Sum of the linear memories' sizes (Wasm `memory.size`).
    wasm_kib: u64,
    /// Their resident part.
    wasm_resident_kib: u64,
    wasm_memories: usize,
}

const WASM_RESERVATION_KIB: u64 = 8 * 1024 * 1024 - 64 * 1024;

struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    size_kib: u64,
    rss_kib: u64,
}

fn mappings(smaps: &str) -> Vec<Mapping> {
    let kib = |value: &str| {
        value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            {
                mappings.push(Mapping {
                    start,
                    end,
                    perms: words.next().unwrap_or("").to_string(),
                    size_kib: 0,
                    rss_kib: 0,
                });
                continue;
            }
        }
        if let Some(mapping) = mappings.last_mut() {
            if let Some(size) = line.strip_prefix("Size:") {
                mapping.size_kib = kib(size);
            } else if let Some(rss) = line.strip_prefix("Rss:") {
                mapping.rss_kib = kib(rss);
            }
        }
    }
    mappings
}

impl Memory {
    fn read(envoy: &Envoy) -> Result<Self, String> {
        let pid = envoy.pid();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
        let rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmRSS in /proc/PID/status")?;
        let smaps =
            std::fs::read_to_string(format!("/proc/{pid}/smaps")).map_err(|e| e.to_string())?;
        let mappings = mappings(&smaps);
        let mut memory = Self {
            rss_kib,
            wasm_kib: 0,
            wasm_resident_kib: 0,
            wasm_memories: 0,
        };
        for pair in mappings.windows(2) {
            let (accessible, reserved) = (&pair[0], &pair[1]);
            if reserved.perms.starts_with("---p")
                && reserved.size_kib >= WASM_RESERVATION_KIB
                && accessible.end == reserved.start
                && accessible.perms.starts_with("rw-p")
            {
                memory.wasm_memories += 1;
                memory.wasm_kib += accessible.size_kib;
                memory.wasm_resident_kib += accessible.rss_kib;
            }
        }
        if memory.wasm_memories == 0 {
            return Err(format!("no Wasm linear memory found in /proc/{pid}/smaps"));
        }
        Ok(memory)
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Envoy RSS {} KiB; Wasm linear memories {} KiB ({} KiB resident) in {} VMs",
            self.rss_kib, self.wasm_kib, self.wasm_resident_kib, self.wasm_memories
        )
    }
}

/// Nanoseconds Envoy's worker thread (`wrk:worker_0`) ran on a CPU and waited runnable for one
/// (`/proc/PID/task/TID/schedstat`): together, the time it had work. Near 100% of the wall time
/// means the worker never idled, so it was saturated, even when a busy machine left it less CPU.
fn worker_schedstat(pid: u32) -> Result<(u64, u64), String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "wrk:worker_0" {
            let stat = std::fs::read_to_string(task.path().join("schedstat"))
                .map_err(|e| e.to_string())?;
            let fields: Vec<u64> = stat
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            return match fields.as_slice() {
                [running, waiting, ..] => Ok((*running, *waiting)),
                _ => Err(format!("unreadable schedstat {stat:?}")),
            };
        }
    }
    Err("Envoy has no wrk:worker_0 thread".to_string())
}
