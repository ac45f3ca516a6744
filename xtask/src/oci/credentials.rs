//! Registry credentials for `oci push`: `OCI_USERNAME`/`OCI_PASSWORD` when set (explicit beats
//! implicit), else what the Docker config file (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`) gives for the registry, looked up as docker does: the registry's
//! credential helper (`credHelpers`), else the default credential store (`credsStore`), else its
//! `auths` entry as `docker login` writes it; else anonymous. A helper `NAME` is the program
//! `docker-credential-NAME`, run as `docker-credential-NAME get` with the registry on stdin, answering
//! `{"Username": …, "Secret": …}` (Docker Desktop, gcloud, ECR, ACR, pass, secretservice all speak it).
//! The registry's token auth (a `WWW-Authenticate: Bearer realm=…,service=…` challenge answered by a
//! token from the realm, scoped to each repository) is done by `oci-client` with these credentials.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        Ok(text) => {
            Ok(from_docker_config(&text, host, &path, &run_helper)?.unwrap_or_else(anonymous))
        }
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

/// What a credential helper answered for a registry: `None` when it has no credentials for it.
type HelperAnswer = Result<Option<HelperCredentials>, String>;

/// A credential helper's `get` answer.
#[derive(Debug, PartialEq, Eq)]
pub struct HelperCredentials {
    pub username: String,
    pub secret: String,
}

/// The credentials for `host` from a Docker config file's text; `helper(name, server)` runs a
/// credential helper. Keys may carry a scheme and a path (`https://index.docker.io/v1/`), so they
/// are compared by their host part.
fn from_docker_config(
    text: &str,
    host: &str,
    path: &Path,
    helper: &dyn Fn(&str, &str) -> HelperAnswer,
) -> Result<Option<Credentials>, String> {
    let config: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| format!("{}: not JSON: {error}", path.display()))?;
    let wanted = match host {
        "docker.io" => "index.docker.io",
        other => other,
    };
    // docker asks the helper for Docker Hub by its legacy URL, for other registries by host.
    let server = match wanted {
        "index.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    let helper_entry = config
        .get("credHelpers")
        .and_then(serde_json::Value::as_object)
        .and_then(|helpers| helpers.iter().find(|(key, _)| key_host(key) == wanted));
    let store = config.get("credsStore");
    let chosen = match (helper_entry, store) {
        (Some((key, name)), _) => Some((format!("credHelpers.{key:?}"), name)),
        (None, Some(name)) => Some(("credsStore".to_string(), name)),
        (None, None) => None,
    };
    if let Some((field, name)) = chosen {
        let field = format!("{}: {field}", path.display());
        let name = name
            .as_str()
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| format!("{field}: expected the name of a credential helper"))?;
        let program = format!("docker-credential-{name}");
        if let Some(found) = helper(name, server).map_err(|error| format!("{field}: {error}"))? {
            return Ok(Some(helper_credentials(found, &program)));
        }
    }
    let entry = config
        .get("auths")
        .and_then(serde_json::Value::as_object)
        .and_then(|auths| auths.iter().find(|(key, _)| key_host(key) == wanted));
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    if let Some(token) = entry
        .get("identitytoken")
        .and_then(serde_json::Value::as_str)
    {
        return Ok(Some(Credentials {
            source: format!("identity token from {}", path.display()),
            auth: identity_token_auth(token),
        }));
    }
    let Some(encoded) = entry.get("auth").and_then(serde_json::Value::as_str) else {
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

/// A helper's answer as credentials. The username `<token>` means the secret is an identity token.
fn helper_credentials(found: HelperCredentials, program: &str) -> Credentials {
    if found.username == "<token>" {
        Credentials {
            source: format!("identity token from {program}"),
            auth: identity_token_auth(&found.secret),
        }
    } else {
        Credentials {
            source: format!("user {:?} from {program}", found.username),
            auth: RegistryAuth::Basic(found.username, found.secret),
        }
    }
}

/// An identity token (`docker login`'s `identitytoken`, or a helper's `<token>` user) is sent as the
/// password of the token request to the registry's realm, with the user `<token>`, as oci-client sends
/// Basic credentials; docker itself instead exchanges it in an OAuth2 `refresh_token` grant, which
/// this command does not implement.
fn identity_token_auth(token: &str) -> RegistryAuth {
    RegistryAuth::Basic("<token>".to_string(), token.to_string())
}

/// Runs `docker-credential-NAME get` with `server` on stdin, as docker does.
fn run_helper(name: &str, server: &str) -> HelperAnswer {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {program}: {error} (is it on PATH?)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|error| format!("{program} get: writing the registry: {error}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| format!("{program} get: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_helper_answer(
        &program,
        output.status.success(),
        &stdout,
        &String::from_utf8_lossy(&output.stderr),
    )
}

/// A helper's exit and output: its JSON on success; on failure, "credentials not found" means it has
/// none for this registry, anything else is an error naming the helper.
fn parse_helper_answer(program: &str, success: bool, stdout: &str, stderr: &str) -> HelperAnswer {
    if !success {
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "{program} get failed: {}",
            format!("{} {}", stdout.trim(), stderr.trim()).trim()
        ));
    }
    let answer: serde_json::Value = serde_json::from_str(stdout)
        .map_err(|error| format!("{program} get: not JSON: {error}"))?;
    let field = |name: &str| {
        answer
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{program} get: no string {name:?} in its answer"))
    };
    Ok(Some(HelperCredentials {
        username: field("Username")?,
        secret: field("Secret")?,
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

    const CONFIG_WITHOUT_HELPERS: &str = r#"{
        "auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1Yi1zZWNyZXQ="},
            "registry.example.com:5000": {"auth": "YWxpY2U6czNjcjN0OndpdGg6Y29sb25z"},
            "helper.example.com": {}
        }
    }"#;

    fn no_helper(name: &str, _server: &str) -> HelperAnswer {
        panic!("no helper should run, but {name} did")
    }

    /// Stands in for credential helpers: `desktop` knows r.io, `ecr-login` knows ecr.example.com.
    fn stand_in_helpers(name: &str, server: &str) -> HelperAnswer {
        match (name, server) {
            ("desktop", "r.io") => Ok(Some(HelperCredentials {
                username: "carol".to_string(),
                secret: "from-desktop".to_string(),
            })),
            ("desktop", "https://index.docker.io/v1/") => Ok(Some(HelperCredentials {
                username: "<token>".to_string(),
                secret: "identity".to_string(),
            })),
            ("ecr-login", "ecr.example.com") => Ok(Some(HelperCredentials {
                username: "AWS".to_string(),
                secret: "ecr-password".to_string(),
            })),
            ("broken", _) => Err("docker-credential-broken get failed: boom".to_string()),
            _ => Ok(None),
        }
    }

    #[test]
    fn credential_helpers_come_first_then_the_store_then_auths() {
        let path = Path::new("config.json");
        let config = r#"{
            "auths": {"r.io": {}, "plain.example.com": {"auth": "Ym9iOnB3"}},
            "credsStore": "desktop",
            "credHelpers": {"ecr.example.com": "ecr-login", "bad.example.com": "broken"}
        }"#;
        let found = |host| from_docker_config(config, host, path, &stand_in_helpers);
        let credentials = found("ecr.example.com").unwrap().unwrap();
        assert_eq!(
            credentials.source,
            "user \"AWS\" from docker-credential-ecr-login"
        );
        assert_eq!(
            basic(Some(credentials)),
            Some(("AWS".to_string(), "ecr-password".to_string()))
        );
        let credentials = found("r.io").unwrap().unwrap();
        assert_eq!(
            credentials.source,
            "user \"carol\" from docker-credential-desktop"
        );
        // The store has nothing for it: the file's entry.
        assert_eq!(
            basic(found("plain.example.com").unwrap()),
            Some(("bob".to_string(), "pw".to_string()))
        );
        assert!(found("unknown.example.com").unwrap().is_none());
        let credentials = found("docker.io").unwrap().unwrap();
        assert_eq!(
            credentials.source,
            "identity token from docker-credential-desktop"
        );
        assert_eq!(
            basic(Some(credentials)),
            Some(("<token>".to_string(), "identity".to_string()))
        );
        let error = found("bad.example.com").err().unwrap();
        assert_eq!(error, "config.json: credHelpers.\"bad.example.com\": docker-credential-broken get failed: boom");
        let error = from_docker_config(r#"{"credsStore": 7}"#, "r.io", path, &stand_in_helpers)
            .err()
            .unwrap();
        assert_eq!(
            error,
            "config.json: credsStore: expected the name of a credential helper"
        );
    }

    #[test]
    fn helper_answers_are_read_or_named() {
        let program = "docker-credential-x";
        assert_eq!(
            parse_helper_answer(
                program,
                true,
                r#"{"ServerURL":"r.io","Username":"u","Secret":"s"}"#,
                ""
            ),
            Ok(Some(HelperCredentials {
                username: "u".to_string(),
                secret: "s".to_string()
            }))
        );
        assert_eq!(
            parse_helper_answer(
                program,
                false,
                "credentials not found in native keychain\n",
                ""
            ),
            Ok(None)
        );
        assert_eq!(
            parse_helper_answer(program, false, "", "locked\n"),
            Err("docker-credential-x get failed: locked".to_string())
        );
        assert_eq!(
            parse_helper_answer(program, true, r#"{"Username":"u"}"#, ""),
            Err("docker-credential-x get: no string \"Secret\" in its answer".to_string())
        );
    }

    #[test]
    fn identity_tokens_in_auths_are_used() {
        let config = r#"{"auths": {"acr.example.com": {"auth": "", "identitytoken": "refresh"}}}"#;
        let credentials =
            from_docker_config(config, "acr.example.com", Path::new("c.json"), &no_helper)
                .unwrap()
                .unwrap();
        assert_eq!(credentials.source, "identity token from c.json");
    }

    #[test]
    fn finds_the_registry_entry_by_host() {
        let path = Path::new("config.json");
        assert_eq!(
            basic(
                from_docker_config(
                    CONFIG_WITHOUT_HELPERS,
                    "registry.example.com:5000",
                    path,
                    &no_helper
                )
                .unwrap()
            ),
            Some(("alice".to_string(), "s3cr3t:with:colons".to_string()))
        );
        assert_eq!(
            basic(
                from_docker_config(CONFIG_WITHOUT_HELPERS, "docker.io", path, &no_helper).unwrap()
            ),
            Some(("hub".to_string(), "hub-secret".to_string()))
        );
        assert!(from_docker_config(
            CONFIG_WITHOUT_HELPERS,
            "registry.example.com",
            path,
            &no_helper
        )
        .unwrap()
        .is_none());
        assert!(from_docker_config(
            CONFIG_WITHOUT_HELPERS,
            "helper.example.com",
            path,
            &no_helper
        )
        .unwrap()
        .is_none());
        assert!(
            from_docker_config("{}", "registry.example.com", path, &no_helper)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_docker_config_names_the_file_and_field() {
        let path = Path::new("/home/u/.docker/config.json");
        let error = from_docker_config("{", "r.io", path, &no_helper)
            .err()
            .unwrap();
        assert!(
            error.starts_with("/home/u/.docker/config.json: not JSON"),
            "{error}"
        );
        let error = from_docker_config(
            r#"{"auths": {"r.io": {"auth": "%%%"}}}"#,
            "r.io",
            path,
            &no_helper,
        )
        .err()
        .unwrap();
        assert!(error.contains("auths.\"r.io\".auth: not base64"), "{error}");
        // base64("nocolon")
        let error = from_docker_config(
            r#"{"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}}"#,
            "r.io",
            path,
            &no_helper,
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
