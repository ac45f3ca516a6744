//! The functional check a variant passes before it is measured, so a variant that is broken (lets
//! everything through, tags nothing, logs nothing) cannot post a good number.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::client::{self, HttpRequest, Protocol};

use super::variants::{Variant, ALLOWED_HOST, DENIED_HOST};

const LOG_WAIT: Duration = Duration::from_secs(5);

pub fn check(variant: &Variant, addr: SocketAddr, access_log: &Path) -> Result<(), String> {
    let name = &variant.name;
    let allowed = get(addr, ALLOWED_HOST)?;
    if allowed.status != 200 {
        return Err(format!(
            "{name}: {ALLOWED_HOST} answered {}, not 200",
            allowed.status
        ));
    }
    if let Some(tag) = &variant.expect.tag {
        let seen = allowed.header("x-seen-subset").unwrap_or("");
        if seen != tag {
            return Err(format!(
                "{name}: the upstream saw the tag {seen:?}, not {tag:?}"
            ));
        }
    }
    if variant.expect.denies {
        let denied = get(addr, DENIED_HOST)?;
        if denied.status != 403 {
            return Err(format!(
                "{name}: {DENIED_HOST} answered {}, not 403",
                denied.status
            ));
        }
    }
    if !variant.expect.log_contains.is_empty() {
        wait_for_record(name, access_log, &variant.expect.log_contains)?;
    }
    Ok(())
}

fn get(addr: SocketAddr, host: &str) -> Result<client::HttpResponse, String> {
    client::send(
        addr,
        Protocol::Http1,
        None,
        &HttpRequest::get(host, "/check"),
    )
}

/// Waits (bounded: Envoy flushes access-log files every 100 ms here) for a JSON line holding every
/// fragment.
fn wait_for_record(name: &str, path: &Path, fragments: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let found = log.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok()
                && fragments.iter().all(|fragment| line.contains(fragment))
        });
        if found {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name}: no JSON record with {fragments:?} in {} after {LOG_WAIT:?}; it holds:\n{log}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
