//! One environment reader for every component: the forwarder, the processor and the CLI.
//!
//! Rules, the same for every variable:
//! - a variable that is unset, empty or only blanks is not set; values are trimmed;
//! - a flag is `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, in any case; anything else is a
//!   problem named by the variable;
//! - a number is a whole number within its bounds, else a problem;
//! - every problem is collected, so start-up reports them all at once, and the error names the
//!   component whose configuration it is.

use thiserror::Error;

/// Settings that are wrong or missing, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the {component}'s configuration is not usable: {}", problems.join("; "))]
pub struct ConfigError {
    /// `forwarder`, `processor`, ...
    pub component: &'static str,
    pub problems: Vec<String>,
}

/// Reads variables through a lookup (the process environment, or a map in tests) and collects
/// what is wrong with them.
pub struct Env<'a> {
    component: &'static str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

/// The process environment, as a lookup.
pub fn process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<'a> Env<'a> {
    pub fn new(component: &'static str, lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env {
            component,
            lookup,
            problems: Vec::new(),
        }
    }

    /// Records a problem (the text names the variable).
    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// A set, non-blank variable, trimmed.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A flag; unset is `false`.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(other) => {
                self.problem(format!("{name} `{other}` is not true or false"));
                false
            }
        }
    }

    /// A whole number in `min..=max`; unset is `default`.
    pub fn number(&mut self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(text) = self.text(name) else {
            return default;
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(format!(
                    "{name} `{text}` is not a whole number from {min} to {max}"
                ));
                default
            }
        }
    }

    /// `Err` with every problem recorded, if any.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// The problems recorded so far, as the component's error.
    pub fn error(self) -> ConfigError {
        ConfigError {
            component: self.component,
            problems: self.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_read_the_same_everywhere() {
        let lookup = with(&[("A", " Yes "), ("B", "OFF"), ("C", "  "), ("D", "maybe")]);
        let mut env = Env::new("processor", &lookup);
        assert!(env.flag("A"));
        assert!(!env.flag("B"));
        assert!(!env.flag("C"), "blank is unset");
        assert!(!env.flag("D"));
        let error = env.finish().unwrap_err();
        assert_eq!(error.problems, vec!["D `maybe` is not true or false"]);
        assert!(
            error
                .to_string()
                .starts_with("the processor's configuration is not usable: D `maybe`"),
            "{error}"
        );
    }

    #[test]
    fn numbers_are_bounded_and_all_problems_are_kept() {
        let lookup = with(&[("N", "7"), ("LOW", "0"), ("WORD", "ten")]);
        let mut env = Env::new("forwarder", &lookup);
        assert_eq!(env.number("N", 1, 1, 10), 7);
        assert_eq!(env.number("UNSET", 3, 1, 10), 3);
        assert_eq!(env.number("LOW", 3, 1, 10), 3);
        assert_eq!(env.number("WORD", 3, 1, 10), 3);
        let error = env.finish().unwrap_err();
        assert_eq!(error.component, "forwarder");
        assert_eq!(error.problems.len(), 2);
    }
}
