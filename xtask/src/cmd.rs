//! Running external commands with their command line shown, and failures that say what failed.

use std::process::Command;

use e2e::modules;

/// Shows and runs `command`; `Err` names it when it cannot start or fails.
pub fn run(command: &mut Command) -> Result<(), String> {
    let shown = show(command);
    println!("$ {shown}");
    let status = command
        .status()
        .map_err(|error| format!("cannot run `{shown}`: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Runs `command` quietly and returns its stdout, or `None` when it cannot run or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn show(command: &Command) -> String {
    let mut shown = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// Builds the filter modules (release, wasm32-wasip1) as the e2e harness does, and shows them.
pub fn build_modules() -> Result<(), String> {
    println!("$ {}", show(&modules::build_command()));
    modules::build_once()?;
    for module in modules::Module::ALL {
        let path = e2e::paths::wasm_dir().join(module.file_name());
        let size = std::fs::metadata(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?
            .len();
        println!("built {} ({size} bytes)", path.display());
    }
    Ok(())
}
