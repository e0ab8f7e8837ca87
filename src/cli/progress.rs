//! How `ssofs recover` shows its progress: a bar of bytes on a terminal (indicatif), one line per
//! file otherwise, so a log or a pipe gets plain lines without control characters.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ssofs::recover::Progress;

pub struct Shown {
    /// What is done to each file: "uploaded", "exported".
    verb: &'static str,
    /// Drawn on stderr, only when it is a terminal.
    bar: Option<ProgressBar>,
    /// Files handled so far, of how many.
    files: Cell<(usize, usize)>,
}

impl Shown {
    pub fn new(verb: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let template = "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)";
            let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Shown { verb, bar, files: Cell::new((0, 0)) }
    }

    /// Removes the bar (the lines printed above it stay).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Counts one more file handled and shows `line` for it.
    fn one_more(&self, line: String, bytes: u64) {
        let (n, total) = self.files.get();
        let n = n + 1;
        self.files.set((n, total));
        match &self.bar {
            Some(bar) => {
                bar.inc(bytes);
                bar.set_message(format!("{} {n}/{total} files", self.verb));
                bar.println(line);
            }
            None => println!("[{n}/{total}] {line}"),
        }
    }
}

impl Progress for Shown {
    fn start(&self, files: usize, bytes: u64) {
        let (done, total) = self.files.get();
        self.files.set((done, total + files));
        if let Some(bar) = &self.bar {
            bar.inc_length(bytes);
            bar.set_message(format!("{} {done}/{} files", self.verb, total + files));
        }
    }

    fn done(&self, what: &str, bytes: u64) {
        self.one_more(format!("{} {what} ({bytes} bytes)", self.verb), bytes);
    }

    fn failed(&self, why: &str, bytes: u64) {
        self.one_more(format!("not recovered: {why}"), bytes);
    }
}
