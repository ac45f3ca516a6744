//! How much one allowlist match costs with 10, 10k and 100k configured entries, side by side in one
//! run. The issue requires that exact and wildcard lookups do not grow with the number of entries; the
//! regex set does grow with the number of regexes, so that is reported too.
//!
//! Plain `std::time` timing (no harness): `cargo bench -p gateway-core --bench allowlist_matching`.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use gateway_core::allowlist::{Allowlist, AllowlistConfig};
use gateway_core::host::{Authority, Host};

const ITERATIONS: u32 = 1_000_000;
const FIXED_REGEXES: usize = 10;

/// `size` entries, half exact names and half wildcards, plus `regexes` anchored patterns.
fn allowlist(size: usize, regexes: usize) -> Result<Allowlist, Box<dyn Error>> {
    let exact = (0..size / 2).map(|i| format!("host-{i}.svc-{}.example.com", i % 97));
    let wildcards = (0..size - size / 2).map(|i| format!("*.zone-{i}.example.net"));
    let config = AllowlistConfig {
        hosts: exact.chain(wildcards).collect(),
        host_regex: (0..regexes)
            .map(|i| format!("^bucket-[0-9]+\\.region-{i}\\.storage\\.example\\.org$"))
            .collect(),
        ..AllowlistConfig::default()
    };
    Ok(Allowlist::compile(config)?)
}

/// Nanoseconds per call of `f`, after a warm-up.
fn time(mut f: impl FnMut() -> bool) -> f64 {
    for _ in 0..ITERATIONS / 10 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        black_box(f());
    }
    nanos(start.elapsed()) / f64::from(ITERATIONS)
}

fn nanos(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e9
}

/// ns per match of an already parsed host, and ns per parse + match of the raw authority.
fn measure(
    allowlist: &Allowlist,
    authority: &str,
    expect: bool,
) -> Result<(f64, f64), Box<dyn Error>> {
    let parsed = Authority::parse(authority)?;
    let host: &Host = parsed.host();
    if allowlist.find(host, parsed.port()).is_some() != expect {
        return Err(format!("{authority}: expected matched = {expect}").into());
    }
    let matched = time(|| allowlist.find(black_box(host), parsed.port()).is_some());
    let parsed_and_matched = time(|| {
        Authority::parse(black_box(authority))
            .map(|authority| allowlist.find(authority.host(), authority.port()).is_some())
            .unwrap_or(false)
    });
    Ok((matched, parsed_and_matched))
}

fn main() -> Result<(), Box<dyn Error>> {
    println!("allowlist match cost, {ITERATIONS} iterations each, {FIXED_REGEXES} regexes besides the hosts");
    println!(
        "{:>8}  {:>10}  {:<14} {:>10} {:>14}",
        "entries", "compile", "lookup", "match ns", "parse+match ns"
    );
    let mut baseline: Vec<f64> = Vec::new();
    for size in [10, 10_000, 100_000] {
        let start = Instant::now();
        let allowlist = allowlist(size, FIXED_REGEXES)?;
        let compile = start.elapsed();
        let middle = size / 4;
        let cases = [
            (
                "exact",
                format!("host-{middle}.svc-{}.example.com:443", middle % 97),
                true,
            ),
            ("wildcard", format!("a.b.zone-{middle}.example.net"), true),
            (
                "regex-miss",
                "www.unlisted.example.org:443".to_string(),
                false,
            ),
        ];
        for (index, (lookup, authority, expect)) in cases.iter().enumerate() {
            let (matched, parsed) = measure(&allowlist, authority, *expect)?;
            let ratio = match baseline.get(index) {
                Some(first) => format!("  ({:.2}x the 10-entry cost)", matched / first),
                None => {
                    baseline.push(matched);
                    String::new()
                }
            };
            let compile = if index == 0 {
                format!("{:.1} ms", nanos(compile) / 1e6)
            } else {
                String::new()
            };
            println!(
                "{size:>8}  {compile:>10}  {lookup:<14} {matched:>10.1} {parsed:>14.1}{ratio}"
            );
        }
    }
    println!();
    println!("regex set growth (10 hosts), a name that no regex matches:");
    for regexes in [10, 100, 1000] {
        let allowlist = allowlist(10, regexes)?;
        let (matched, _) = measure(&allowlist, "www.unlisted.example.org", false)?;
        println!("{regexes:>8} regexes  {matched:>10.1} ns");
    }
    Ok(())
}
