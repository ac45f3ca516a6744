//! `cargo xtask oci build|push` against a real registry: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 with a temporary store, read back with `skopeo`; once over
//! plain HTTP without authentication, once over HTTPS with htpasswd authentication, logged in through
//! a credential helper and through OCI_USERNAME/OCI_PASSWORD.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::modules::Module;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const INSTALL_HINT: &str =
    "`cargo xtask test` (or `cargo xtask setup`) installs them: apt-get install docker-registry skopeo apache2-utils";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A `docker-registry` child process on a free loopback port; killed on drop, also when the test
/// panics.
struct Registry {
    child: Child,
    address: String,
    dir: TempDir,
    secured: bool,
}

/// HTTPS with a certificate for `localhost` from a test CA, and htpasswd (bcrypt) authentication.
struct Secured {
    ca: e2e::pki::CertificateAuthority,
    username: &'static str,
    password: &'static str,
}

impl Registry {
    fn start(secured: Option<&Secured>) -> Registry {
        let binary = required_tool("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let store = dir.path().join("store");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            store.display()
        );
        if let Some(secured) = secured {
            let certificate = secured.ca.issue(&["localhost"]).unwrap();
            let (cert, key) = certificate.write_pem(dir.path(), "registry").unwrap();
            let htpasswd = dir.path().join("htpasswd");
            let output = Command::new(required_tool("htpasswd"))
                .args(["-Bbn", secured.username, secured.password])
                .output()
                .unwrap();
            assert!(output.status.success(), "htpasswd failed: {output:?}");
            std::fs::write(&htpasswd, &output.stdout).unwrap();
            text.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: gateway-wasm-test\n    path: {}\n",
                cert.display(),
                key.display(),
                htpasswd.display()
            ));
        }
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry");
        let mut registry = Registry {
            child,
            address,
            dir,
            secured: secured.is_some(),
        };
        registry.wait_until_ready();
        registry
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            let up = if self.secured {
                // TLS: an accepted TCP connection is enough; the pushes prove the rest.
                TcpStream::connect(&self.address).is_ok()
            } else {
                http_request(&self.address, "GET", "/v2/", "")
                    .is_some_and(|response| response.status == 200)
            };
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer /v2/ within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a Debian tool the test needs; a missing one fails the test, never skips it.
fn required_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed: this test needs docker-registry, skopeo and htpasswd; {INSTALL_HINT}"
        )
    })
}

struct HttpResponse {
    status: u16,
    headers: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection; `None` when the server does not answer (yet).
fn http_request(address: &str, method: &str, path: &str, accept: &str) -> Option<HttpResponse> {
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let accept = if accept.is_empty() {
        String::new()
    } else {
        format!("Accept: {accept}\r\n")
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{accept}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, _) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(HttpResponse {
        status,
        headers: head.to_string(),
    })
}

/// Runs the xtask binary (which builds the modules first) and returns its stdout.
fn xtask(args: &[&str]) -> String {
    xtask_with(args, &[])
}

/// Runs the xtask binary with `environment` (and no registry credentials of the caller's).
fn xtask_with(args: &[&str], environment: &[(&str, &std::ffi::OsStr)]) -> String {
    let output = xtask_command(args, environment).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "xtask {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn xtask_command(args: &[&str], environment: &[(&str, &std::ffi::OsStr)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(args)
        .env_remove("OCI_USERNAME")
        .env_remove("OCI_PASSWORD")
        .env("DOCKER_CONFIG", "/nonexistent")
        .envs(environment.iter().copied());
    command
}

/// `(filter, variant, digest)` of every `image …` line that `oci build` prints.
fn built_digests(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.strip_prefix("image ")?.split(' ');
            Some((
                fields.next()?.to_string(),
                fields.next()?.to_string(),
                fields.next()?.to_string(),
            ))
        })
        .collect()
}

/// `(image reference, digest)` of every `pushed …` line that `oci push` prints.
fn pushed_digests(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.strip_prefix("pushed ")?.split(' ').collect();
            Some((fields.first()?.to_string(), fields.get(2)?.to_string()))
        })
        .collect()
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn module_bytes(module: Module) -> Vec<u8> {
    std::fs::read(module.path()).unwrap()
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new(required_tool("skopeo"))
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The pulled blob of `descriptor` in a `skopeo copy … dir:` directory (named by its hex digest).
fn pulled_blob(dir: &Path, descriptor: &serde_json::Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let bytes = std::fs::read(dir.join(digest.trim_start_matches("sha256:"))).unwrap();
    assert_eq!(sha256_digest(&bytes), digest);
    assert_eq!(bytes.len() as u64, descriptor["size"].as_u64().unwrap());
    bytes
}

/// The entries of a gzip tar layer: `(path, content)`.
fn tar_gzip_entries(layer: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (path, content)
        })
        .collect()
}

const WASM_PLUGINS: &str = "\
# Sample WasmPlugins as in wasm-plugins-manifests/: `oci push` pins url and sha256.
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: host-allowlist
spec:
  url: oci://REGISTRY/gateway-wasm/host-allowlist:TAG  # pinned by cargo xtask oci push
  sha256: 0000000000000000000000000000000000000000000000000000000000000000
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: access-log
spec:
  url: oci://REGISTRY/gateway-wasm/access-log:TAG
  sha256: 0000000000000000000000000000000000000000000000000000000000000000
";

#[test]
fn both_variants_push_to_a_real_registry_and_pull_back_byte_identical() {
    required_tool("skopeo");
    let registry = Registry::start(None);
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("plugins.yaml"), WASM_PLUGINS).unwrap();
    let out = work.path().join("oci");
    let repository = format!("{}/gateway-wasm", registry.address);

    for variant in ["compat", "oci"] {
        let tag = format!("test-{variant}");
        // The compat push leaves the manifests alone (the default); the oci push rewrites them.
        let write_manifests = variant == "oci";
        let mut args = vec![
            "oci",
            "push",
            "--registry",
            &repository,
            "--tag",
            &tag,
            "--variant",
            variant,
            "--insecure",
            "--out",
            out.to_str().unwrap(),
            "--manifests",
            manifests.to_str().unwrap(),
        ];
        if write_manifests {
            args.push("--write-manifests");
        }
        let stdout = xtask(&args);
        let built = built_digests(&stdout);
        let pushed = pushed_digests(&stdout);
        assert_eq!(
            pushed.len(),
            Module::ALL.len(),
            "one pushed image per filter:\n{stdout}"
        );

        for module in Module::ALL {
            let filter = module.package();
            let name = format!("{repository}/{filter}:{tag}");
            let digest = &pushed
                .iter()
                .find(|(pushed_name, _)| *pushed_name == name)
                .unwrap()
                .1;
            let built_digest = &built
                .iter()
                .find(|(f, v, _)| f == filter && v == variant)
                .unwrap()
                .2;
            assert_eq!(digest, built_digest, "{name}: pushed what was built");

            // The digest printed is the one the registry serves the tag under.
            let head = http_request(
                &registry.address,
                "HEAD",
                &format!("/v2/gateway-wasm/{filter}/manifests/{tag}"),
                MANIFEST_MEDIA_TYPE,
            )
            .unwrap();
            assert_eq!(head.status, 200, "{name}");
            assert_eq!(
                head.header("Docker-Content-Digest"),
                Some(digest.as_str()),
                "{name}"
            );

            // A single image manifest, not an index, with the variant's media types.
            let raw = skopeo(&[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{name}"),
            ]);
            assert_eq!(&sha256_digest(&raw), digest, "{name}");
            let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE, "{name}");
            let annotations = &manifest["annotations"];
            assert_eq!(annotations["org.opencontainers.image.title"], filter);
            assert_eq!(
                annotations["org.opencontainers.image.version"],
                env!("CARGO_PKG_VERSION")
            );
            assert_eq!(
                annotations["org.opencontainers.image.licenses"],
                env!("CARGO_PKG_LICENSE")
            );
            assert!(manifest.get("manifests").is_none(), "{name}: not an index");

            let pulled = work.path().join(format!("pulled-{filter}-{variant}"));
            skopeo(&[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{name}"),
                &format!("dir:{}", pulled.display()),
            ]);
            assert_eq!(
                std::fs::read(pulled.join("manifest.json")).unwrap(),
                raw,
                "{name}: copied unchanged"
            );
            let layers = manifest["layers"].as_array().unwrap();
            let module_bytes = module_bytes(module);
            if variant == "compat" {
                assert_eq!(
                    manifest["config"]["mediaType"],
                    "application/vnd.oci.image.config.v1+json"
                );
                assert_eq!(layers.len(), 1, "{name}");
                assert_eq!(
                    layers[0]["mediaType"],
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                );
                let entries = tar_gzip_entries(&pulled_blob(&pulled, &layers[0]));
                assert_eq!(entries.len(), 1, "{name}: only plugin.wasm in the layer");
                assert_eq!(entries[0].0, "plugin.wasm");
                assert!(
                    entries[0].1 == module_bytes,
                    "{name}: plugin.wasm differs from {}",
                    module.file_name()
                );
                let config: serde_json::Value =
                    serde_json::from_slice(&pulled_blob(&pulled, &manifest["config"])).unwrap();
                assert_eq!(config["os"], "linux");
            } else {
                assert_eq!(
                    manifest["config"]["mediaType"],
                    "application/vnd.module.wasm.config.v1+json"
                );
                assert_eq!(layers.len(), 2, "{name}: Istio wants exactly two layers");
                let wasm_layer = layers
                    .iter()
                    .find(|layer| {
                        layer["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm"
                    })
                    .unwrap_or_else(|| panic!("{name}: no Wasm content layer"));
                assert!(
                    pulled_blob(&pulled, wasm_layer) == module_bytes,
                    "{name}: the Wasm layer differs from {}",
                    module.file_name()
                );
            }
        }

        let pinned = std::fs::read_to_string(manifests.join("plugins.yaml")).unwrap();
        let overlay =
            std::fs::read_to_string(out.join("pinned-overlay").join("kustomization.yaml")).unwrap();
        for filter in ["host-allowlist", "access-log"] {
            let digest = pushed_digest_hex(&pushed, filter);
            let patch = format!(
                "      name: {filter}\n    patch: |-\n      - op: add\n        path: /spec/url\n        value: oci://{repository}/{filter}:{tag}\n      - op: add\n        path: /spec/sha256\n        value: {digest}\n",
            );
            assert!(
                overlay.contains(&patch),
                "{filter} not in the overlay:\n{overlay}"
            );
        }
        if !write_manifests {
            assert_eq!(pinned, WASM_PLUGINS, "committed manifests left alone");
            continue;
        }
        // With --write-manifests, the sample manifests now point at this push.
        for filter in ["host-allowlist", "access-log"] {
            let digest = pushed_digest_hex(&pushed, filter);
            let expected = format!(
                "  url: oci://{repository}/{filter}:{tag}{}\n  sha256: {digest}\n",
                if filter == "host-allowlist" {
                    "  # pinned by cargo xtask oci push"
                } else {
                    ""
                },
            );
            assert!(pinned.contains(&expected), "{filter} not pinned:\n{pinned}");
        }
        assert!(pinned.starts_with("# Sample WasmPlugins"), "comments kept");
    }
}

/// The hex of the digest `oci push` printed for a filter's image, without `sha256:`.
fn pushed_digest_hex<'a>(pushed: &'a [(String, String)], filter: &str) -> &'a str {
    let (_, digest) = pushed
        .iter()
        .find(|(name, _)| name.contains(&format!("/{filter}:")))
        .unwrap();
    digest.trim_start_matches("sha256:")
}

/// Stands in for a credential helper (`docker-credential-desktop`, `-ecr-login`, …): answers `get`
/// for `server` with the user and password, and "credentials not found" for any other registry.
fn credential_helper_stand_in(dir: &Path, server: &str, secured: &Secured) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("docker-credential-test-stand-in");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# Stands in for a credential helper in the oci_registry test.\n[ \"$1\" = get ] || exit 1\nread -r server || true\nif [ \"$server\" = '{server}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
            secured.username, secured.password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn pushes_over_https_with_htpasswd_through_a_credential_helper_and_the_environment() {
    required_tool("skopeo");
    let secured = Secured {
        ca: e2e::pki::CertificateAuthority::new().unwrap(),
        username: "publisher",
        password: "pass word:with colon",
    };
    let registry = Registry::start(Some(&secured));
    let host = registry.address.replace("127.0.0.1", "localhost");
    let work = tempfile::tempdir().unwrap();
    let ca_file = work.path().join("ca.crt");
    std::fs::write(&ca_file, secured.ca.pem()).unwrap();
    let manifests = work.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("plugins.yaml"), WASM_PLUGINS).unwrap();
    let out = work.path().join("oci");
    let repository = format!("{host}/gateway-wasm");
    let push_args = |tag: &'static str| {
        vec![
            "oci".to_string(),
            "push".to_string(),
            "--registry".to_string(),
            repository.clone(),
            "--tag".to_string(),
            tag.to_string(),
            "--ca-file".to_string(),
            ca_file.display().to_string(),
            "--out".to_string(),
            out.display().to_string(),
            "--manifests".to_string(),
            manifests.display().to_string(),
        ]
    };

    // Anonymous: the registry refuses, and the command fails naming the image.
    let args = push_args("anonymous");
    let anonymous = xtask_command(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "an anonymous push must fail");
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        stderr.contains(&format!("{repository}/host-allowlist:anonymous")),
        "{stderr}"
    );

    // Through the credential helper named in $DOCKER_CONFIG/config.json's credHelpers.
    let docker_config = work.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{}}}}, "credHelpers": {{"{host}": "test-stand-in"}}}}"#),
    )
    .unwrap();
    let helper_bin = credential_helper_stand_in(work.path(), &host, &secured);
    let path = std::env::join_paths(
        std::iter::once(helper_bin)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let args = push_args("via-helper");
    let stdout = xtask_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            ("DOCKER_CONFIG", docker_config.as_os_str()),
            ("PATH", path.as_os_str()),
        ],
    );
    assert!(
        stdout.contains("(user \"publisher\" from docker-credential-test-stand-in)"),
        "{stdout}"
    );
    let via_helper = pushed_digests(&stdout);
    assert_eq!(via_helper.len(), Module::ALL.len(), "{stdout}");

    // Through OCI_USERNAME/OCI_PASSWORD.
    let args = push_args("via-environment");
    let stdout = xtask_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            ("OCI_USERNAME", std::ffi::OsStr::new(secured.username)),
            ("OCI_PASSWORD", std::ffi::OsStr::new(secured.password)),
        ],
    );
    assert_eq!(pushed_digests(&stdout).len(), Module::ALL.len(), "{stdout}");

    // Read back with skopeo, trusting the test CA and logging in: the digests pushed are served.
    let cert_dir = work.path().join("certs");
    std::fs::create_dir(&cert_dir).unwrap();
    std::fs::write(cert_dir.join("ca.crt"), secured.ca.pem()).unwrap();
    let creds = format!("{}:{}", secured.username, secured.password);
    for (name, digest) in &via_helper {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--cert-dir",
            cert_dir.to_str().unwrap(),
            "--creds",
            &creds,
            &format!("docker://{name}"),
        ]);
        assert_eq!(&sha256_digest(&raw), digest, "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(manifests.join("plugins.yaml")).unwrap(),
        WASM_PLUGINS,
        "committed manifests left alone"
    );
}

#[test]
fn builds_at_once_give_the_same_digests_and_bytes() {
    // Several builds at once, as parallel tests start them: each must see whole modules while the
    // others rebuild and reinstall theirs.
    const BUILDS: usize = 3;
    let work = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..BUILDS)
        .map(|build| work.path().join(build.to_string()))
        .collect();
    let digests: Vec<_> = std::thread::scope(|scope| {
        let builds: Vec<_> = dirs
            .iter()
            .map(|dir| {
                scope.spawn(move || {
                    built_digests(&xtask(&[
                        "oci",
                        "build",
                        "--variant",
                        "all",
                        "--out",
                        dir.to_str().unwrap(),
                    ]))
                })
            })
            .collect();
        builds
            .into_iter()
            .map(|build| build.join().unwrap())
            .collect()
    });
    let first = &digests[0];
    let first_dir = &dirs[0];
    assert_eq!(first.len(), Module::ALL.len() * 2, "{first:?}");
    for (digests, dir) in digests.iter().zip(&dirs).skip(1) {
        assert_eq!(first, digests);
        assert_eq!(
            files(first_dir),
            files(dir),
            "the layouts are byte-identical"
        );
    }
    for (filter, variant, digest) in first {
        let index: serde_json::Value = serde_json::from_slice(
            &std::fs::read(first_dir.join(filter).join(variant).join("index.json")).unwrap(),
        )
        .unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1, "{filter} {variant}: one manifest");
        assert_eq!(&manifests[0]["digest"], digest.as_str());
        assert_eq!(manifests[0]["mediaType"], MANIFEST_MEDIA_TYPE);
    }
}

/// Every file under `dir`, as (relative path, content), sorted.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    found.sort();
    found
}
