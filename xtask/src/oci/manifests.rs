//! Pins pushed images in the WasmPlugin manifests: in every YAML document whose `url:` is
//! `oci://…/<filter>:<tag>`, the url becomes the pushed image and `sha256:` its manifest digest.
//!
//! Without `--write-manifests`, nothing is rewritten: [`wasm_plugins_of`] names the WasmPlugins that
//! use a filter, and `oci push` pins them in a Kustomize overlay instead.
//!
//! A line-oriented edit, not a YAML round trip, so comments, key order, quoting and blank lines stay
//! exactly as the author wrote them. `sha256:` is taken only at the url's indentation (a sibling key
//! of the same WasmPlugin `spec`), so a `pluginConfig` field of that name is never touched.

use std::path::{Path, PathBuf};

/// A pushed image: the filter's name, its new `oci://` url and its manifest digest in hex.
pub struct PushedImage<'a> {
    pub filter: &'a str,
    pub url: String,
    pub digest_hex: String,
}

/// Rewrites `yaml` for `image`; returns the new text and how many WasmPlugins were pinned.
pub fn pin(yaml: &str, image: &PushedImage<'_>) -> (String, usize) {
    let mut lines: Vec<String> = yaml.split_inclusive('\n').map(str::to_string).collect();
    let mut pinned = 0;
    let mut document_start = 0;
    while document_start < lines.len() {
        let document_end = lines
            .iter()
            .skip(document_start + 1)
            .position(|line| is_document_separator(line))
            .map_or(lines.len(), |offset| document_start + 1 + offset);
        let inserted = pin_document(&mut lines, document_start..document_end, image);
        if let Some(inserted) = inserted {
            pinned += 1;
            document_start = document_end + inserted;
        } else {
            document_start = document_end;
        }
    }
    (lines.concat(), pinned)
}

/// Pins the document in `range` if its url names the filter; returns how many lines it inserted.
fn pin_document(
    lines: &mut Vec<String>,
    range: std::ops::Range<usize>,
    image: &PushedImage<'_>,
) -> Option<usize> {
    let (url_index, url_indent) = range.clone().find_map(|index| {
        let line = lines.get(index)?;
        let value = ScalarLine::parse(line, "url")?;
        (image_name(value.value)? == image.filter).then(|| (index, value.indent.to_string()))
    })?;
    let new_url = ScalarLine::parse(lines.get(url_index)?, "url")?.with_value(&image.url);
    *lines.get_mut(url_index)? = new_url;

    let sha_index = range.clone().find(|index| {
        lines
            .get(*index)
            .and_then(|line| ScalarLine::parse(line, "sha256"))
            .is_some_and(|value| value.indent == url_indent)
    });
    match sha_index {
        Some(index) => {
            let new_sha =
                ScalarLine::parse(lines.get(index)?, "sha256")?.with_value(&image.digest_hex);
            *lines.get_mut(index)? = new_sha;
            Some(0)
        }
        None => {
            let newline = if lines.get(url_index)?.ends_with("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            if !lines.get(url_index)?.ends_with('\n') {
                lines.get_mut(url_index)?.push_str(newline);
            }
            lines.insert(
                url_index + 1,
                format!("{url_indent}sha256: {}{newline}", image.digest_hex),
            );
            Some(1)
        }
    }
}

/// A WasmPlugin's `metadata`: what a Kustomize patch targets it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginName {
    pub name: String,
    pub namespace: Option<String>,
}

/// The WasmPlugins in `yaml` whose `url` names `filter`'s image.
pub fn wasm_plugins_of(yaml: &str, filter: &str) -> Vec<PluginName> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut found = Vec::new();
    for document in lines.split(|line| is_document_separator(line)) {
        let is_wasm_plugin = document.iter().any(|line| {
            ScalarLine::parse(line, "kind")
                .is_some_and(|kind| kind.indent.is_empty() && kind.value == "WasmPlugin")
        });
        let uses_filter = document.iter().any(|line| {
            ScalarLine::parse(line, "url").is_some_and(|url| image_name(url.value) == Some(filter))
        });
        if !(is_wasm_plugin && uses_filter) {
            continue;
        }
        let Some(start) = document
            .iter()
            .position(|line| line.trim_end() == "metadata:")
        else {
            continue;
        };
        let metadata: Vec<&str> = document[start + 1..]
            .iter()
            .copied()
            .take_while(|line| {
                line.starts_with([' ', '\t'])
                    || line.trim().is_empty()
                    || line.trim_start().starts_with('#')
            })
            .collect();
        let Some(child_indent) = metadata
            .iter()
            .find_map(|line| ScalarLine::parse(line, "name").map(|name| name.indent))
        else {
            continue;
        };
        let field = |key: &str| {
            metadata.iter().find_map(|line| {
                ScalarLine::parse(line, key)
                    .filter(|value| value.indent == child_indent && !value.value.is_empty())
                    .map(|value| value.value.to_string())
            })
        };
        if let Some(name) = field("name") {
            found.push(PluginName {
                name,
                namespace: field("namespace"),
            });
        }
    }
    found
}

fn is_document_separator(line: &str) -> bool {
    let line = line.trim_end();
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

/// The image name of an `oci://HOST/PATH/NAME:TAG` (or `…@sha256:…`) url: `NAME`.
fn image_name(url: &str) -> Option<&str> {
    let path = url.strip_prefix("oci://")?;
    let last = path.rsplit('/').next()?;
    let without_digest = last.split('@').next()?;
    Some(without_digest.split(':').next().unwrap_or(without_digest))
}

/// A `key: value` line split so that the value can be replaced and everything else kept: the
/// indentation, the quotes, a trailing comment, the line ending.
struct ScalarLine<'a> {
    indent: &'a str,
    before_value: &'a str,
    value: &'a str,
    after_value: &'a str,
}

impl<'a> ScalarLine<'a> {
    fn parse(line: &'a str, key: &str) -> Option<ScalarLine<'a>> {
        let content = line.trim_start_matches([' ', '\t']);
        let indent = line.get(..line.len() - content.len())?;
        let after_key = content.strip_prefix(key)?.strip_prefix(':')?;
        let value_and_rest = after_key.trim_start_matches([' ', '\t']);
        if value_and_rest.len() == after_key.len() && !after_key.trim().is_empty() {
            return None; // `url:x` is not a `url` key followed by a value
        }
        let value_start = line.len() - value_and_rest.len();
        let value_len = match value_and_rest.chars().next() {
            Some(quote @ ('"' | '\'')) => 1 + value_and_rest.get(1..)?.find(quote)? + 1,
            _ => {
                let end = value_and_rest.find(" #").unwrap_or(value_and_rest.len());
                value_and_rest.get(..end)?.trim_end().len()
            }
        };
        let raw_value = line.get(value_start..value_start + value_len)?;
        let (quote_len, value) = match raw_value.chars().next() {
            Some('"' | '\'') => (1, raw_value.get(1..raw_value.len() - 1)?),
            _ => (0, raw_value),
        };
        Some(ScalarLine {
            indent,
            before_value: line.get(..value_start + quote_len)?,
            value,
            after_value: line.get(value_start + quote_len + value.len()..)?,
        })
    }

    fn with_value(&self, value: &str) -> String {
        let separator = if self.value.is_empty() && !self.before_value.ends_with([' ', '"', '\'']) {
            " "
        } else {
            ""
        };
        format!(
            "{}{separator}{value}{}",
            self.before_value, self.after_value
        )
    }
}

/// The `.yaml`/`.yml` files in `dir` and its subdirectories (the Kustomize components' alternative
/// forms, e.g. the combined module and the TrafficExtensions, are pinned with the rest), sorted.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| format!("{}: {error}", dir.display()))?
            .path();
        if path.is_dir() {
            files.extend(manifest_files(&path)?);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml")
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Egress gateway policy.
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: host-allowlist
spec:
  selector:
    matchLabels:
      istio: egressgateway
  # Pulled by istio-agent; sha256 pins the manifest, not the module.
  url: oci://REGISTRY/gateway-wasm/host-allowlist:TAG   # set by `cargo xtask oci push`
  sha256: 0000000000000000000000000000000000000000000000000000000000000000  # manifest digest
  failStrategy: FAIL_CLOSE
  pluginConfig:
    sha256: keep-me
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: host-allowlist-tls
spec:
  type: NETWORK
  url: \"oci://REGISTRY/gateway-wasm/host-allowlist:TAG\"
  sha256: 'old'

---
kind: WasmPlugin
metadata:
  name: access-log
spec:
  url: oci://REGISTRY/gateway-wasm/access-log:TAG
  sha256: 1111111111111111111111111111111111111111111111111111111111111111
---
kind: WasmPlugin
metadata:
  name: tagger-without-pin
spec:
  url: oci://REGISTRY/gateway-wasm/host-allowlist-extra:TAG
";

    fn pushed(filter: &str) -> PushedImage<'_> {
        PushedImage {
            filter,
            url: format!("oci://127.0.0.1:5000/wasm/{filter}:v2"),
            digest_hex: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                .to_string(),
        }
    }

    #[test]
    fn pins_every_wasm_plugin_of_the_filter_keeping_comments_and_quotes() {
        let (pinned_yaml, count) = pin(SAMPLE, &pushed("host-allowlist"));
        assert_eq!(count, 2);
        let expected = SAMPLE
            .replace(
                "  url: oci://REGISTRY/gateway-wasm/host-allowlist:TAG   # set by",
                "  url: oci://127.0.0.1:5000/wasm/host-allowlist:v2   # set by",
            )
            .replace(
                "  sha256: 0000000000000000000000000000000000000000000000000000000000000000  # manifest digest",
                "  sha256: abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789  # manifest digest",
            )
            .replace(
                "  url: \"oci://REGISTRY/gateway-wasm/host-allowlist:TAG\"",
                "  url: \"oci://127.0.0.1:5000/wasm/host-allowlist:v2\"",
            )
            .replace(
                "  sha256: 'old'",
                "  sha256: 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789'",
            );
        assert_eq!(pinned_yaml, expected);
        assert!(
            pinned_yaml.contains("    sha256: keep-me\n"),
            "pluginConfig untouched"
        );
        assert!(
            pinned_yaml.contains("access-log:TAG\n  sha256: 1111"),
            "other filters untouched"
        );
    }

    #[test]
    fn pinning_again_is_stable() {
        let (once, _) = pin(SAMPLE, &pushed("access-log"));
        let (twice, count) = pin(&once, &pushed("access-log"));
        assert_eq!((once.as_str(), count), (twice.as_str(), 1));
        assert!(once.contains("  url: oci://127.0.0.1:5000/wasm/access-log:v2\n  sha256: abcdef"));
    }

    #[test]
    fn inserts_a_missing_sha256_after_the_url() {
        let (pinned_yaml, count) = pin(SAMPLE, &pushed("host-allowlist-extra"));
        assert_eq!(count, 1);
        assert!(
            pinned_yaml.ends_with(
                "  url: oci://127.0.0.1:5000/wasm/host-allowlist-extra:v2\n  sha256: abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n"
            ),
            "{pinned_yaml}"
        );
        let (no_newline, _) = pin("spec:\n  url: oci://r/x/f:t", &pushed("f"));
        assert_eq!(
            no_newline,
            format!(
                "spec:\n  url: oci://127.0.0.1:5000/wasm/f:v2\n  sha256: {}\n",
                pushed("f").digest_hex
            )
        );
    }

    #[test]
    fn names_the_wasm_plugins_of_a_filter() {
        let names = |filter| wasm_plugins_of(SAMPLE, filter);
        assert_eq!(
            names("host-allowlist"),
            [
                PluginName {
                    name: "host-allowlist".to_string(),
                    namespace: None
                },
                PluginName {
                    name: "host-allowlist-tls".to_string(),
                    namespace: None
                },
            ]
        );
        assert_eq!(names("subset-tagger"), []);
        let namespaced = "kind: WasmPlugin\nmetadata:\n  # the egress gateway's\n  name: egress-log\n  namespace: istio-system\n  labels:\n    name: not-this\nspec:\n  url: oci://r/x/access-log:t\n";
        assert_eq!(
            wasm_plugins_of(namespaced, "access-log"),
            [PluginName {
                name: "egress-log".to_string(),
                namespace: Some("istio-system".to_string())
            }]
        );
        let not_a_plugin =
            "kind: ConfigMap\nmetadata:\n  name: x\ndata:\n  url: oci://r/x/access-log:t\n";
        assert_eq!(wasm_plugins_of(not_a_plugin, "access-log"), []);
    }

    #[test]
    fn leaves_documents_of_other_images_alone() {
        let (unchanged, count) = pin(SAMPLE, &pushed("subset-tagger"));
        assert_eq!((unchanged.as_str(), count), (SAMPLE, 0));
        let http_url = "spec:\n  url: https://example.com/host-allowlist.wasm\n  sha256: aa\n";
        assert_eq!(pin(http_url, &pushed("host-allowlist")).1, 0);
    }

    #[test]
    fn manifest_files_include_the_components_in_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("kustomize/traffic-extension");
        std::fs::create_dir_all(&component).unwrap();
        for file in [
            "egress.yaml",
            "notes.txt",
            "kustomize/traffic-extension/plugins.yml",
        ] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        let files = manifest_files(dir.path()).unwrap();
        assert_eq!(
            files,
            [
                dir.path().join("egress.yaml"),
                component.join("plugins.yml")
            ]
        );
    }
}
