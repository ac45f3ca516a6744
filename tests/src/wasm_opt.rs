//! binaryen's `wasm-opt`, the last step of every module build.
//!
//! rustc and LLVM leave a module larger than it needs to be: code only the removed callback exports
//! reached ([`crate::wasm_exports`]), functions LLVM could not merge across crates, and the producers
//! section. wasm-opt's `-O3` pipeline removes them and optimises for speed as the workspace profile
//! does (see its `opt-level` comment); its size-first pipelines (`-Os`, `-Oz`) are left out for the
//! same reason the profile leaves out rustc's.

use std::path::Path;
use std::process::Command;

/// The binaryen release the build runs (Debian bookworm's `binaryen`). Its output is part of each
/// module's bytes, and so of the OCI images' digests, which two builds must reproduce: another
/// release may optimise differently, so the build refuses it rather than ship other bytes.
pub const VERSION: &str = "108";

/// Where `cargo xtask setup` and the apt-get line of its message get [`VERSION`] from.
pub const PACKAGE: &str = "binaryen";

/// The passes, chosen by measurement (README, "Module sizes"). The features are those rustc's
/// wasm32-wasip1 target enables by default, which the modules use; wasm-opt must accept them to
/// read the module, and may then use them in what it writes, as rustc already does.
pub const FLAGS: &[&str] = &[
    "-O3",
    "--strip-debug",
    "--strip-producers",
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-extended-const",
];

const PROGRAM: &str = "wasm-opt";

/// Fails unless `wasm-opt` runs and reports [`VERSION`], saying how to get it.
pub fn check_version() -> Result<(), String> {
    check_version_of(PROGRAM)
}

fn check_version_of(program: &str) -> Result<(), String> {
    let how = format!(
        "the module build optimises each module with binaryen's wasm-opt {VERSION}: \
         `cargo xtask setup` installs it, or `apt-get install {PACKAGE}` (Debian bookworm)"
    );
    let output = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|error| format!("cannot run {program} ({error}); {how}"))?;
    let reported = String::from_utf8_lossy(&output.stdout);
    match version(&reported) {
        Some(found) if output.status.success() && found == VERSION => Ok(()),
        _ => Err(format!(
            "`{program} --version` reports {:?}, not version {VERSION}; {how}. Another binaryen \
             release writes other bytes, and the images' digests must be reproducible",
            reported.trim()
        )),
    }
}

/// The release in `wasm-opt --version`'s output: `wasm-opt version 108`, or
/// `wasm-opt version 116 (version_116)` in later releases.
fn version(output: &str) -> Option<&str> {
    let mut words = output.split_whitespace();
    words.find(|word| *word == "version")?;
    words.next()
}

/// `wasm` after wasm-opt's [`FLAGS`]. wasm-opt reads and writes files: `scratch` with two
/// extensions added, removed afterwards.
pub fn optimize(wasm: &[u8], scratch: &Path) -> Result<Vec<u8>, String> {
    let input = scratch.with_extension("wasm-opt-input");
    let output = scratch.with_extension("wasm-opt-output");
    std::fs::write(&input, wasm).map_err(|error| format!("{}: {error}", input.display()))?;
    let result = run(&input, &output);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    result
}

fn run(input: &Path, output: &Path) -> Result<Vec<u8>, String> {
    let ran = Command::new(PROGRAM)
        .args(FLAGS)
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .map_err(|error| format!("cannot run {PROGRAM}: {error}"))?;
    if !ran.status.success() {
        return Err(format!(
            "{PROGRAM} {} {} failed ({}): {}",
            FLAGS.join(" "),
            input.display(),
            ran.status,
            String::from_utf8_lossy(&ran.stderr).trim()
        ));
    }
    std::fs::read(output).map_err(|error| format!("{}: {error}", output.display()))
}

/// What an optimised module was made from: the release, the flags and the input module. The build
/// keeps it beside the module and skips wasm-opt while it is unchanged, since every test process
/// installs the modules and `-O3` takes seconds per module.
pub fn recipe(wasm: &[u8]) -> Vec<u8> {
    let mut recipe = format!("{PROGRAM} {VERSION} {}\n", FLAGS.join(" ")).into_bytes();
    recipe.extend_from_slice(wasm);
    recipe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_old_and_new_output() {
        assert_eq!(version("wasm-opt version 108\n"), Some("108"));
        assert_eq!(version("wasm-opt version 116 (version_116)\n"), Some("116"));
        assert_eq!(version(""), None);
    }

    #[test]
    fn a_missing_wasm_opt_names_the_package_and_setup() {
        let error = check_version_of("wasm-opt-not-installed-here").unwrap_err();
        assert!(error.contains("cargo xtask setup"), "{error}");
        assert!(error.contains("apt-get install binaryen"), "{error}");
    }

    /// The installed wasm-opt is the pinned one (`cargo xtask setup` installs it), and optimising
    /// a module twice gives the same bytes, which the reproducible images rely on.
    #[test]
    fn installed_wasm_opt_is_pinned_and_deterministic() {
        check_version().unwrap();
        // (module (func (export "f") (result i32) (i32.add (i32.const 1) (i32.const 2))))
        let module = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01,
            0x7f, 0x03, 0x02, 0x01, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x09,
            0x01, 0x07, 0x00, 0x41, 0x01, 0x41, 0x02, 0x6a, 0x0b,
        ];
        let dir = tempfile::tempdir().unwrap();
        let first = optimize(&module, &dir.path().join("m.wasm")).unwrap();
        let second = optimize(&module, &dir.path().join("m.wasm")).unwrap();
        assert_eq!(first, second);
        // The addition is folded: `i32.const 3` and no `i32.add`.
        assert!(first.len() < module.len(), "{first:?}");
        assert!(!first.contains(&0x6a), "{first:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
