//! Progress bars on a terminal; nothing at all when stderr is piped or redirected.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A byte-counting bar for `total` bytes, hidden when stderr is not a terminal.
pub fn bytes_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if interactive() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10.bold} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}")
            .expect("progress template is valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    bar
}

/// A status line for the user; goes to stderr so stdout stays clean for scripts.
pub fn note(message: impl std::fmt::Display) {
    eprintln!("{message}");
}

pub fn human_bytes(bytes: i64) -> String {
    indicatif::BinaryBytes(bytes.max(0) as u64).to_string()
}
