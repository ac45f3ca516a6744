//! Registry credentials for `oci push`: `OCI_USERNAME`/`OCI_PASSWORD` when set (explicit beats
//! implicit), else the registry's `auths` entry in the Docker config file (`$DOCKER_CONFIG/config.json`,
//! default `~/.docker/config.json`, as `docker login` writes it), else anonymous.

use std::path::{Path, PathBuf};

use base64::Engine;
use oci_client::secrets::RegistryAuth;

pub struct Credentials {
    pub auth: RegistryAuth,
    /// Where they came from, for the log line (never the secret).
    pub source: String,
}

/// The credentials for `host` (`HOST[:PORT]`), from the process environment and file system.
pub fn for_host(host: &str) -> Result<Credentials, String> {
    let username = std::env::var("OCI_USERNAME").ok();
    let password = std::env::var("OCI_PASSWORD").ok();
    if let Some(credentials) = from_environment(username, password)? {
        return Ok(credentials);
    }
    let Some(path) = docker_config_path() else {
        return Ok(anonymous());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(from_docker_config(&text, host, &path)?.unwrap_or_else(anonymous)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(anonymous()),
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

fn anonymous() -> Credentials {
    Credentials {
        auth: RegistryAuth::Anonymous,
        source: "anonymous".to_string(),
    }
}

fn from_environment(
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<Credentials>, String> {
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            source: format!("user {username:?} from OCI_USERNAME/OCI_PASSWORD"),
            auth: RegistryAuth::Basic(username, password),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err("OCI_USERNAME is set but OCI_PASSWORD is not".to_string()),
        (None, Some(_)) => Err("OCI_PASSWORD is set but OCI_USERNAME is not".to_string()),
    }
}

fn docker_config_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// The `auths` entry for `host` in a Docker config file's text. Keys may carry a scheme and a path
/// (`https://index.docker.io/v1/`), so they are compared by their host part.
fn from_docker_config(text: &str, host: &str, path: &Path) -> Result<Option<Credentials>, String> {
    let config: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| format!("{}: not JSON: {error}", path.display()))?;
    let wanted = match host {
        "docker.io" => "index.docker.io",
        other => other,
    };
    let entry = config
        .get("auths")
        .and_then(serde_json::Value::as_object)
        .and_then(|auths| auths.iter().find(|(key, _)| key_host(key) == wanted));
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    let Some(encoded) = entry.get("auth").and_then(serde_json::Value::as_str) else {
        // `docker login` with a credential helper leaves an empty entry and keeps the secret in the
        // helper, which this command does not run.
        if config.get("credsStore").is_some() || config.get("credHelpers").is_some() {
            eprintln!(
                "note: {}: auths.{key:?} has no \"auth\" (credential helper?); set OCI_USERNAME and OCI_PASSWORD to log in",
                path.display()
            );
        }
        return Ok(None);
    };
    let field = format!("{}: auths.{key:?}.auth", path.display());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|error| format!("{field}: not base64: {error}"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| format!("{field}: not UTF-8 once decoded"))?;
    let Some((username, password)) = decoded.split_once(':') else {
        return Err(format!("{field}: expected base64 of USER:PASSWORD"));
    };
    Ok(Some(Credentials {
        source: format!("user {username:?} from {}", path.display()),
        auth: RegistryAuth::Basic(username.to_string(), password.to_string()),
    }))
}

fn key_host(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: Option<Credentials>) -> Option<(String, String)> {
        match credentials?.auth {
            RegistryAuth::Basic(username, password) => Some((username, password)),
            _ => None,
        }
    }

    const CONFIG: &str = r#"{
        "auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1Yi1zZWNyZXQ="},
            "registry.example.com:5000": {"auth": "YWxpY2U6czNjcjN0OndpdGg6Y29sb25z"},
            "helper.example.com": {}
        },
        "credsStore": "desktop"
    }"#;

    #[test]
    fn finds_the_registry_entry_by_host() {
        let path = Path::new("config.json");
        assert_eq!(
            basic(from_docker_config(CONFIG, "registry.example.com:5000", path).unwrap()),
            Some(("alice".to_string(), "s3cr3t:with:colons".to_string()))
        );
        assert_eq!(
            basic(from_docker_config(CONFIG, "docker.io", path).unwrap()),
            Some(("hub".to_string(), "hub-secret".to_string()))
        );
        assert!(from_docker_config(CONFIG, "registry.example.com", path)
            .unwrap()
            .is_none());
        assert!(from_docker_config(CONFIG, "helper.example.com", path)
            .unwrap()
            .is_none());
        assert!(from_docker_config("{}", "registry.example.com", path)
            .unwrap()
            .is_none());
    }

    #[test]
    fn malformed_docker_config_names_the_file_and_field() {
        let path = Path::new("/home/u/.docker/config.json");
        let error = from_docker_config("{", "r.io", path).err().unwrap();
        assert!(
            error.starts_with("/home/u/.docker/config.json: not JSON"),
            "{error}"
        );
        let error = from_docker_config(r#"{"auths": {"r.io": {"auth": "%%%"}}}"#, "r.io", path)
            .err()
            .unwrap();
        assert!(error.contains("auths.\"r.io\".auth: not base64"), "{error}");
        // base64("nocolon")
        let error = from_docker_config(
            r#"{"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}}"#,
            "r.io",
            path,
        )
        .err()
        .unwrap();
        assert!(
            error.contains("expected base64 of USER:PASSWORD"),
            "{error}"
        );
    }

    #[test]
    fn environment_needs_both_variables() {
        assert_eq!(
            basic(from_environment(Some("bot".into()), Some("pw".into())).unwrap()),
            Some(("bot".to_string(), "pw".to_string()))
        );
        assert!(from_environment(None, None).unwrap().is_none());
        assert!(from_environment(Some("bot".into()), None)
            .err()
            .unwrap()
            .contains("OCI_PASSWORD is not"));
        assert!(from_environment(None, Some("pw".into()))
            .err()
            .unwrap()
            .contains("OCI_USERNAME is not"));
    }
}
