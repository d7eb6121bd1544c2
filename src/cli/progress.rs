//! A progress bar for commands that work through a known number of things (`e2b replay`,
//! `e2b resend`): one line redrawn on a terminal, one line per thing otherwise (logs, CI), and
//! failures always on their own line.

use std::io::IsTerminal;

pub struct Progress {
    command: &'static str,
    /// What is counted: "objects", "records".
    noun: &'static str,
    total: usize,
    done: usize,
    failed: usize,
    terminal: bool,
}

impl Progress {
    pub fn new(command: &'static str, noun: &'static str, total: usize) -> Self {
        Progress {
            command,
            noun,
            total,
            done: 0,
            failed: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self) -> String {
        let width = 30;
        let filled = (self.done * width)
            .checked_div(self.total)
            .unwrap_or(width)
            .min(width);
        format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
    }

    /// One more done; `detail` follows the count on the bar ("120 events"), `line` is the
    /// line written where there is no terminal.
    pub fn step(&mut self, detail: &str, line: &str) {
        self.done += 1;
        if self.terminal {
            eprint!(
                "\r{} {}/{} {}, {detail}, {} failed   ",
                self.bar(),
                self.done,
                self.total,
                self.noun,
                self.failed
            );
        } else {
            eprintln!("{}: {line}", self.command);
        }
    }

    /// One more done, and failed.
    pub fn fail(&mut self, line: &str) {
        self.done += 1;
        self.failed += 1;
        if self.terminal {
            eprintln!();
        }
        eprintln!("{}: failed: {line}", self.command);
    }

    /// Ends the bar's line; `summary` is the closing count.
    pub fn finish(&self, summary: &str) {
        if self.terminal {
            eprintln!();
        }
        eprintln!("{}: {summary}", self.command);
    }
}
