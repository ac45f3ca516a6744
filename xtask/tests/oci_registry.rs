//! `cargo xtask oci build|push` against a real registry: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 with a temporary store, read back with `skopeo`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::modules::Module;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const INSTALL_HINT: &str = "install them with `apt-get install docker-registry skopeo`";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A `docker-registry` child process serving plain HTTP on a free loopback port; killed on drop,
/// also when the test panics.
struct Registry {
    child: Child,
    address: String,
    dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
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
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                store.display()
            ),
        )
        .unwrap();
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
            if http_request(&self.address, "GET", "/v2/", "")
                .is_some_and(|response| response.status == 200)
            {
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
            "`{name}` is not installed: this test needs docker-registry and skopeo; {INSTALL_HINT}"
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
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "xtask {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("plugins.yaml"), WASM_PLUGINS).unwrap();
    let out = work.path().join("oci");
    let repository = format!("{}/gateway-wasm", registry.address);

    for variant in ["compat", "oci"] {
        let tag = format!("test-{variant}");
        let stdout = xtask(&[
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
        ]);
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

        // The sample manifests now point at this push.
        let pinned = std::fs::read_to_string(manifests.join("plugins.yaml")).unwrap();
        for filter in ["host-allowlist", "access-log"] {
            let digest = &pushed
                .iter()
                .find(|(name, _)| name.contains(&format!("/{filter}:")))
                .unwrap()
                .1;
            let expected = format!(
                "  url: oci://{repository}/{filter}:{tag}{}\n  sha256: {}\n",
                if filter == "host-allowlist" {
                    "  # pinned by cargo xtask oci push"
                } else {
                    ""
                },
                digest.trim_start_matches("sha256:")
            );
            assert!(pinned.contains(&expected), "{filter} not pinned:\n{pinned}");
        }
        assert!(pinned.starts_with("# Sample WasmPlugins"), "comments kept");
    }
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
