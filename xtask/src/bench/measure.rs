//! One measurement: wrk against a running Envoy for a fixed time, with Envoy's CPU time (utime +
//! stime of every thread, from `/proc/<pid>/stat`) read just before and just after.

use std::process::Command;
use std::time::Duration;

use crate::cmd;

/// The core the load generator (wrk) and the backend Envoy run on; Envoy under test gets the other.
pub const LOAD_CPU: &str = "1";
pub const ENVOY_CPU: &str = "0";

/// Fixed load: one wrk thread, this many keep-alive connections.
pub const CONNECTIONS: u32 = 16;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Envoy's CPU time over the run, in microseconds.
    pub cpu_us: f64,
    pub rss_kib: u64,
}

impl Sample {
    pub fn cpu_per_request_us(&self) -> f64 {
        if self.requests == 0 {
            f64::NAN
        } else {
            self.cpu_us / self.requests as f64
        }
    }
}

pub fn wrk_command(url: &str, host: &str, duration: Duration) -> Command {
    let mut command = Command::new("taskset");
    command
        .args(["-c", LOAD_CPU, "wrk", "-t1"])
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .args(["--latency", "-H"])
        .arg(format!("Host: {host}"))
        .arg(url);
    command
}

/// Runs wrk for `duration` against `url` with Host `host`, measuring Envoy `pid`'s CPU time.
/// `Err` when wrk fails or any response was not 2xx/3xx: a broken variant posts no number.
pub fn run(pid: u32, url: &str, host: &str, duration: Duration) -> Result<Sample, String> {
    let mut command = wrk_command(url, host, duration);
    let before = cpu_time_us(pid)?;
    let output = command
        .output()
        .map_err(|error| format!("cannot run `{}`: {error}", cmd::show(&command)))?;
    let after = cpu_time_us(pid)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "`{}` failed ({}): {stdout}{}",
            cmd::show(&command),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut sample = parse_wrk(&stdout)?;
    sample.cpu_us = after - before;
    sample.rss_kib = rss_kib(pid)?;
    Ok(sample)
}

/// Reads requests, req/s and the 50th/99th latency percentiles from `wrk --latency`.
fn parse_wrk(stdout: &str) -> Result<Sample, String> {
    if let Some(line) = stdout
        .lines()
        .find(|line| line.contains("Non-2xx or 3xx responses"))
    {
        return Err(format!(
            "wrk saw failed responses ({}):\n{stdout}",
            line.trim()
        ));
    }
    let mut sample = Sample::default();
    for line in stdout.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => sample.p50_us = duration_us(value)?,
            ["99%", value] => sample.p99_us = duration_us(value)?,
            ["Requests/sec:", value] => {
                sample.requests_per_second = value
                    .parse()
                    .map_err(|_| format!("wrk: bad req/s {value:?}"))?;
            }
            [count, "requests", "in", ..] => {
                sample.requests = count
                    .parse()
                    .map_err(|_| format!("wrk: bad count {count:?}"))?;
            }
            _ => {}
        }
    }
    if sample.requests == 0 {
        return Err(format!("wrk completed no requests:\n{stdout}"));
    }
    Ok(sample)
}

/// wrk's durations: `635.00us`, `1.23ms`, `2.00s`.
fn duration_us(text: &str) -> Result<f64, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return Err(format!("wrk: unknown duration {text:?}"));
    };
    number
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| format!("wrk: bad duration {text:?}"))
}

/// utime + stime of the whole process (all threads), in microseconds.
pub fn cpu_time_us(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    // The command name may hold spaces and parentheses; the fields follow the last `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After `)`: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let ticks = |index: usize| -> Result<f64, String> {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .ok_or_else(|| format!("{path}: cannot read field {}", index + 3))
    };
    let per_second = clock_ticks_per_second();
    Ok((ticks(11)? + ticks(12)?) * 1_000_000.0 / per_second)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

/// Pins every thread of `pid` to `cpu` with taskset.
pub fn pin(pid: u32, cpu: &str) -> Result<(), String> {
    let mut command = Command::new("taskset");
    command.args(["-a", "-p", "-c", cpu, &pid.to_string()]);
    cmd::output(&mut command)
        .map(|_| ())
        .ok_or_else(|| format!("`{}` failed", cmd::show(&command)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_output() {
        let out = "Running 2s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   612.43us  100.00us   5.00ms   90.00%\n  Latency Distribution\n     50%  580.00us\n     75%  640.00us\n     90%  700.00us\n     99%    1.23ms\n  51234 requests in 2.00s, 6.00MB read\nRequests/sec:  25617.00\nTransfer/sec:      3.00MB\n";
        let sample = parse_wrk(out).unwrap();
        assert_eq!(sample.requests, 51234);
        assert_eq!(sample.requests_per_second, 25617.0);
        assert_eq!(sample.p50_us, 580.0);
        assert_eq!(sample.p99_us, 1230.0);
    }

    #[test]
    fn failed_responses_post_no_number() {
        let out = "  100 requests in 2.00s, 1MB read\n  Non-2xx or 3xx responses: 100\nRequests/sec: 50.00\n";
        assert!(parse_wrk(out).is_err());
    }

    #[test]
    fn own_cpu_time_and_rss_are_readable() {
        let pid = std::process::id();
        assert!(cpu_time_us(pid).unwrap() >= 0.0);
        assert!(rss_kib(pid).unwrap() > 0);
    }
}
