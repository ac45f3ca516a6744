//! Where `oci push` puts the images: `--registry HOST[:PORT]/REPO` and `--tag T`, checked against the
//! OCI distribution spec's grammar so a typo fails here, naming the option, not at the registry.

/// A registry host and the repository prefix under which each filter gets its own repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `HOST[:PORT]`
    pub host: String,
    /// `REPO`, one or more `/`-separated path components
    pub repository_prefix: String,
    pub tag: String,
}

impl Destination {
    pub fn parse(registry: &str, tag: &str) -> Result<Destination, String> {
        let (host, repository_prefix) = parse_registry(registry)
            .map_err(|reason| format!("--registry {registry:?}: {reason}"))?;
        check_tag(tag).map_err(|reason| format!("--tag {tag:?}: {reason}"))?;
        Ok(Destination {
            host: host.to_string(),
            repository_prefix: repository_prefix.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The repository of one filter's image, e.g. `gateway-wasm/host-allowlist`.
    pub fn repository(&self, filter: &str) -> String {
        format!("{}/{filter}", self.repository_prefix)
    }

    /// The image reference without scheme: `HOST[:PORT]/REPO/<filter>:<tag>`.
    pub fn image(&self, filter: &str) -> String {
        format!("{}/{}:{}", self.host, self.repository(filter), self.tag)
    }
}

fn parse_registry(registry: &str) -> Result<(&str, &str), String> {
    if registry.contains("://") {
        return Err(
            "expected HOST[:PORT]/REPO without a scheme (use --insecure for plain HTTP)"
                .to_string(),
        );
    }
    let Some((host, repository)) = registry.split_once('/') else {
        return Err(
            "expected HOST[:PORT]/REPO, e.g. registry.example.com/gateway-wasm".to_string(),
        );
    };
    check_host(host)?;
    for component in repository.split('/') {
        check_path_component(component)?;
    }
    Ok((host, repository))
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || !name.split('.').all(label_ok) {
        return Err(format!("host {name:?} is not a DNS name or IPv4 address"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {}
            _ => return Err(format!("port {port:?} is not a number from 1 to 65535")),
        }
    }
    Ok(())
}

/// A repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, i.e. it starts and ends with
/// a lowercase letter or digit, and whatever lies between two of those is one allowed separator.
fn check_path_component(component: &str) -> Result<(), String> {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let separators_ok = component.split(alphanumeric).all(|separator| {
        matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|byte| byte == b'-')
    });
    if component.starts_with(alphanumeric) && component.ends_with(alphanumeric) && separators_ok {
        Ok(())
    } else {
        Err(format!(
            "repository component {component:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
        ))
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err("a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_and_nested_repository() {
        let destination = Destination::parse("127.0.0.1:5000/team/gateway-wasm", "v1.2.0").unwrap();
        assert_eq!(destination.host, "127.0.0.1:5000");
        assert_eq!(
            destination.image("host-allowlist"),
            "127.0.0.1:5000/team/gateway-wasm/host-allowlist:v1.2.0"
        );
        let destination = Destination::parse("ghcr.io/acme/wasm_filters.x", "latest").unwrap();
        assert_eq!(
            destination.repository("access-log"),
            "acme/wasm_filters.x/access-log"
        );
    }

    #[test]
    fn rejects_malformed_registries_naming_the_option() {
        for (registry, reason) in [
            ("registry.example.com", "expected HOST[:PORT]/REPO"),
            ("https://registry.example.com/repo", "without a scheme"),
            ("registry.example.com:99999/repo", "port \"99999\""),
            ("registry.example.com:/repo", "port \"\""),
            ("/repo", "host \"\""),
            ("bad_host/repo", "host \"bad_host\""),
            ("registry.example.com/Repo", "component \"Repo\""),
            ("registry.example.com/repo/", "component \"\""),
            ("registry.example.com/re--po-", "component \"re--po-\""),
            ("registry.example.com/a..b", "component \"a..b\""),
        ] {
            let error = Destination::parse(registry, "v1").unwrap_err();
            assert!(
                error.starts_with(&format!("--registry {registry:?}: ")),
                "{error}"
            );
            assert!(error.contains(reason), "{registry}: {error}");
        }
        assert!(Destination::parse("r.io/a__b-c--d.e", "v1").is_ok());
    }

    #[test]
    fn rejects_malformed_tags_naming_the_option() {
        for tag in ["", "-v1", ".v1", "v1:2", "v1/2", &"x".repeat(129)] {
            let error = Destination::parse("r.io/repo", tag).unwrap_err();
            assert!(error.starts_with("--tag "), "{error}");
        }
        assert!(Destination::parse("r.io/repo", "_v1.2-rc.1").is_ok());
    }
}
