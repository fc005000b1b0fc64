//! Progress on long steps (compiling a large component takes seconds): a spinner on stderr when
//! it is a terminal, nothing otherwise, so piped and captured output stays clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows `message` with a spinner while `step` runs.
pub fn step<T>(message: &str, step: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return step();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"));
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(100));
    let value = step();
    spinner.finish_and_clear();
    value
}
