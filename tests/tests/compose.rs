//! docker-compose runs the very gateway configurations that the demo and these tests run: each
//! gateway service mounts `gateways/`, renders its template with `gateways/run-envoy.sh` from its
//! environment, and the result equals the harness's rendering and is a configuration Envoy 1.40
//! accepts with the built modules (the sidecar loads none).

use std::collections::BTreeMap;
use std::process::Command;

use e2e::envoy;
use e2e::paths;
use e2e::template::{self, Vars};

const CONTAINER_GATEWAYS: &str = "/etc/gateway-wasm/gateways";
const CONTAINER_MODULES: &str = "/etc/gateway-wasm/wasm";

struct GatewayService {
    name: String,
    template: String,
    environment: BTreeMap<String, String>,
}

fn compose() -> serde_json::Value {
    let text = std::fs::read_to_string(paths::workspace_root().join("docker-compose.yml")).unwrap();
    let mut value: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    serde_json::to_value(value).unwrap()
}

fn gateway_services() -> Vec<GatewayService> {
    let compose = compose();
    let services = compose["services"].as_object().unwrap();
    let mut gateways = Vec::new();
    for (name, service) in services {
        let entrypoint: Vec<&str> = service["entrypoint"]
            .as_array()
            .map(|args| args.iter().filter_map(|arg| arg.as_str()).collect())
            .unwrap_or_default();
        if !entrypoint.iter().any(|arg| arg.ends_with("/run-envoy.sh")) {
            continue;
        }
        assert_eq!(
            service["image"], "${ENVOY_IMAGE:-envoyproxy/envoy:v1.40.0}",
            "{name}: the gateways run Envoy 1.40 (the registry's image unless ENVOY_IMAGE names another)"
        );
        let volumes: Vec<&str> = service["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(
            volumes.contains(&format!("./gateways:{CONTAINER_GATEWAYS}:ro").as_str()),
            "{name}: mounts gateways/ ({volumes:?})"
        );
        // Where `cargo xtask build` installs the modules with the default target directory.
        let modules = paths::wasm_dir();
        let modules = modules.strip_prefix(paths::target_dir()).unwrap();
        assert!(
            volumes.contains(
                &format!("./target/{}:{CONTAINER_MODULES}:ro", modules.display()).as_str()
            ),
            "{name}: mounts the modules `cargo xtask build` installs ({volumes:?})"
        );
        let template = entrypoint
            .last()
            .and_then(|path| path.strip_prefix(&format!("{CONTAINER_GATEWAYS}/")))
            .unwrap_or_else(|| {
                panic!("{name}: the entrypoint's template is not under {CONTAINER_GATEWAYS}")
            })
            .to_string();
        // The sidecar loads no Wasm module; the gateways load the mounted ones.
        let loads_modules = std::fs::read_to_string(paths::gateway_configs_dir().join(&template))
            .unwrap()
            .contains("{{WASM_DIR}}");
        if loads_modules {
            assert_eq!(
                service["environment"]["WASM_DIR"], CONTAINER_MODULES,
                "{name}: loads the mounted modules"
            );
        }
        let environment = service["environment"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), value)
            })
            .collect();
        gateways.push(GatewayService {
            name: name.clone(),
            template,
            environment,
        });
    }
    gateways
}

fn render_with_script(template: &str, environment: &BTreeMap<String, String>) -> String {
    let output = Command::new("sh")
        .arg(paths::gateway_configs_dir().join("run-envoy.sh"))
        .arg(paths::gateway_configs_dir().join(template))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RENDER_ONLY", "1")
        .envs(environment)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "run-envoy.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn render_with_harness(template: &str, environment: &BTreeMap<String, String>) -> String {
    let mut vars = Vars::new();
    for (key, value) in environment {
        vars.insert(key, value);
    }
    template::render_file(&paths::gateway_configs_dir().join(template), &vars).unwrap()
}

#[test]
fn compose_gateways_run_the_shared_configurations() {
    let gateways = gateway_services();
    let names: Vec<&str> = gateways.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["egress-gateway", "ingress-gateway", "sidecar"]);
    let wasm_dir = e2e::modules::Module::HostAllowlist
        .path()
        .parent()
        .unwrap()
        .display()
        .to_string();
    for gateway in gateways {
        let script = render_with_script(&gateway.template, &gateway.environment);
        assert_eq!(
            script,
            render_with_harness(&gateway.template, &gateway.environment),
            "{}",
            gateway.name
        );

        // The same rendering, with the modules where this machine built them, is a configuration
        // Envoy accepts: every Wasm plugin loads and accepts its configuration.
        let mut local = gateway.environment.clone();
        let loads_modules = local.contains_key("WASM_DIR");
        if loads_modules {
            local.insert("WASM_DIR".to_string(), wasm_dir.clone());
        }
        let log = envoy::validate(&render_with_harness(&gateway.template, &local))
            .unwrap_or_else(|error| panic!("{}: {error}", gateway.name));
        if loads_modules {
            assert!(
                log.contains("configuration accepted"),
                "{}: {log}",
                gateway.name
            );
        }
    }
}

#[test]
fn run_envoy_refuses_a_missing_variable() {
    let output = Command::new("sh")
        .arg(paths::gateway_configs_dir().join("run-envoy.sh"))
        .arg(paths::gateway_configs_dir().join("ingress-gateway.yaml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RENDER_ONLY", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs the environment variable"));
}
