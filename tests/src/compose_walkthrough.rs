//! The seed's story on the docker-compose stack: the same steps as [`crate::walkthrough`], with
//! every request sent from the host through the published ingress gateway, and command-runner
//! making the outbound calls from inside the mesh network, through its sidecar. What reached each
//! service is read from what it printed (`docker compose logs`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::{self, HttpRequest, HttpResponse, Protocol};
use crate::compose::ComposeStack;
use crate::gateways::APP_HOST;
use crate::walkthrough::{
    check_each_logged_once, check_egress_decisions, check_egress_logged_once, check_ingress_denial,
    check_native_fields, check_routed_to_google, json_lines, note_response, read_until, Step,
    HTTP_STEPS_SENT,
};

pub fn walkthrough(stack: &ComposeStack) -> Vec<Step> {
    let ingress = match stack.ingress() {
        Ok(ingress) => ingress,
        Err(error) => return vec![Step::failed("find the ingress gateway", error)],
    };
    let mut steps = vec![
        app_step(stack, ingress),
        ingress_denial_step(stack, ingress),
    ];
    for host in ["www.google.com", "google.com"] {
        steps.push(egress_allowed_step(stack, ingress, host));
    }
    steps.push(unregistered_host_step(stack, ingress, "example.org"));
    steps.push(egress_denied_step(stack, ingress, "evil.example.com"));
    steps.push(no_way_around_step(stack, ingress, "www.google.com"));
    steps.push(passthrough_allowed_step(stack, ingress, "www.google.com"));
    steps.push(passthrough_denied_step(
        stack,
        ingress,
        Some("evil.example.com"),
    ));
    steps.push(passthrough_denied_step(stack, ingress, None));
    steps.push(access_log_step(stack));
    steps.push(ingress_access_log_step(stack));
    steps
}

/// The JSON lines `service` printed: each stand-in prints one per request it received.
fn printed_records(stack: &ComposeStack, service: &str) -> Vec<serde_json::Value> {
    json_lines(&stack.logs(service).unwrap_or_default())
}

fn send(step: &mut Step, ingress: SocketAddr, authority: &str, path: &str) -> Option<HttpResponse> {
    step.note(format!(
        "GET http://{authority}{path} (via the ingress gateway at {ingress})"
    ));
    let outcome = client::send(
        ingress,
        Protocol::Http1,
        None,
        &HttpRequest::get(authority, path),
    );
    note_response(step, outcome)
}

/// Has command-runner call `http://{host}/` through its sidecar.
fn fetch(step: &mut Step, ingress: SocketAddr, host: &str) -> Option<HttpResponse> {
    send(step, ingress, APP_HOST, &format!("/fetch?host={host}"))
}

fn app_step(stack: &ComposeStack, ingress: SocketAddr) -> Step {
    let mut step = Step::new("client → ingress gateway → command-runner");
    if let Some(response) = send(&mut step, ingress, APP_HOST, "/") {
        step.check(response.status == 200, "200 from command-runner");
        step.check(
            response.header("x-upstream") == Some("command-runner"),
            "served by command-runner",
        );
    }
    let reached = printed_records(stack, "command-runner")
        .iter()
        .any(|record| record["authority"] == APP_HOST);
    step.check(reached, "command-runner logged the request");
    step
}

fn ingress_denial_step(stack: &ComposeStack, ingress: SocketAddr) -> Step {
    let host = "attacker.example.com";
    let mut step = Step::new("client → ingress gateway with a name it does not serve: denied");
    if let Some(response) = send(&mut step, ingress, host, "/") {
        check_ingress_denial(&mut step, &response);
    }
    let reached = printed_records(stack, "command-runner")
        .iter()
        .any(|record| record["authority"] == host);
    step.check(!reached, "command-runner received nothing for it");
    step
}

fn egress_allowed_step(stack: &ComposeStack, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner → sidecar → egress gateway → {host}: allowed, tagged `google`"
    ));
    if let Some(response) = fetch(&mut step, ingress, host) {
        check_routed_to_google(&mut step, &response);
    }
    let tagged = printed_records(stack, "google-standin")
        .iter()
        .any(|record| record["authority"] == host && record["x-route-subset"] == "google");
    step.check(
        tagged,
        format!("the {host} stand-in logged it with Host {host} and x-route-subset: google"),
    );
    step
}

/// Nothing at all reached the rest of the internet: its stand-in printed no request.
fn check_internet_untouched(step: &mut Step, stack: &ComposeStack) {
    let received = printed_records(stack, "internet-standin");
    step.check(
        received.is_empty(),
        format!(
            "nothing reached the internet stand-in ({} request(s))",
            received.len()
        ),
    );
}

/// A host no ServiceEntry lists: the sidecar answers 502 itself (REGISTRY_ONLY).
fn unregistered_host_step(stack: &ComposeStack, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner → sidecar → {host} (no ServiceEntry): stopped at the sidecar"
    ));
    if let Some(response) = fetch(&mut step, ingress, host) {
        step.check(
            response.status == 502,
            "502 from the sidecar's block_all route (REGISTRY_ONLY)",
        );
    }
    check_internet_untouched(&mut step, stack);
    step
}

fn egress_denied_step(stack: &ComposeStack, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner → sidecar → egress gateway → {host} (a ServiceEntry, not allowlisted): denied"
    ));
    if let Some(response) = fetch(&mut step, ingress, host) {
        step.check(response.status == 403, "403 from the egress host-allowlist");
    }
    check_internet_untouched(&mut step, stack);
    step
}

/// The network separation: on the mesh network, command-runner cannot reach the outside by
/// itself; its sidecar and the egress gateway are its only way out.
fn no_way_around_step(stack: &ComposeStack, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner → {host} directly, around its sidecar and the egress gateway: no route"
    ));
    let before = printed_records(stack, "google-standin").len();
    if let Some(response) = send(
        &mut step,
        ingress,
        APP_HOST,
        &format!("/direct?host={host}"),
    ) {
        step.check(
            response.status == 502,
            "502: command-runner found no way to it",
        );
    }
    step.check(
        printed_records(stack, "google-standin").len() == before,
        format!("the {host} stand-in received nothing"),
    );
    step
}

fn passthrough_allowed_step(stack: &ComposeStack, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner → sidecar → egress gateway → {host}:443 (TLS passthrough): allowed by SNI"
    ));
    if let Some(response) = send(&mut step, ingress, APP_HOST, &format!("/tls?sni={host}")) {
        step.check(
            response.status == 200,
            "200 from the stand-in, over TLS it terminated itself (command-runner verified its certificate)",
        );
        step.check(
            response.header("x-egress-upstream") == Some("google"),
            "served by the google stand-in",
        );
    }
    let saw_sni = printed_records(stack, "google-standin")
        .iter()
        .any(|record| record["sni"] == host);
    step.check(saw_sni, format!("the {host} stand-in saw SNI {host}"));
    step
}

/// TLS for evil.example.com (a ServiceEntry) reaches the egress gateway, whose allowlist closes
/// it; TLS without SNI matches no ServiceEntry and the sidecar sends it to the BlackHoleCluster.
fn passthrough_denied_step(stack: &ComposeStack, ingress: SocketAddr, sni: Option<&str>) -> Step {
    let mut step = Step::new(match sni {
        Some(sni) => format!(
            "command-runner → sidecar → egress gateway, TLS with SNI {sni}: closed by the allowlist"
        ),
        None => "command-runner → sidecar, TLS without SNI: closed at the sidecar (REGISTRY_ONLY)"
            .to_string(),
    });
    let path = match sni {
        Some(sni) => format!("/tls?sni={sni}"),
        None => "/tls".to_string(),
    };
    if let Some(response) = send(&mut step, ingress, APP_HOST, &path) {
        let body = response.body_text();
        step.check(
            response.status == 502 && body.contains("TLS handshake failed"),
            "the connection was closed during the handshake",
        );
    }
    check_internet_untouched(&mut step, stack);
    step
}

/// Envoy's own access logger wrote its JSON records to the egress gateway's stdout, as pure JSON
/// lines among Envoy's log lines.
fn access_log_step(stack: &ComposeStack) -> Step {
    let mut step = Step::new(
        "the egress gateway logged every request and connection as JSON (docker compose logs)",
    );
    // A connection's record is written when it closes; the file logger flushes every second.
    let records = read_until(
        Duration::from_secs(10),
        || printed_records(stack, "egress-gateway"),
        |records| records.len() >= 5,
    );
    for record in &records {
        step.note(record.to_string());
    }
    check_egress_decisions(&mut step, &records, true);
    check_native_fields(&mut step, &records);
    check_egress_logged_once(&mut step, &records);
    step
}

/// Every request the walk-through sent to the ingress gateway is in its JSON log once.
fn ingress_access_log_step(stack: &ComposeStack) -> Step {
    let mut step =
        Step::new("the ingress gateway logged every request once, as JSON (docker compose logs)");
    let sent: Vec<(&str, &str)> = HTTP_STEPS_SENT
        .into_iter()
        .chain([
            (APP_HOST, "/direct?host=www.google.com"),
            (APP_HOST, "/tls?sni=www.google.com"),
            (APP_HOST, "/tls?sni=evil.example.com"),
            (APP_HOST, "/tls"),
        ])
        .collect();
    let records = read_until(
        Duration::from_secs(10),
        || printed_records(stack, "ingress-gateway"),
        |records| records.len() >= sent.len(),
    );
    check_each_logged_once(&mut step, &records, &sent);
    check_native_fields(&mut step, &records);
    step
}
