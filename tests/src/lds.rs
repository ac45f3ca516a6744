//! Listeners served from a file that Envoy watches (LDS over the file system, `path_config_source`
//! with `watched_directory`), so a test can push a new listener configuration the way a control
//! plane does and watch Envoy accept or reject it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::envoy::{Envoy, EnvoyOptions};
use crate::paths;
use crate::template::{self, Vars};
use crate::wasm_filter::{http_filters_yaml, WasmFilter};
use crate::Result;

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The LDS file in its watched directory inside an Envoy work directory.
#[derive(Debug, Clone)]
pub struct ListenerFile {
    dir: PathBuf,
    version: u64,
    /// 0 until Envoy has bound the listener; then its port, kept across updates.
    port: u16,
}

impl ListenerFile {
    /// The watched directory `lds/` under `work_dir`, created empty.
    pub fn new(work_dir: &Path) -> Result<Self> {
        let dir = work_dir.join("lds");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self {
            dir,
            version: 0,
            port: 0,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("listeners.yaml")
    }

    /// Bootstrap placeholders for `tests/envoy/lds-bootstrap.yaml`.
    pub fn bootstrap_vars(&self) -> Vars {
        Vars::new()
            .set("LDS_PATH", self.path().display())
            .set("LDS_DIR", self.dir.display())
    }

    /// The listener port to keep from now on (an update that changed it would be a new socket).
    pub fn keep_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Writes the gateway listener with `filters` (from `tests/envoy/lds-listener.yaml`) the way a
    /// control plane's file would change: into a temporary file in the watched directory, then
    /// renamed over the watched path, so Envoy never reads half a file.
    pub fn write(&mut self, filters: &[WasmFilter]) -> Result<()> {
        self.version += 1;
        let vars = Vars::new()
            .set("VERSION", self.version)
            .set("LISTENER_PORT", self.port)
            .set("HTTP_FILTERS", http_filters_yaml(filters));
        let yaml =
            template::render_file(&paths::test_configs_dir().join("lds-listener.yaml"), &vars)?;
        let temporary = self.dir.join(format!(".listeners.yaml.{}", self.version));
        std::fs::write(&temporary, yaml)
            .map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
        std::fs::rename(&temporary, self.path())
            .map_err(|e| format!("cannot rename into {}: {e}", self.path().display()))
    }
}

/// Starts Envoy on `tests/envoy/lds-bootstrap.yaml` with the listener file holding `filters`.
pub fn start(
    name: &str,
    filters: &[WasmFilter],
    upstream_port: u16,
) -> Result<(Envoy, ListenerFile)> {
    let work_dir = Envoy::work_dir(name)?;
    let mut listeners = ListenerFile::new(work_dir.path())?;
    listeners.write(filters)?;
    let vars = listeners
        .bootstrap_vars()
        .set("UPSTREAM_PORT", upstream_port);
    let bootstrap =
        template::render_file(&paths::test_configs_dir().join("lds-bootstrap.yaml"), &vars)?;
    let envoy = Envoy::start_in(EnvoyOptions::new(name, bootstrap), work_dir)?;
    let port = wait_for_listener(&envoy, Duration::from_secs(30))?;
    listeners.keep_port(port);
    Ok((envoy, listeners))
}

/// Waits (bounded) for the `gateway` listener to be bound; its port.
fn wait_for_listener(envoy: &Envoy, timeout: Duration) -> Result<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(addr) = envoy.listener_addr("gateway") {
            if addr.port() != 0 {
                return Ok(addr.port());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no gateway listener after {timeout:?}:\n{}",
                crate::envoy::tail(&envoy.log(), 30)
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Waits (bounded) until the counter `stat` reaches `at_least`; how long that took.
pub fn wait_for_stat(
    envoy: &Envoy,
    stat: &str,
    at_least: u64,
    timeout: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let value = envoy.stat(stat)?.unwrap_or(0);
        if value >= at_least {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{stat} is {value}, not {at_least}, after {timeout:?}:\n{}",
                crate::envoy::tail(&envoy.log(), 30)
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
