//! Reproducible OCI images of one filter module, in the two forms Istio's agent fetches for `oci://`
//! WasmPlugin URLs, and the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) they are
//! written to.
//!
//! Every byte is a function of the module and its provenance (source, commit, version: the manifest's
//! OCI annotations) alone: no wall-clock timestamps (`created` is the commit's time), fixed tar
//! header fields, gzip without name or mtime at a fixed level, JSON from structs (fixed field order).
//! The same module from the same commit therefore gives the same manifest digest, which is what a
//! WasmPlugin's `sha256` pins.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const TAR_GZIP_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// The file name Istio's compat fetcher looks for in the layer's tar.
const PLUGIN_FILE_NAME: &str = "plugin.wasm";
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// Where an image comes from, as the OCI pre-defined annotations on its manifest
/// (`org.opencontainers.image.*`); what is unknown (no git checkout, no remote) is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The filter's name.
    pub title: String,
    pub description: String,
    pub version: String,
    pub licenses: String,
    /// The source repository's URL.
    pub source: Option<String>,
    /// The commit the module was built from.
    pub revision: Option<String>,
    /// The commit's time (RFC 3339), never the build's: rebuilding gives the same bytes.
    pub created: Option<String>,
}

impl Provenance {
    fn annotations(&self) -> BTreeMap<&'static str, String> {
        let mut annotations = BTreeMap::from([
            (TITLE_ANNOTATION, self.title.clone()),
            (
                "org.opencontainers.image.description",
                self.description.clone(),
            ),
            ("org.opencontainers.image.version", self.version.clone()),
            ("org.opencontainers.image.licenses", self.licenses.clone()),
        ]);
        let optional = [
            ("org.opencontainers.image.source", &self.source),
            ("org.opencontainers.image.revision", &self.revision),
            ("org.opencontainers.image.created", &self.created),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                annotations.insert(key, value.clone());
            }
        }
        annotations.retain(|_, value| !value.is_empty());
        annotations
    }
}

/// The two image forms Istio's agent accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A standard image: its last (here only) layer is a gzip tar holding `plugin.wasm`. Any OCI
    /// tool (docker, podman, crane, skopeo) can copy it.
    Compat,
    /// The Wasm artifact form: exactly two layers, the runtime config and the raw module.
    Oci,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Compat, Variant::Oci];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Compat => "compat",
            Variant::Oci => "oci",
        }
    }

    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL
            .into_iter()
            .find(|variant| variant.name() == name)
    }
}

/// Content-addressed bytes: a manifest, a config or a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    /// `sha256:<hex>`
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    fn descriptor(&self, title: Option<&'static str>) -> Descriptor<'_> {
        Descriptor {
            media_type: self.media_type,
            digest: &self.digest,
            size: self.bytes.len() as u64,
            annotations: title
                .map(|title| BTreeMap::from([(TITLE_ANNOTATION, title)]))
                .unwrap_or_default(),
        }
    }
}

/// One image: a single manifest (never an index) with its config and layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

impl Image {
    /// The manifest digest, `sha256:<hex>`: what a registry reports and a WasmPlugin pins.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// The config and layer blobs, each once (the oci variant uses its config blob as a layer too).
    pub fn referenced_blobs(&self) -> Vec<&Blob> {
        let mut blobs: Vec<&Blob> = Vec::new();
        for blob in std::iter::once(&self.config).chain(&self.layers) {
            if !blobs.iter().any(|seen| seen.digest == blob.digest) {
                blobs.push(blob);
            }
        }
        blobs
    }
}

/// Builds the image of `module` (the bytes of a `.wasm` file) in the given form.
pub fn image(variant: Variant, module: &[u8], provenance: &Provenance) -> Result<Image, String> {
    if !module.starts_with(b"\0asm") {
        return Err("not a WebAssembly module (no \\0asm magic)".to_string());
    }
    match variant {
        Variant::Compat => compat_image(module, provenance),
        Variant::Oci => oci_image(module, provenance),
    }
}

fn compat_image(module: &[u8], provenance: &Provenance) -> Result<Image, String> {
    let tar = plugin_tar(module)?;
    let config = Blob::new(
        IMAGE_CONFIG_MEDIA_TYPE,
        to_json(&ImageConfig {
            // Istio ignores the platform of a single-manifest image; linux/amd64 is the platform
            // generic tools (`docker pull`, `crane`) pick by default, so they copy it without a flag.
            architecture: "amd64",
            os: "linux",
            rootfs: RootFs {
                kind: "layers",
                diff_ids: vec![sha256_digest(&tar)],
            },
        })?,
    );
    let layer = Blob::new(TAR_GZIP_LAYER_MEDIA_TYPE, gzip(&tar)?);
    // The compat spec (solo-io/wasm, spec-compat.md) asks OCI-layer images to say which form they are.
    let mut annotations = provenance.annotations();
    annotations.insert("module.wasm.image/variant", "compat".to_string());
    let manifest = manifest_blob(&config, &[layer.descriptor(None)], annotations)?;
    Ok(Image {
        manifest,
        config,
        layers: vec![layer],
    })
}

fn oci_image(module: &[u8], provenance: &Provenance) -> Result<Image, String> {
    let abi_versions = abi_versions(module);
    if abi_versions.is_empty() {
        return Err(
            "the module exports no proxy_abi_version_* function: not a proxy-wasm module"
                .to_string(),
        );
    }
    let config = Blob::new(
        WASM_CONFIG_MEDIA_TYPE,
        to_json(&WasmRuntimeConfig {
            kind: "envoy_proxy",
            abi_versions,
        })?,
    );
    let layer = Blob::new(WASM_LAYER_MEDIA_TYPE, module.to_vec());
    // Istio's oci-variant fetcher wants exactly two layers and takes the one of the Wasm content
    // type; the other is, as in the Wasm image spec and Istio's own tests, the runtime config.
    let layers = [
        config.descriptor(Some("runtime-config.json")),
        layer.descriptor(Some(PLUGIN_FILE_NAME)),
    ];
    let manifest = manifest_blob(&config, &layers, provenance.annotations())?;
    let config_layer = config.clone();
    Ok(Image {
        manifest,
        config,
        layers: vec![config_layer, layer],
    })
}

/// The ABI versions a proxy-wasm module declares through its `proxy_abi_version_X_Y_Z` exports, as
/// `vX.Y.Z`, sorted. Export names sit verbatim in the export section, so a byte search finds them.
fn abi_versions(module: &[u8]) -> Vec<String> {
    const PREFIX: &[u8] = b"proxy_abi_version_";
    let mut versions: Vec<String> = Vec::new();
    for start in 0..module.len() {
        let Some(rest) = module
            .get(start..)
            .and_then(|rest| rest.strip_prefix(PREFIX))
        else {
            continue;
        };
        let digits: String = rest
            .iter()
            .take_while(|byte| byte.is_ascii_digit() || **byte == b'_')
            .map(|byte| {
                if *byte == b'_' {
                    '.'
                } else {
                    char::from(*byte)
                }
            })
            .collect();
        if digits.is_empty() {
            continue;
        }
        let version = format!("v{digits}");
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    versions.sort();
    versions
}

/// A tar with the single entry `plugin.wasm`: mode 0644, owner 0:0, mtime 0, no user or group names.
fn plugin_tar(module: &[u8]) -> Result<Vec<u8>, String> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(PLUGIN_FILE_NAME)
        .map_err(|error| format!("tar header: {error}"))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(&header, module)
        .map_err(|error| format!("tar: {error}"))?;
    builder
        .into_inner()
        .map_err(|error| format!("tar: {error}"))
}

/// Gzip with no file name, mtime 0, OS "unknown" and a fixed level, so the bytes depend only on the input.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(9));
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|error| format!("gzip: {error}"))
}

fn manifest_blob(
    config: &Blob,
    layers: &[Descriptor<'_>],
    annotations: BTreeMap<&'static str, String>,
) -> Result<Blob, String> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: config.descriptor(None),
        layers,
        annotations,
    };
    Ok(Blob::new(MANIFEST_MEDIA_TYPE, to_json(&manifest)?))
}

/// Writes `image` as an OCI image layout in `dir`, replacing what was there: `oci-layout`,
/// `index.json` pointing to the one manifest, and every blob under `blobs/sha256/`.
pub fn write_layout(image: &Image, dir: &Path) -> Result<(), String> {
    let io_error = |path: &Path, error: std::io::Error| format!("{}: {error}", path.display());
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|error| io_error(dir, error))?;
    }
    let blobs_dir = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs_dir).map_err(|error| io_error(&blobs_dir, error))?;
    for blob in std::iter::once(&image.manifest).chain(image.referenced_blobs()) {
        let path = blobs_dir.join(blob.hex());
        std::fs::write(&path, &blob.bytes).map_err(|error| io_error(&path, error))?;
    }
    let index = Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests: [image.manifest.descriptor(None)],
    };
    let files = [
        (
            "oci-layout",
            to_json(&LayoutMarker {
                image_layout_version: "1.0.0",
            })?,
        ),
        ("index.json", to_json(&index)?),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|error| io_error(&path, error))?;
    }
    Ok(())
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|error| format!("JSON: {error}"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'static str,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor<'a>,
    layers: &'a [Descriptor<'a>],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct ImageConfig {
    architecture: &'static str,
    os: &'static str,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Digests of the uncompressed layers.
    diff_ids: Vec<String>,
}

/// The Wasm image spec's runtime config (solo-io/wasm, spec.md).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmRuntimeConfig {
    #[serde(rename = "type")]
    kind: &'static str,
    abi_versions: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: [Descriptor<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: &'static str,
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// The smallest module that declares proxy-wasm ABI 0.2.1: a header, then an export section
    /// naming `proxy_abi_version_0_2_1` (byte search does not need the rest to be valid).
    fn sample_module() -> Vec<u8> {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(b"\x07\x1b\x01\x17proxy_abi_version_0_2_1\x00\x00");
        module
    }

    fn provenance() -> Provenance {
        Provenance {
            title: "host-allowlist".to_string(),
            description: "Allows only listed hosts".to_string(),
            version: "0.1.0".to_string(),
            licenses: "Apache-2.0".to_string(),
            source: Some("https://git.example.com/gateway-wasm".to_string()),
            revision: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
            created: Some("2026-12-03T13:00:00+00:00".to_string()),
        }
    }

    fn json(blob: &Blob) -> serde_json::Value {
        serde_json::from_slice(&blob.bytes).unwrap()
    }

    #[test]
    fn compat_image_is_one_gzip_tar_layer_holding_plugin_wasm() {
        let module = sample_module();
        let image = image(Variant::Compat, &module, &provenance()).unwrap();
        let manifest = json(&image.manifest);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            TAR_GZIP_LAYER_MEDIA_TYPE
        );
        assert_eq!(
            manifest["layers"][0]["digest"],
            image.layers[0].digest.as_str()
        );

        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&image.layers[0].bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        let config = json(&image.config);
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            sha256_digest(&tar).as_str()
        );
        assert_eq!(
            (config["architecture"].as_str(), config["os"].as_str()),
            (Some("amd64"), Some("linux"))
        );

        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("plugin.wasm"));
        let header = entry.header();
        assert_eq!(
            (
                header.mtime().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mode().unwrap()
            ),
            (0, 0, 0, 0o644)
        );
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, module);
        assert!(entries.next().is_none(), "only plugin.wasm in the layer");
    }

    #[test]
    fn oci_image_has_exactly_the_config_and_the_raw_module_as_layers() {
        let module = sample_module();
        let image = image(Variant::Oci, &module, &provenance()).unwrap();
        let manifest = json(&image.manifest);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        let layer_types: Vec<&str> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["mediaType"].as_str().unwrap())
            .collect();
        assert_eq!(layer_types, [WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]);
        assert_eq!(image.layers[1].bytes, module);
        assert_eq!(
            json(&image.config),
            serde_json::json!({"type": "envoy_proxy", "abiVersions": ["v0.2.1"]})
        );
        assert_eq!(
            image.referenced_blobs().len(),
            2,
            "config and config layer are one blob"
        );
    }

    #[test]
    fn the_same_module_gives_the_same_digest_and_another_module_another() {
        let module = sample_module();
        for variant in Variant::ALL {
            let first = image(variant, &module, &provenance()).unwrap();
            assert_eq!(
                first,
                image(variant, &module, &provenance()).unwrap(),
                "{variant:?}"
            );
            let mut changed = module.clone();
            changed.push(0);
            assert_ne!(
                first.digest(),
                image(variant, &changed, &provenance()).unwrap().digest(),
                "{variant:?}"
            );
        }
    }

    #[test]
    fn manifests_carry_the_provenance_and_leave_out_what_is_unknown() {
        for variant in Variant::ALL {
            let annotations = &json(
                &image(variant, &sample_module(), &provenance())
                    .unwrap()
                    .manifest,
            )["annotations"];
            let key = |name: &str| annotations[format!("org.opencontainers.image.{name}")].clone();
            assert_eq!(key("title"), "host-allowlist", "{variant:?}");
            assert_eq!(key("description"), "Allows only listed hosts");
            assert_eq!(key("version"), "0.1.0");
            assert_eq!(key("licenses"), "Apache-2.0");
            assert_eq!(key("source"), "https://git.example.com/gateway-wasm");
            assert_eq!(key("revision"), "0123456789abcdef0123456789abcdef01234567");
            assert_eq!(key("created"), "2026-12-03T13:00:00+00:00");

            let outside_git = Provenance {
                source: None,
                revision: None,
                created: None,
                ..provenance()
            };
            let manifest = json(
                &image(variant, &sample_module(), &outside_git)
                    .unwrap()
                    .manifest,
            );
            let keys: Vec<&String> = manifest["annotations"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            assert!(
                !keys.iter().any(|key| key.ends_with(".source")
                    || key.ends_with(".revision")
                    || key.ends_with(".created")),
                "{keys:?}"
            );
        }
        let compat = json(
            &image(Variant::Compat, &sample_module(), &provenance())
                .unwrap()
                .manifest,
        );
        assert_eq!(compat["annotations"]["module.wasm.image/variant"], "compat");
    }

    #[test]
    fn gzip_header_carries_no_timestamp_or_name() {
        let compressed = gzip(b"plugin").unwrap();
        // ID1 ID2 CM FLG MTIME(4) XFL OS: no FNAME flag, zero mtime, OS unknown.
        assert_eq!(compressed[..4], [0x1f, 0x8b, 8, 0]);
        assert_eq!(compressed[4..8], [0, 0, 0, 0]);
        assert_eq!(compressed[9], 255);
    }

    #[test]
    fn rejects_what_is_not_a_proxy_wasm_module() {
        assert!(image(Variant::Compat, b"#!/bin/sh", &provenance())
            .unwrap_err()
            .contains("not a WebAssembly module"));
        let bare = b"\0asm\x01\0\0\0".to_vec();
        assert!(image(Variant::Oci, &bare, &provenance())
            .unwrap_err()
            .contains("proxy_abi_version"));
    }

    #[test]
    fn layout_has_marker_index_and_every_blob() {
        let image = image(Variant::Oci, &sample_module(), &provenance()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        std::fs::create_dir_all(layout.join("stale")).unwrap();
        write_layout(&image, &layout).unwrap();

        assert!(
            !layout.join("stale").exists(),
            "a rebuild replaces the layout"
        );
        let marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(marker, serde_json::json!({"imageLayoutVersion": "1.0.0"}));
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(index["manifests"][0]["digest"], image.digest());
        assert_eq!(index["manifests"][0]["mediaType"], MANIFEST_MEDIA_TYPE);
        let mut stored: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        stored.sort();
        let mut expected: Vec<String> = [&image.manifest, &image.config, &image.layers[1]]
            .iter()
            .map(|blob| blob.hex().to_string())
            .collect();
        expected.sort();
        assert_eq!(stored, expected);
        for name in stored {
            let bytes = std::fs::read(layout.join("blobs/sha256").join(&name)).unwrap();
            assert_eq!(sha256_digest(&bytes), format!("sha256:{name}"));
        }
    }
}
