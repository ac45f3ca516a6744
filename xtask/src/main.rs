//! `cargo xtask <command>`: the project's commands, in Rust so they run wherever cargo does.

mod bench;
mod check_config;
mod cmd;
mod demo;
mod fuzz;
mod images;
mod oci;
mod render;
mod setup;
mod soak;
mod system_packages;
mod test;
mod traffic;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup            install what `test` needs and is missing: Debian packages (nodejs,
                   docker-registry, skopeo, apache2-utils; as root or with `sudo -n`), Rust targets,
                   Envoy 1.40, wasm-bindgen-test-runner
  build            build the filter modules (release, wasm32-wasip1)
  images           build the docker-compose stack's images locally, pulling nothing:
                   gateway-wasm/envoy:1.40.0-local (setup's Envoy 1.40) and gateway-wasm/standin:local
  test [ARGS…]     setup + build + lint + every test (unit, end-to-end in real Envoy, core on wasm,
                   the docker-compose stack on the Docker Engine: required when CI=true);
                   ARGS go to `cargo test --workspace` (e.g. `-- allowlist` to filter)
  demo [--once] [--docker]
                   Envoy + build + local ingress and egress gateways with a scripted walk-through;
                   stays up until Ctrl-C, or exits after the script with --once; --docker: the same
                   on the docker-compose stack (images built here, ingress on 127.0.0.1:10080)
  render           render the local gateways and sidecar in gateways/ from wasm-plugins-manifests/
                   by istiod's rules (a test fails when a committed rendering is stale)
  bench [--quick] [--only a,b]
                   Envoy, wrk, valgrind, h2load + build, then measure side by side (interleaved rounds, Envoy pinned to one
                   core, wrk on the other): plain Envoy, native RBAC + header + JSON log, Lua, a
                   do-nothing Wasm filter, each filter, the suite, the combined module, allowlist
                   sizes; writes BENCHMARKS.md.
                   --quick: fewer, shorter rounds (under 3 minutes)
                   --only: these variants and plain Envoy; prints the table, leaves BENCHMARKS.md
  check-config [--filter NAME] FILE
                   validate plugin configurations with the filters' own parsers: a JSON file (for
                   --filter host-allowlist|subset-tagger|access-log|gateway), or YAML with WasmPlugin
                   resources (each pluginConfig, for the filter its url names); prints each one's
                   field-named errors and warnings; fails when any configuration would be refused
  fuzz --time N [TARGET…]
                   run each cargo-fuzz target in fuzz/ for N seconds (nightly; installs cargo-fuzz
                   if missing); reports time, executions and findings; fails on a crash
  soak [--requests N]
                   N requests (default 1000000), allowed/tagged and denied, HTTP/1.1 and HTTP/2,
                   through the demo's egress gateway in real Envoy; reports unexpected answers, Envoy
                   RSS and Wasm memory growth after warm-up, and access-log accounting
  load [--seconds S]
                   S seconds (default 60) saturating Envoy's one worker; reports rate, how busy the
                   worker was, unexpected answers and access-log accounting
  oci build [--variant compat|oci|all] [--out DIR]
                   build the modules, then per filter an OCI image layout in
                   DIR/<filter>/<variant>/ (default DIR: target/oci); prints each manifest digest
  oci push --registry HOST[:PORT]/REPO --tag T [--variant compat|oci] [--out DIR]
           [--manifests DIR] [--overlay DIR] [--write-manifests] [--ca-file PEM] [--insecure]
                   build, then push each filter (four images) as HOST[:PORT]/REPO/<filter>:T with
                   provenance annotations, and write a Kustomize overlay (default DIR:
                   target/oci/pinned-overlay) pinning url and sha256 of each WasmPlugin in the
                   manifests (default DIR: wasm-plugins-manifests), which stay untouched unless
                   --write-manifests; credentials: OCI_USERNAME/OCI_PASSWORD, else
                   $DOCKER_CONFIG/config.json (~/.docker/config.json): credHelpers, credsStore
                   (docker-credential-NAME get), auths; else anonymous; token auth when the
                   registry asks for it; --ca-file: also trust this CA; --insecure: plain HTTP
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        "setup" => setup::for_tests().map(|_| ()),
        "build" => cmd::build_modules(),
        "images" => images::run(rest),
        "test" => test::run(rest),
        "demo" => demo::run(rest),
        "render" => render::run(rest),
        "bench" => bench::run(rest),
        "check-config" => check_config::run(rest),
        "oci" => oci::run(rest),
        "fuzz" => fuzz::run(rest),
        "soak" => soak::soak(rest),
        "load" => soak::load(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {command}: error: {message}");
            ExitCode::FAILURE
        }
    }
}
