//! Mesh topics: a template with placeholders, rendered safe for Solace.
//!
//! Solace topic rules (docs.solace.com, "SMF topics"): UTF-8, levels separated by `/`, at most 128
//! levels and 250 bytes; in a published topic `*` and `>` would be read as wildcards by
//! subscribers when they stand alone in a level, a leading `!` and `#` are reserved, NUL is
//! invalid, empty levels are to be avoided. Rendering guarantees all of that whatever the names
//! in the record are:
//! - a `/` in a name becomes `_` (a name never creates a level), control characters become `_`;
//! - a level that renders empty becomes `_`, one that is only `*` or `>` becomes `_`;
//! - a topic that would start with `!` or `#` gets `_` in place of that character;
//! - a topic longer than 250 bytes has its longest values shortened, on character boundaries,
//!   until it fits;
//! - any other character, spaces and non-ASCII letters included, is kept as it is.

pub mod event_mesh;

pub use event_mesh::event_mesh_topic;

/// Solace's limit on a topic's length, in bytes.
pub const MAX_TOPIC_BYTES: usize = 250;
/// Solace's limit on a topic's number of levels.
pub const MAX_TOPIC_LEVELS: usize = 128;

/// The default topic template.
pub const DEFAULT_TOPIC_TEMPLATE: &str =
    "monitron/{category}/{kind}/{state}/{project}/{site}/{asset}/{position}";

/// The placeholders a template can use, and what each one stands for.
pub const PLACEHOLDERS: [(&str, &str); 15] = [
    ("category", "asset, model, sensor or gateway"),
    ("kind", "alert, recovered, connected or disconnected"),
    (
        "state",
        "the new state (asset: newState; model: the new output; connectivity: CONNECTED/DISCONNECTED)",
    ),
    ("previousState", "the previous state, where there is one"),
    ("project", "the Monitron project name"),
    ("site", "the site name"),
    ("asset", "the asset name"),
    ("position", "the position name"),
    ("gateway", "the gateway name (gateway events)"),
    ("eventType", "the v2 eventType (measurement for v1)"),
    ("schema", "1 or 2"),
    ("accountId", "the AWS account id (v2)"),
    ("projectId", "the Monitron project id (v2)"),
    ("sensorId", "the sensor's physical id"),
    ("gatewayId", "the gateway's physical id"),
];

/// A template that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic template: {0}")]
pub struct TemplateError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(usize),
}

/// A validated topic template, e.g. `monitron/{kind}/{site}/{asset}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    levels: Vec<Vec<Part>>,
}

impl Default for TopicTemplate {
    fn default() -> Self {
        match TopicTemplate::parse(DEFAULT_TOPIC_TEMPLATE) {
            Ok(t) => t,
            Err(e) => unreachable!("the default topic template is valid: {e}"),
        }
    }
}

impl TopicTemplate {
    /// Parses and validates a template: levels separated by `/`, each made of literal text and
    /// `{placeholder}`s. A literal may not contain `{`, `}`, NUL or control characters; a level may
    /// not be empty or only `*`/`>`; the template may not start with `!` or `#`; its literal text
    /// plus one byte per placeholder must fit in 250 bytes and 128 levels.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        if template.is_empty() {
            return Err(TemplateError("it is empty".into()));
        }
        if template.starts_with('!') || template.starts_with('#') {
            return Err(TemplateError(format!(
                "`{template}` starts with a character Solace reserves (`!` or `#`)"
            )));
        }
        let mut levels = Vec::new();
        let mut least_bytes = 0usize;
        for (n, level) in template.split('/').enumerate() {
            if level.is_empty() {
                return Err(TemplateError(format!("level {} is empty", n + 1)));
            }
            if level == "*" || level == ">" {
                return Err(TemplateError(format!(
                    "level {} is a lone `{level}`, a wildcard in subscriptions",
                    n + 1
                )));
            }
            let parts = parse_level(level)?;
            least_bytes += parts
                .iter()
                .map(|p| match p {
                    Part::Literal(s) => s.len(),
                    Part::Placeholder(_) => 1,
                })
                .sum::<usize>();
            levels.push(parts);
        }
        least_bytes += levels.len() - 1;
        if levels.len() > MAX_TOPIC_LEVELS {
            return Err(TemplateError(format!(
                "{} levels; Solace allows {MAX_TOPIC_LEVELS}",
                levels.len()
            )));
        }
        if least_bytes > MAX_TOPIC_BYTES {
            return Err(TemplateError(format!(
                "its fixed text alone takes {least_bytes} bytes; Solace allows {MAX_TOPIC_BYTES}"
            )));
        }
        Ok(TopicTemplate { levels })
    }

    /// Renders the topic; `value(name)` gives a placeholder's value, `None` when it has none.
    pub fn render<'v>(&self, value: impl Fn(&str) -> Option<&'v str>) -> String {
        // Sanitised values, one per placeholder occurrence, shortened below if needed.
        let mut values: Vec<String> = Vec::new();
        for part in self.levels.iter().flatten() {
            if let Part::Placeholder(i) = part {
                values.push(sanitise(value(PLACEHOLDERS[*i].0).unwrap_or("")));
            }
        }
        loop {
            let topic = self.assemble(&values);
            let excess = topic.len().saturating_sub(MAX_TOPIC_BYTES);
            if excess == 0 {
                return topic;
            }
            // Shorten the longest value; validation (fixed text + one byte per placeholder fits)
            // guarantees this ends.
            let Some(longest) = values
                .iter_mut()
                .filter(|v| v.len() > 1)
                .max_by_key(|v| v.len())
            else {
                return truncate(&topic, MAX_TOPIC_BYTES).to_string();
            };
            let first = first_char_len(longest);
            if first == longest.len() {
                // One multi-byte character: the shortest stand-in is `_`.
                *longest = "_".to_string();
            } else {
                let keep = longest.len().saturating_sub(excess);
                let cut = truncate(longest, keep).len().max(first);
                longest.truncate(cut);
            }
        }
    }

    fn assemble(&self, values: &[String]) -> String {
        let mut topic = String::new();
        let mut next_value = values.iter();
        for (n, level) in self.levels.iter().enumerate() {
            if n > 0 {
                topic.push('/');
            }
            let start = topic.len();
            for part in level {
                match part {
                    Part::Literal(s) => topic.push_str(s),
                    Part::Placeholder(_) => topic.push_str(next_value.next().map_or("", |v| v)),
                }
            }
            let rendered = &topic[start..];
            if rendered.is_empty() || rendered == "*" || rendered == ">" {
                topic.truncate(start);
                topic.push('_');
            }
        }
        if topic.starts_with('!') || topic.starts_with('#') {
            topic.replace_range(..1, "_");
        }
        topic
    }
}

fn parse_level(level: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = level;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let Some(close) = rest.find('}') else {
                    return Err(TemplateError(format!("`{level}` has a `{{` with no `}}`")));
                };
                let name = &rest[1..close];
                let Some(i) = PLACEHOLDERS.iter().position(|(p, _)| *p == name) else {
                    let known: Vec<&str> = PLACEHOLDERS.iter().map(|(p, _)| *p).collect();
                    return Err(TemplateError(format!(
                        "unknown placeholder `{{{name}}}`; known: {}",
                        known.join(", ")
                    )));
                };
                parts.push(Part::Placeholder(i));
                rest = &rest[close + 1..];
            }
            found => {
                let end = found.unwrap_or(rest.len());
                let literal = &rest[..end];
                if literal.contains('}') {
                    return Err(TemplateError(format!("`{level}` has a `}}` with no `{{`")));
                }
                if literal.chars().any(char::is_control) {
                    return Err(TemplateError(format!(
                        "`{level}` contains a control character"
                    )));
                }
                parts.push(Part::Literal(literal.to_string()));
                rest = &rest[end..];
            }
        }
    }
    Ok(parts)
}

/// A name made safe inside one topic level.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn first_char_len(s: &str) -> usize {
    s.chars().next().map_or(0, char::len_utf8)
}

#[cfg(test)]
mod tests;
