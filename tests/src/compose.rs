//! The docker-compose stack (docker-compose.yml) on this machine's Docker Engine, with the images
//! `cargo xtask images` builds. A [`ComposeStack`] is a guard: dropping it takes the project down
//! (containers, networks, volumes), also when a test fails or panics while it is up. Every
//! docker command runs with a time limit.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::paths;
use crate::Result;

/// The Envoy image `cargo xtask images` builds from the Envoy binary the tests run.
pub const LOCAL_ENVOY_IMAGE: &str = "gateway-wasm/envoy:1.40.0-local";
/// The stand-ins' image `cargo xtask images` builds.
pub const STANDIN_IMAGE: &str = "gateway-wasm/standin:local";

/// Every test stack's project is named `TEST_PROJECT_PREFIX-PID-…` ([`unique_project`]).
pub const TEST_PROJECT_PREFIX: &str = "gateway-wasm-test";

/// The service and port clients reach the stack through.
const INGRESS_SERVICE: &str = "ingress-gateway";
const INGRESS_CONTAINER_PORT: &str = "8080";
/// What each service prints once it serves.
const READY_LINES: [(&str, &str); 6] = [
    ("ingress-gateway", "starting main dispatch loop"),
    ("egress-gateway", "starting main dispatch loop"),
    ("sidecar", "starting main dispatch loop"),
    ("command-runner", "standin command-runner: listening"),
    ("google-standin", "standin google: listening"),
    ("internet-standin", "standin internet: listening"),
];

const COMMAND_LIMIT: Duration = Duration::from_secs(180);
const READY_LIMIT: Duration = Duration::from_secs(120);

/// The Docker Engine's version, or why no engine answers (on one line).
pub fn engine_version() -> Result<String> {
    let output = run_bounded(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        Duration::from_secs(30),
    )
    .map_err(|error| error.lines().collect::<Vec<_>>().join(" "))?;
    let version = output.trim();
    if version.is_empty() {
        return Err("`docker info` names no server version".to_string());
    }
    Ok(version.to_string())
}

/// A project name no other run uses: `prefix`, this process and the time.
pub fn unique_project(prefix: &str) -> String {
    project_of_process(prefix, std::process::id())
}

/// A project name for process `pid`: what [`remove_abandoned`] reads back.
pub fn project_of_process(prefix: &str, pid: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{pid}-{nanos}")
}

/// Takes down every project named by [`unique_project`] with `prefix` whose process is gone: the
/// stacks of runs killed before their guard could run (SIGKILL, or Ctrl-C on `cargo test`).
/// Returns the projects taken down.
pub fn remove_abandoned(prefix: &str) -> Result<Vec<String>> {
    let mut projects = std::collections::BTreeSet::new();
    for list in [["ps", "--all"], ["network", "ls"], ["volume", "ls"]] {
        let output = run_bounded(
            Command::new("docker").args(list).args([
                "--filter",
                "label=com.docker.compose.project",
                "--format",
                "{{.Label \"com.docker.compose.project\"}}",
            ]),
            Duration::from_secs(30),
        )?;
        projects.extend(output.lines().map(str::to_string));
    }
    let mut removed = Vec::new();
    for project in projects {
        let pid = project
            .strip_prefix(&format!("{prefix}-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let stack = ComposeStack {
            project: project.clone(),
            ingress_port: IngressPort::Any,
        };
        stack.down()?;
        removed.push(project);
    }
    Ok(removed)
}

/// Where the ingress gateway is published on the host.
#[derive(Debug, Clone, Copy)]
pub enum IngressPort {
    /// Any free port: for tests.
    Any,
    /// A fixed port, for a person with curl.
    Fixed(u16),
}

/// A running compose project; dropping it takes it down.
pub struct ComposeStack {
    project: String,
    ingress_port: IngressPort,
}

impl ComposeStack {
    /// Starts `services` (every service when empty) of docker-compose.yml as `project` with the
    /// local images, then waits until each started service serves.
    pub fn up(project: &str, ingress_port: IngressPort, services: &[&str]) -> Result<Self> {
        let stack = Self {
            project: project.to_string(),
            ingress_port,
        };
        // Created before `up` runs: a failed or half-done `up` is taken down by the drop too.
        stack.compose(|command| {
            command
                .args(["up", "--detach", "--no-build"])
                .args(services);
        })?;
        stack.wait_until_ready(services)?;
        Ok(stack)
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// The ingress gateway's published address on the host.
    pub fn ingress(&self) -> Result<SocketAddr> {
        let published = self.compose(|command| {
            command.args(["port", INGRESS_SERVICE, INGRESS_CONTAINER_PORT]);
        })?;
        published
            .trim()
            .parse()
            .map_err(|_| format!("`port {INGRESS_SERVICE}` printed {published:?}"))
    }

    /// What `service` printed (stdout and stderr), without prefixes.
    pub fn logs(&self, service: &str) -> Result<String> {
        self.compose(|command| {
            command.args(["logs", "--no-color", "--no-log-prefix", service]);
        })
    }

    fn wait_until_ready(&self, services: &[&str]) -> Result<()> {
        let deadline = Instant::now() + READY_LIMIT;
        let awaited: Vec<(&str, &str)> = READY_LINES
            .into_iter()
            .filter(|(service, _)| services.is_empty() || services.contains(service))
            .collect();
        loop {
            let mut waiting = Vec::new();
            for (service, line) in &awaited {
                if !self.logs(service)?.contains(line) {
                    waiting.push(*service);
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let mut report = format!(
                    "{}: not serving after {} s: {waiting:?}",
                    self.project,
                    READY_LIMIT.as_secs()
                );
                for service in waiting {
                    let logs = self.logs(service).unwrap_or_else(|error| error);
                    report.push_str(&format!(
                        "\n--- {service}:\n{}",
                        crate::envoy::tail(&logs, 15)
                    ));
                }
                return Err(report);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs one compose command on this project and returns its stdout.
    fn compose(&self, arguments: impl FnOnce(&mut Command)) -> Result<String> {
        let root = paths::workspace_root();
        let mut command = compose_command();
        command
            .arg("--file")
            .arg(root.join("docker-compose.yml"))
            .arg("--project-directory")
            .arg(&root)
            .args(["--project-name", &self.project])
            .env("ENVOY_IMAGE", LOCAL_ENVOY_IMAGE)
            .env("STANDIN_IMAGE", STANDIN_IMAGE)
            .env(
                "INGRESS_PORT",
                match self.ingress_port {
                    IngressPort::Any => String::new(),
                    IngressPort::Fixed(port) => port.to_string(),
                },
            );
        arguments(&mut command);
        run_bounded(&mut command, COMMAND_LIMIT)
    }

    /// Removes the project's containers, networks and volumes.
    pub fn down(&self) -> Result<()> {
        self.compose(|command| {
            command.args(["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        })
        .map(|_| ())
    }
}

impl Drop for ComposeStack {
    fn drop(&mut self) {
        if let Err(error) = self.down() {
            eprintln!("compose project {} not taken down: {error}", self.project);
        }
    }
}

/// What is left of `project` on the engine: its containers, networks and volumes, by name.
pub fn leftovers(project: &str) -> Result<Vec<String>> {
    let label = format!("label=com.docker.compose.project={project}");
    let mut found = Vec::new();
    for (kind, list) in [
        ("container", ["ps", "--all", "--format", "{{.Names}}"]),
        ("network", ["network", "ls", "--format", "{{.Name}}"]),
        ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
    ] {
        let output = run_bounded(
            Command::new("docker").args(list).args(["--filter", &label]),
            Duration::from_secs(30),
        )?;
        found.extend(output.lines().map(|name| format!("{kind} {name}")));
    }
    Ok(found)
}

/// `docker compose` (Compose v2) where the plugin is installed, else `docker-compose`.
fn compose_command() -> Command {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if plugin {
        let mut command = Command::new("docker");
        command.arg("compose");
        command
    } else {
        Command::new("docker-compose")
    }
}

/// Runs `command`, killing it after `limit`; its stdout, or an error with its stderr.
fn run_bounded(command: &mut Command, limit: Duration) -> Result<String> {
    let shown = format!("{command:?}");
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let create = |path: &Path| {
        std::fs::File::create(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(create(&stdout_path)?)
        .stderr(create(&stderr_path)?)
        .spawn()
        .map_err(|error| format!("cannot run {shown}: {error}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown}: still running after {} s, killed",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => return Err(format!("{shown}: {error}")),
        }
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        Err(format!("{shown} failed ({status}): {}", stderr.trim()))
    }
}
