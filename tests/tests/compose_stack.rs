//! docker-compose.yml, run: the stack starts on the Docker Engine with the images of `cargo xtask
//! images`, the demo's story holds through its containers, and no stack outlives its test.
//! Built only with the `docker` feature: `cargo xtask test` enables it when an engine answers
//! (and fails under CI=true when none does).

use e2e::compose::{self, ComposeStack, IngressPort, TEST_PROJECT_PREFIX as PREFIX};
use e2e::compose_walkthrough;

#[test]
fn the_demo_story_runs_in_the_containers() {
    let project = compose::unique_project(PREFIX);
    let stack = ComposeStack::up(&project, IngressPort::Any, &[]).unwrap();
    let steps = compose_walkthrough::walkthrough(&stack);
    let mut report = String::new();
    for step in &steps {
        report.push_str(&format!(
            "\n[{}] {}\n",
            if step.ok { "ok" } else { "UNEXPECTED" },
            step.title
        ));
        for detail in &step.details {
            report.push_str(&format!("      {detail}\n"));
        }
    }
    let failed = steps.iter().filter(|step| !step.ok).count();
    assert_eq!(failed, 0, "{failed} step(s) did not behave:{report}");
    drop(stack);
    assert_eq!(compose::leftovers(&project).unwrap(), Vec::<String>::new());
}

/// A test that fails while its stack is up leaves nothing behind: the guard takes the project
/// down while the panic unwinds.
#[test]
fn a_failed_test_leaves_no_stack_running() {
    let project = compose::unique_project(PREFIX);
    let (seen_up, what_ran) = std::sync::mpsc::channel();
    let failing = {
        let project = project.clone();
        std::thread::spawn(move || {
            let _stack =
                ComposeStack::up(&project, IngressPort::Any, &["internet-standin"]).unwrap();
            let _ = seen_up.send(compose::leftovers(&project).unwrap());
            panic!("a step failed while the stack was up");
        })
    };
    let outcome = failing.join();
    let running = what_ran
        .recv()
        .expect("the stack came up before the failure");
    assert!(
        running.iter().any(|name| name.starts_with("container ")),
        "the stack was up: {running:?}"
    );
    assert!(outcome.is_err(), "the failing test failed");
    assert_eq!(compose::leftovers(&project).unwrap(), Vec::<String>::new());
}

/// A stack whose test process was killed (no guard ran) is taken down by the next run (`cargo
/// xtask test` sweeps before the tests; only this test sweeps while they run).
#[test]
fn a_killed_test_run_leaves_no_stack_running() {
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    exited.wait().unwrap();
    let project = compose::project_of_process(PREFIX, exited.id());
    let stack = ComposeStack::up(&project, IngressPort::Any, &["internet-standin"]).unwrap();
    // As if the process had been killed: its guard never runs.
    std::mem::forget(stack);
    assert_ne!(compose::leftovers(&project).unwrap(), Vec::<String>::new());

    compose::remove_abandoned(PREFIX).unwrap();
    assert_eq!(compose::leftovers(&project).unwrap(), Vec::<String>::new());
}
