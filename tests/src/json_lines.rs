//! Access-log output as JSON: newline-delimited records from a file Envoy's native logger writes,
//! from an NDJSON body, or from the records the access-log filter writes into Envoy's log. Every
//! line must be one JSON object; anything else is an error, so a test that parses records also
//! proves they are pure JSON.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Result;

const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Every non-empty line of `text` as a JSON object.
pub fn parse(text: &str) -> Result<Vec<Value>> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(parse_object)
        .collect()
}

/// The records in Envoy's log that follow `prefix` (the access-log filter's `envoy_log` sink),
/// each parsed as one JSON object; Envoy's own lines are skipped.
pub fn after_prefix(log: &str, prefix: &str) -> Result<Vec<Value>> {
    log.lines()
        .filter_map(|line| line.find(prefix).map(|at| &line[at + prefix.len()..]))
        .map(parse_object)
        .collect()
}

/// Waits (bounded) until the file at `path` holds at least `count` complete lines, then parses
/// them all; `Err` with what is there when the time runs out or a line is not a JSON object.
pub fn wait_for_file(path: &Path, count: usize, timeout: Duration) -> Result<Vec<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // A line is complete once its newline is written.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let records = parse(complete)?;
        if records.len() >= count {
            return Ok(records);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} holds {} record(s), not {count}, after {timeout:?}:\n{text}",
                path.display(),
                records.len()
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn parse_object(line: &str) -> Result<Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(format!("not a JSON object: {other}")),
        Err(error) => Err(format!("not JSON ({error}): {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_must_be_json_objects() {
        let records = parse("{\"a\":1}\n\n{\"b\":\"x\"}\n").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["b"], "x");
        assert!(parse("{\"a\":1}\n-\n").is_err());
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn records_follow_their_prefix() {
        let log = "[info][wasm] other line\n[info][wasm] wasm log x: P: {\"n\":1}\n";
        let records = after_prefix(log, "P: ").unwrap();
        assert_eq!(records, vec![serde_json::json!({"n": 1})]);
        assert!(after_prefix("P: not json", "P: ").is_err());
    }
}
