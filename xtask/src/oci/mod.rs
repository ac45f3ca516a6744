//! `cargo xtask oci build|push`: the filter modules as OCI images that Istio pulls for `oci://`
//! WasmPlugin URLs, written as OCI image layouts and pushed to a registry.

mod credentials;
mod destination;
mod layout;
mod manifests;
mod overlay;
mod provenance;
mod push;

use std::path::{Path, PathBuf};

use e2e::modules::Module;

use crate::cmd;
use destination::Destination;
use layout::{Image, Variant};

pub fn run(args: &[String]) -> Result<(), String> {
    match args.split_first() {
        Some((subcommand, rest)) if subcommand == "build" => {
            let options = Options::parse(rest)?;
            options.reject_push_options()?;
            build_images(&options.variants(true)?, &options.out_dir()).map(|_| ())
        }
        Some((subcommand, rest)) if subcommand == "push" => push_images(&Options::parse(rest)?),
        Some((other, _)) => Err(format!(
            "unknown oci command {other:?}; expected `oci build` or `oci push`"
        )),
        None => Err("expected `oci build` or `oci push`".to_string()),
    }
}

#[derive(Default)]
struct Options {
    variant: Option<String>,
    out: Option<PathBuf>,
    registry: Option<String>,
    tag: Option<String>,
    insecure: bool,
    manifests: Option<PathBuf>,
    overlay: Option<PathBuf>,
    write_manifests: bool,
    ca_file: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(option) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{option} needs a value"))
            };
            match option.as_str() {
                "--variant" => options.variant = Some(value()?),
                "--out" => options.out = Some(PathBuf::from(value()?)),
                "--registry" => options.registry = Some(value()?),
                "--tag" => options.tag = Some(value()?),
                "--manifests" => options.manifests = Some(PathBuf::from(value()?)),
                "--overlay" => options.overlay = Some(PathBuf::from(value()?)),
                "--ca-file" => options.ca_file = Some(PathBuf::from(value()?)),
                "--insecure" => options.insecure = true,
                "--write-manifests" => options.write_manifests = true,
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }

    fn reject_push_options(&self) -> Result<(), String> {
        let push_only = [
            ("--registry", self.registry.is_some()),
            ("--tag", self.tag.is_some()),
            ("--manifests", self.manifests.is_some()),
            ("--overlay", self.overlay.is_some()),
            ("--write-manifests", self.write_manifests),
            ("--ca-file", self.ca_file.is_some()),
            ("--insecure", self.insecure),
        ];
        match push_only.iter().find(|(_, given)| *given) {
            Some((option, _)) => Err(format!(
                "{option} is an option of `oci push`, not `oci build`"
            )),
            None => Ok(()),
        }
    }

    /// The variants asked for (default compat); `all` only where `all_allowed`.
    fn variants(&self, all_allowed: bool) -> Result<Vec<Variant>, String> {
        match self.variant.as_deref() {
            None => Ok(vec![Variant::Compat]),
            Some("all") if all_allowed => Ok(Variant::ALL.to_vec()),
            Some("all") => Err(
                "--variant all: `oci push` takes one variant, since both would share the tag; push each with its own --tag"
                    .to_string(),
            ),
            Some(name) => Variant::from_name(name).map(|variant| vec![variant]).ok_or_else(|| {
                let allowed = if all_allowed { "compat, oci or all" } else { "compat or oci" };
                format!("--variant {name:?}: expected {allowed}")
            }),
        }
    }

    fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| e2e::paths::target_dir().join("oci"))
    }
}

/// A filter's image in one variant, as built and written.
struct BuiltImage {
    filter: &'static str,
    variant: Variant,
    image: Image,
}

/// Builds the modules and writes every filter's image in each variant under `out_dir`.
fn build_images(variants: &[Variant], out_dir: &Path) -> Result<Vec<BuiltImage>, String> {
    cmd::build_modules()?;
    let checkout = provenance::Checkout::read();
    let mut built = Vec::new();
    for module in Module::ALL {
        let module_path = e2e::paths::wasm_dir().join(module.file_name());
        let bytes = std::fs::read(&module_path)
            .map_err(|error| format!("{}: {error}", module_path.display()))?;
        for &variant in variants {
            let image = layout::image(variant, &bytes, &checkout.provenance(module))
                .map_err(|error| format!("{}: {error}", module_path.display()))?;
            let dir = out_dir.join(module.package()).join(variant.name());
            layout::write_layout(&image, &dir)?;
            println!(
                "image {} {} {} {}",
                module.package(),
                variant.name(),
                image.digest(),
                dir.display()
            );
            built.push(BuiltImage {
                filter: module.package(),
                variant,
                image,
            });
        }
    }
    Ok(built)
}

fn push_images(options: &Options) -> Result<(), String> {
    let registry = options
        .registry
        .as_deref()
        .ok_or("--registry HOST[:PORT]/REPO is required")?;
    let tag = options.tag.as_deref().ok_or("--tag is required")?;
    let destination = Destination::parse(registry, tag)?;
    let variants = options.variants(false)?;
    // Fail on credentials, the CA file and the manifests directory before the build, not after it.
    let manifests_dir = options
        .manifests
        .clone()
        .unwrap_or_else(|| e2e::paths::workspace_root().join("wasm-plugins-manifests"));
    if !manifests_dir.is_dir() {
        return Err(format!(
            "--manifests {}: not a directory",
            manifests_dir.display()
        ));
    }
    let credentials = credentials::for_host(&destination.host)?;
    let ca_certificate = match &options.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|error| format!("--ca-file {}: {error}", path.display()))?,
        ),
        None => None,
    };

    let out_dir = options.out_dir();
    let built = build_images(&variants, &out_dir)?;
    println!("pushing to {} ({})", destination.host, credentials.source);
    let registry = push::Registry::connect(options.insecure, ca_certificate, credentials.auth)?;
    let mut pushed = Vec::new();
    for BuiltImage {
        filter,
        variant,
        image,
    } in &built
    {
        let digest = registry.push(&destination, filter, image)?;
        println!(
            "pushed {} {} {digest}",
            destination.image(filter),
            variant.name()
        );
        pushed.push(manifests::PushedImage {
            filter,
            url: format!("oci://{}", destination.image(filter)),
            digest_hex: digest.trim_start_matches("sha256:").to_string(),
        });
    }
    let overlay_dir = options
        .overlay
        .clone()
        .unwrap_or_else(|| out_dir.join("pinned-overlay"));
    write_overlay(&manifests_dir, &overlay_dir, &pushed)?;
    if options.write_manifests {
        pin_manifests(&manifests_dir, &pushed)?;
    }
    Ok(())
}

/// Writes the Kustomize overlay pinning every WasmPlugin of a pushed filter; committed files are
/// only read.
fn write_overlay(
    manifests_dir: &Path,
    overlay_dir: &Path,
    pushed: &[manifests::PushedImage<'_>],
) -> Result<(), String> {
    let files = manifests::manifest_files(manifests_dir)?;
    let mut pins = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("{}: {error}", file.display()))?;
        for image in pushed {
            for plugin in manifests::wasm_plugins_of(&text, image.filter) {
                pins.push(overlay::Pin {
                    plugin,
                    url: image.url.clone(),
                    digest_hex: image.digest_hex.clone(),
                });
            }
        }
    }
    std::fs::create_dir_all(overlay_dir)
        .map_err(|error| format!("{}: {error}", overlay_dir.display()))?;
    let absolute = |dir: &Path| {
        std::fs::canonicalize(dir).map_err(|error| format!("{}: {error}", dir.display()))
    };
    let is_kustomize_base = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|name| manifests_dir.join(name).is_file());
    let base = if is_kustomize_base {
        Some(overlay::relative_path(
            &absolute(overlay_dir)?,
            &absolute(manifests_dir)?,
        ))
    } else {
        None
    };
    let path = overlay_dir.join("kustomization.yaml");
    std::fs::write(&path, overlay::kustomization(base.as_deref(), &pins))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    println!(
        "wrote {}: {} WasmPlugin(s) in {} pinned to the pushed images{}",
        path.display(),
        pins.len(),
        manifests_dir.display(),
        if base.is_some() {
            "; apply with `kubectl apply -k` on that directory"
        } else {
            " (no kustomization.yaml there: add it to the overlay's resources, or copy the patches)"
        }
    );
    Ok(())
}

/// `--write-manifests`: writes each pushed image's url and digest into the WasmPlugin manifests
/// that use it, in place.
fn pin_manifests(dir: &Path, pushed: &[manifests::PushedImage<'_>]) -> Result<(), String> {
    let files = manifests::manifest_files(dir)?;
    for image in pushed {
        let mut pinned_total = 0;
        for file in &files {
            let text = std::fs::read_to_string(file)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            let (pinned_text, pinned) = manifests::pin(&text, image);
            if pinned_text != text {
                std::fs::write(file, &pinned_text)
                    .map_err(|error| format!("{}: {error}", file.display()))?;
            }
            if pinned > 0 {
                println!(
                    "pinned {}: {pinned} WasmPlugin(s) of {} to {} sha256:{}",
                    file.display(),
                    image.filter,
                    image.url,
                    image.digest_hex
                );
            }
            pinned_total += pinned;
        }
        if pinned_total == 0 {
            println!(
                "note: no WasmPlugin in {} has a url oci://…/{}:…",
                dir.display(),
                image.filter
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn variant_defaults_to_compat_and_all_is_for_build_only() {
        assert_eq!(
            options(&[]).unwrap().variants(true).unwrap(),
            [Variant::Compat]
        );
        assert_eq!(
            options(&["--variant", "oci"])
                .unwrap()
                .variants(false)
                .unwrap(),
            [Variant::Oci]
        );
        assert_eq!(
            options(&["--variant", "all"])
                .unwrap()
                .variants(true)
                .unwrap(),
            Variant::ALL
        );
        let error = options(&["--variant", "all"])
            .unwrap()
            .variants(false)
            .unwrap_err();
        assert!(error.starts_with("--variant all: "), "{error}");
    }

    #[test]
    fn bad_options_are_named() {
        let error = options(&["--variant", "docker"])
            .unwrap()
            .variants(true)
            .unwrap_err();
        assert_eq!(error, "--variant \"docker\": expected compat, oci or all");
        assert_eq!(options(&["--tag"]).err().unwrap(), "--tag needs a value");
        assert_eq!(
            options(&["--force"]).err().unwrap(),
            "unknown option \"--force\""
        );
        let error = options(&["--registry", "r.io/x"])
            .unwrap()
            .reject_push_options()
            .unwrap_err();
        assert_eq!(
            error,
            "--registry is an option of `oci push`, not `oci build`"
        );
        assert!(run(&["deploy".to_string()])
            .unwrap_err()
            .contains("unknown oci command \"deploy\""));
    }

    #[test]
    fn push_names_a_missing_or_malformed_option_before_building() {
        let push = |args: &[&str]| {
            let mut all = vec!["push".to_string()];
            all.extend(args.iter().map(|arg| arg.to_string()));
            run(&all).unwrap_err()
        };
        assert_eq!(
            push(&["--tag", "v1"]),
            "--registry HOST[:PORT]/REPO is required"
        );
        assert_eq!(push(&["--registry", "r.io/x"]), "--tag is required");
        assert!(push(&["--registry", "r.io", "--tag", "v1"]).starts_with("--registry \"r.io\": "));
        assert!(
            push(&["--registry", "r.io/x", "--tag", "v1", "--variant", "wasm"])
                .starts_with("--variant \"wasm\"")
        );
    }
}
