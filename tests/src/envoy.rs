//! A real Envoy as a child process: bootstrap rendered into a temporary directory, admin and
//! listeners on 127.0.0.1 (port 0 unless the template fixes one), readiness from admin `/ready`,
//! log and stats for assertions, and the process killed on drop.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::client::{self, HttpRequest, Protocol};
use crate::paths;
use crate::Result;

/// The default [`EnvoyOptions::start_timeout`].
const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Options for starting Envoy from a rendered bootstrap.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// Used in messages and as the name of its working directory.
    pub name: String,
    /// The bootstrap YAML.
    pub bootstrap: String,
    pub concurrency: u32,
    /// Extra component log levels, such as `wasm:debug`.
    pub component_log_level: Option<String>,
    /// A command that runs Envoy, with its arguments (`valgrind --tool=callgrind …`); empty runs
    /// Envoy directly. The process, and so [`Envoy::pid`], is the wrapper's.
    pub wrapper: Vec<String>,
    /// How long Envoy may take to become ready before it is killed.
    pub start_timeout: Duration,
}

impl EnvoyOptions {
    pub fn new(name: &str, bootstrap: String) -> Self {
        Self {
            name: name.to_string(),
            bootstrap,
            concurrency: 1,
            component_log_level: None,
            wrapper: Vec::new(),
            start_timeout: START_TIMEOUT,
        }
    }
}

/// A running Envoy. Dropping it kills the process.
pub struct Envoy {
    name: String,
    child: Child,
    admin: SocketAddr,
    log_path: PathBuf,
    work_dir: TempDir,
}

/// An Envoy that exited during start-up, with what it logged.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub log: String,
}

impl Envoy {
    /// A fresh temporary directory for files a bootstrap refers to (certificates, access logs);
    /// pass it to [`Envoy::start_in`] so it lives as long as the process.
    pub fn work_dir(name: &str) -> Result<TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("envoy-{name}-"))
            .tempdir()
            .map_err(|e| format!("cannot create a work directory: {e}"))
    }

    /// Starts Envoy and waits until admin `/ready` answers 200.
    pub fn start(options: EnvoyOptions) -> Result<Envoy> {
        let work_dir = Self::work_dir(&options.name)?;
        Self::start_in(options, work_dir)
    }

    /// Like [`Envoy::start`], in a work directory the caller made.
    pub fn start_in(options: EnvoyOptions, work_dir: TempDir) -> Result<Envoy> {
        let mut child = spawn(&options, work_dir.path())?;
        let log_path = work_dir.path().join("envoy.log");
        match wait_for_start(&mut child, work_dir.path(), options.start_timeout) {
            StartOutcome::Ready(admin) => Ok(Envoy {
                name: options.name,
                child,
                admin,
                log_path,
                work_dir,
            }),
            StartOutcome::Exited(status) => Err(format!(
                "envoy {} exited during start-up ({status}):\n{}",
                options.name,
                tail(&read_log(&log_path), 60)
            )),
            StartOutcome::TimedOut => Err(format!(
                "envoy {} was not ready after {:?}:\n{}",
                options.name,
                options.start_timeout,
                tail(&read_log(&log_path), 60)
            )),
        }
    }

    /// Starts Envoy expecting it to refuse its configuration and exit; returns its whole log.
    /// `Err` if it became ready instead.
    pub fn start_expecting_failure(options: EnvoyOptions) -> Result<StartFailure> {
        let work_dir = Self::work_dir(&options.name)?;
        let mut child = spawn(&options, work_dir.path())?;
        let log_path = work_dir.path().join("envoy.log");
        match wait_for_start(&mut child, work_dir.path(), options.start_timeout) {
            StartOutcome::Exited(status) => Ok(StartFailure {
                status,
                log: read_log(&log_path),
            }),
            StartOutcome::Ready(_) | StartOutcome::TimedOut => Err(format!(
                "envoy {} did not refuse its configuration:\n{}",
                options.name,
                tail(&read_log(&log_path), 40)
            )),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn work_path(&self) -> &Path {
        self.work_dir.path()
    }

    /// Everything Envoy logged so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// The end of Envoy's log under a header naming this Envoy, for assertion messages.
    pub fn log_tail(&self) -> String {
        format!(
            "--- envoy {} log ---\n{}",
            self.name(),
            tail(&self.log(), 40)
        )
    }

    /// Waits (bounded) until the log contains `needle`; returns the log either way.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return Ok(log);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{needle:?} not in envoy {}'s log after {timeout:?}:\n{}",
                    self.name,
                    tail(&log, 40)
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The address a listener is bound to, by listener name (from admin `/listeners`).
    pub fn listener_addr(&self, listener: &str) -> Result<SocketAddr> {
        let json = self.admin_json("/listeners?format=json")?;
        let statuses = json["listener_statuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for status in statuses {
            if status["name"] == listener {
                let socket = &status["local_address"]["socket_address"];
                let address = socket["address"].as_str().unwrap_or("127.0.0.1");
                let port = socket["port_value"].as_u64().unwrap_or(0);
                return format!("{address}:{port}")
                    .parse()
                    .map_err(|e| format!("listener {listener}: {e}"));
            }
        }
        Err(format!(
            "envoy {} has no listener named {listener}",
            self.name
        ))
    }

    /// GET an admin path and parse the answer as JSON.
    pub fn admin_json(&self, path: &str) -> Result<serde_json::Value> {
        let response = self.admin_get(path)?;
        serde_json::from_slice(&response).map_err(|e| format!("admin {path}: not JSON: {e}"))
    }

    /// GET an admin path; the body.
    pub fn admin_get(&self, path: &str) -> Result<Vec<u8>> {
        let response = client::send(
            self.admin,
            Protocol::Http1,
            None,
            &HttpRequest::get("127.0.0.1", path),
        )?;
        if response.status != 200 {
            return Err(format!("admin {path} answered {}", response.status));
        }
        Ok(response.body)
    }

    /// A stat's value from `/stats?format=json`: counters and gauges by full name. A filter's
    /// metric named without its tags (`wasmcustom.host_allowlist.denied`) is the sum over every
    /// tagged stat of that metric (`wasmcustom.reason=.=<reason>;.;host_allowlist.denied` for each
    /// reason), as Prometheus's `sum(host_allowlist_denied)` after Envoy's tag extraction.
    pub fn stat(&self, name: &str) -> Result<Option<u64>> {
        let json = self.admin_json(&format!(
            "/stats?format=json&filter={}$",
            regex_escape(untagged(name).trim_start_matches("wasmcustom."))
        ))?;
        let stats = json["stats"].as_array().cloned().unwrap_or_default();
        let values: Vec<u64> = stats
            .iter()
            .filter(|stat| {
                let stat_name = stat["name"].as_str().unwrap_or_default();
                stat_name == name || (untagged(name) == name && untagged(stat_name) == name)
            })
            .filter_map(|stat| stat["value"].as_u64())
            .collect();
        Ok((!values.is_empty()).then(|| values.iter().sum()))
    }

    /// Waits (bounded) until the stat `name` (0 while Envoy has not defined it) satisfies `done`;
    /// `Err` with its last value and Envoy's log when the time runs out.
    pub fn wait_for_stat(
        &self,
        name: &str,
        timeout: Duration,
        done: impl Fn(u64) -> bool,
    ) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.stat(name)?.unwrap_or(0);
            if done(value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "stat {name} is still {value} after {timeout:?}:\n{}",
                    tail(&self.log(), 40)
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Kills Envoy now and waits for it; dropping does the same.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `envoy --mode validate` on a bootstrap: Envoy loads everything (Wasm plugins included,
/// which run `on_configure`) without serving. `Ok` with the log when Envoy says the configuration
/// is OK.
pub fn validate(bootstrap: &str) -> Result<String> {
    let dir = Envoy::work_dir("validate")?;
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, bootstrap)
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let output = Command::new(paths::envoy_bin())
        .arg("--mode")
        .arg("validate")
        .arg("--config-path")
        .arg(&config)
        .arg("--disable-hot-restart")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", paths::envoy_bin().display()))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && log.contains("' OK") {
        Ok(log)
    } else {
        Err(format!(
            "envoy refused the configuration ({}):\n{}",
            output.status,
            tail(&log, 30)
        ))
    }
}

fn spawn(options: &EnvoyOptions, dir: &Path) -> Result<Child> {
    let bin = paths::envoy_bin();
    if !bin.is_file() {
        return Err(format!(
            "no Envoy binary at {}: run `cargo xtask setup` (or set ENVOY_BIN)",
            bin.display()
        ));
    }
    let config = dir.join("envoy.yaml");
    std::fs::write(&config, &options.bootstrap)
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let log = File::create(dir.join("envoy.log")).map_err(|e| e.to_string())?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = match options.wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&bin);
            command
        }
        None => Command::new(&bin),
    };
    command
        .arg("--config-path")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(dir.join("admin.address"))
        .arg("--concurrency")
        .arg(options.concurrency.to_string())
        .arg("--disable-hot-restart")
        // Access-log files are read while Envoy runs; its default flushes them every 10 s.
        .args(["--file-flush-interval-msec", "100"])
        .args(["--log-level", "info"])
        .args(["--log-format", "[%Y-%m-%d %T.%e][%l][%n] %v"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if let Some(levels) = &options.component_log_level {
        command.arg("--component-log-level").arg(levels);
    }
    // Envoy must not outlive the test process even when it is killed without unwinding: the
    // kernel sends SIGKILL to the child when the thread that spawned it exits.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

enum StartOutcome {
    Ready(SocketAddr),
    Exited(ExitStatus),
    TimedOut,
}

/// Polls until Envoy answers `/ready`, exits, or `timeout` passes (then it is killed).
fn wait_for_start(child: &mut Child, dir: &Path, timeout: Duration) -> StartOutcome {
    let admin_path = dir.join("admin.address");
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return StartOutcome::Exited(status),
            Ok(None) => {}
            Err(_) => break,
        }
        if let Some(admin) = read_admin_address(&admin_path) {
            if is_ready(admin) {
                return StartOutcome::Ready(admin);
            }
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let _ = child.kill();
    let _ = child.wait();
    StartOutcome::TimedOut
}

fn read_admin_address(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_ready(admin: SocketAddr) -> bool {
    matches!(
        client::send(admin, Protocol::Http1, None, &HttpRequest::get("127.0.0.1", "/ready")),
        Ok(response) if response.status == 200
    )
}

fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A stat name without its tags in Istio's encoding (`wasmcustom.<tag>=.=<value>;.;<name>`, the
/// encoding the filters use): what Envoy's tag extraction leaves of it.
fn untagged(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("wasmcustom.") else {
        return name.to_string();
    };
    while let Some((tag, after)) = rest.split_once(";.;") {
        if !tag.contains("=.=") {
            break;
        }
        rest = after;
    }
    format!("wasmcustom.{rest}")
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = "\\.^$|?*+()[]{}".contains(c);
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}
