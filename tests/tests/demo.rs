//! The demo's gateways (the configurations in `gateways/`, as `cargo xtask demo` runs them) behave
//! as the walk-through says, step by step.

use e2e::gateways::{GatewayPorts, LocalGateways};
use e2e::walkthrough::{assert_every_step_ok, walkthrough};

#[test]
fn every_walkthrough_step_behaves() {
    let gateways = LocalGateways::start(GatewayPorts::any()).unwrap();
    let steps = walkthrough(&gateways);
    assert!(steps.len() >= 3, "{steps:#?}");
    assert_every_step_ok(&steps);
}
