//! `cargo xtask demo`: the local ingress and egress gateways and command-runner's sidecar, as
//! rendered from wasm-plugins-manifests/, a scripted walk through the seed's story, then (without
//! `--once`) the gateways stay up for you until Ctrl-C. With `--docker`, the same story on the
//! docker-compose stack, with the images built here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::compose::{ComposeStack, IngressPort};
use e2e::gateways::{GatewayPorts, LocalGateways, APP_HOST};
use e2e::walkthrough::{self, Step};
use e2e::{compose_walkthrough, envoy};

use crate::system_packages::Purpose;
use crate::{cmd, images, setup};

/// The demo's compose project, and where it publishes the ingress gateway.
const DOCKER_PROJECT: &str = "gateway-wasm-demo";
const DOCKER_INGRESS_PORT: u16 = 10080;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut once = false;
    let mut docker = false;
    for arg in args {
        match arg.as_str() {
            "--once" => once = true,
            "--docker" => docker = true,
            _ => {
                return Err(format!(
                    "unexpected argument {arg:?}: the options are --once and --docker"
                ))
            }
        }
    }
    let envoy_bin = setup::for_gateways(Purpose::Demo)?;
    cmd::build_modules()?;
    if docker {
        images::build(&envoy_bin)?;
        return run_docker(once);
    }

    println!("\nStarting the local gateways (Envoy 1.40, filters in V8)…");
    let local = LocalGateways::start(GatewayPorts::demo())?;
    let ingress = local.ingress_http()?;
    let egress = local.egress_http()?;
    let egress_tls = local.egress_tls()?;
    let sidecar = local.sidecar_http()?;
    let sidecar_tls = local.sidecar_tls()?;
    println!(
        "  ingress gateway  http://{ingress}  admin http://{}",
        local.ingress.admin_addr()
    );
    println!(
        "  egress gateway   http://{egress}  TLS passthrough {egress_tls}  admin http://{}",
        local.egress.admin_addr()
    );
    println!(
        "  command-runner app (behind ingress) 127.0.0.1:{}, its outbound calls through its sidecar",
        local.app.port()
    );
    println!(
        "  command-runner's sidecar   http://{sidecar}  TLS {sidecar_tls}  admin http://{}",
        local.sidecar.admin_addr()
    );
    println!(
        "  stand-ins behind egress: www.google.com/google.com 127.0.0.1:{} (TLS :{}), rest of the internet 127.0.0.1:{} (TLS :{})",
        local.google.port(),
        local.google_tls.port(),
        local.internet.port(),
        local.internet_tls.port(),
    );
    println!(
        "  configurations: gateways/ingress-gateway.yaml, gateways/egress-gateway.yaml, gateways/sidecar.yaml\n  \
         (rendered from wasm-plugins-manifests/ by `cargo xtask render`)"
    );
    println!(
        "  JSON access logs (Envoy's access logger): {} and {}",
        LocalGateways::access_log_path(&local.ingress).display(),
        LocalGateways::access_log_path(&local.egress).display()
    );

    let failed = print_steps(&walkthrough::walkthrough(&local));
    if failed > 0 {
        println!(
            "\ningress gateway log (last lines):\n{}",
            envoy::tail(&local.ingress.log(), 20)
        );
        println!(
            "\negress gateway log (last lines):\n{}",
            envoy::tail(&local.egress.log(), 20)
        );
        println!(
            "\nsidecar log (last lines):\n{}",
            envoy::tail(&local.sidecar.log(), 20)
        );
        return Err(format!("{failed} demo step(s) did not behave"));
    }
    if once {
        return Ok(());
    }

    println!("\nThe gateways stay up. Try:");
    println!("  curl -i -H 'Host: {APP_HOST}' http://{ingress}/");
    println!("  curl -i -H 'Host: {APP_HOST}' 'http://{ingress}/fetch?host=www.google.com'");
    println!("  curl -i -H 'Host: {APP_HOST}' 'http://{ingress}/fetch?host=evil.example.com'");
    println!("  curl -i -H 'Host: example.org' http://{sidecar}/   # 502: no ServiceEntry");
    println!(
        "  curl -i -H 'Host: evil.example.com' http://{sidecar}/   # 403 from the egress gateway"
    );
    println!("  curl -i -H 'Host: evil.example.com' http://{egress}/");
    println!(
        "  tail -f {}",
        LocalGateways::access_log_path(&local.egress).display()
    );
    println!(
        "  curl -s http://{}/stats | grep wasm",
        local.egress.admin_addr()
    );
    println!("Press Ctrl-C to stop.");
    wait_for_interrupt();
    println!("\nStopping.");
    Ok(())
}

/// The same walk-through on the docker-compose stack; the stack is taken down at the end (or on
/// Ctrl-C without `--once`).
fn run_docker(once: bool) -> Result<(), String> {
    println!("\nStarting the docker-compose stack (project {DOCKER_PROJECT})…");
    let stack = ComposeStack::up(DOCKER_PROJECT, IngressPort::Fixed(DOCKER_INGRESS_PORT), &[])?;
    let ingress = stack.ingress()?;
    println!("  ingress gateway  http://{ingress} (the only published port)");
    println!(
        "  networks: edge (ingress), mesh (ingress, command-runner and its sidecar, egress), outside (egress, stand-ins)"
    );
    let failed = print_steps(&compose_walkthrough::walkthrough(&stack));
    if failed > 0 {
        for service in ["ingress-gateway", "egress-gateway"] {
            let logs = stack.logs(service).unwrap_or_else(|error| error);
            println!("\n{service} log (last lines):\n{}", envoy::tail(&logs, 20));
        }
        return Err(format!("{failed} demo step(s) did not behave"));
    }
    if once {
        return Ok(());
    }
    println!("\nThe stack stays up. Try:");
    println!("  curl -i -H 'Host: {APP_HOST}' 'http://{ingress}/fetch?host=www.google.com'");
    println!("  curl -i -H 'Host: {APP_HOST}' 'http://{ingress}/tls?sni=evil.example.com'");
    println!("  docker-compose -p {DOCKER_PROJECT} logs egress-gateway");
    println!("Press Ctrl-C to stop (the stack is then taken down).");
    wait_for_interrupt();
    println!("\nStopping.");
    Ok(())
}

/// Prints each step with its checks; returns how many did not behave.
fn print_steps(steps: &[Step]) -> usize {
    println!("\nWalk-through:");
    let total = steps.len();
    for (number, step) in steps.iter().enumerate() {
        let verdict = if step.ok { "ok" } else { "UNEXPECTED" };
        println!("\n[{}/{total}] {} … {verdict}", number + 1, step.title);
        for detail in &step.details {
            println!("      {detail}");
        }
    }
    let failed = steps.iter().filter(|step| !step.ok).count();
    println!("\n{} of {total} steps behaved as expected.", total - failed);
    failed
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Blocks until SIGINT or SIGTERM; the gateways are then dropped, which stops every process.
fn wait_for_interrupt() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    while !INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}
