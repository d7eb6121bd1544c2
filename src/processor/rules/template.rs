//! Templates in rule files: `${{event.data.asset}}`, `${{steps.equipment.Result[0].Equipment}}`,
//! `${{stringify(event.data)}}`: the SAP sample's syntax, made safe.
//!
//! - In a JSON body a string that is exactly one placeholder becomes the value itself (numbers,
//!   objects and `null` keep their type); a placeholder among other text is inserted as text, and
//!   the string is then escaped by the JSON writer, so quotes and newlines in Monitron names
//!   cannot break the body.
//! - In a URL path every placeholder is percent-encoded.
//! - A path that does not exist is an error naming the path and the part that is missing.
//! - Templates are parsed when the rule file is loaded; `roots` tells what a template reads, so
//!   the loader can check names before any event arrives.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// One segment of a path: a key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// `root.key[0].key`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub text: String,
    pub segments: Vec<Segment>,
}

impl Path {
    /// Parses `a.b[0][1].c`.
    pub fn parse(text: &str) -> Result<Path, String> {
        let text = text.trim();
        let mut segments = Vec::new();
        for (n, dotted) in text.split('.').enumerate() {
            let (key, mut rest) = match dotted.find('[') {
                Some(i) => (&dotted[..i], &dotted[i..]),
                None => (dotted, ""),
            };
            if key.is_empty() && (n == 0 || rest.is_empty()) {
                return Err(format!("`{text}` has an empty name"));
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            while !rest.is_empty() {
                let Some(close) = rest.find(']').filter(|_| rest.starts_with('[')) else {
                    return Err(format!("`{text}`: `{rest}` is not an index like `[0]`"));
                };
                let index = rest[1..close]
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("`{text}`: `{}` is not an index", &rest[..=close]))?;
                segments.push(Segment::Index(index));
                rest = &rest[close + 1..];
            }
        }
        Ok(Path {
            text: text.to_string(),
            segments,
        })
    }

    /// The first segment (the template's root).
    pub fn root(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Key(k)) => k,
            _ => "",
        }
    }

    /// The segment after the root, when it is a key (e.g. the step name under `steps`).
    pub fn second(&self) -> Option<&str> {
        match self.segments.get(1) {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The value at this path, or an error naming the part that is missing.
    pub fn lookup<'v>(&self, scope: &'v Value) -> Result<&'v Value, TemplateError> {
        let mut value = scope;
        let mut walked = String::new();
        for segment in &self.segments {
            let next = match segment {
                Segment::Key(k) => value.get(k.as_str()),
                Segment::Index(i) => value.get(*i),
            };
            let shown = match segment {
                Segment::Key(k) if walked.is_empty() => k.clone(),
                Segment::Key(k) => format!(".{k}"),
                Segment::Index(i) => format!("[{i}]"),
            };
            match next {
                Some(v) => value = v,
                None => {
                    return Err(TemplateError::Missing {
                        path: self.text.clone(),
                        found: walked,
                        missing: shown.trim_start_matches('.').to_string(),
                    });
                }
            }
            walked.push_str(&shown);
        }
        Ok(value)
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The path does not exist in this event or these step results.
    #[error("template path `{path}`: {}", missing_text(found, missing))]
    Missing {
        path: String,
        found: String,
        missing: String,
    },
    /// A header value would hold a line break or another control character.
    #[error("template path `{0}` puts a line break or control character into a header")]
    LineBreak(String),
    /// A path segment would be empty.
    #[error("template path `{0}` is empty or null in a URL path")]
    Empty(String),
}

/// `there is no `x``, or ``a.b` has no `x``.
fn missing_text(found: &str, missing: &str) -> String {
    if found.is_empty() {
        format!("there is no `{missing}`")
    } else {
        format!("`{found}` has no `{missing}`")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Path),
    Stringify(Path),
}

/// A string with `${{...}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Bytes encoded in a path placeholder: everything but `-`, `_` and `~` (a `.` too, so that a
/// value `..` cannot climb out of the path).
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

impl Template {
    /// Parses a template; an unclosed or empty placeholder is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let inner_start = start + 3;
            let Some(len) = rest[inner_start..].find("}}") else {
                return Err(format!("`{text}`: a `${{{{` is not closed with `}}}}`"));
            };
            let inner = rest[inner_start..inner_start + len].trim();
            let part = match inner
                .strip_prefix("stringify(")
                .and_then(|s| s.strip_suffix(')'))
            {
                Some(arg) => Part::Stringify(Path::parse(arg)?),
                None => Part::Value(Path::parse(inner)?),
            };
            parts.push(part);
            rest = &rest[inner_start + len + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The paths this template reads.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().filter_map(|p| match p {
            Part::Value(path) | Part::Stringify(path) => Some(path),
            Part::Text(_) => None,
        })
    }

    /// True when the template has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.paths().next().is_none()
    }

    /// As text: strings inserted as they are, other values as compact JSON, `null` as nothing.
    pub fn render_text(&self, scope: &Value) -> Result<String, TemplateError> {
        self.render_with(scope, |text, _| text)
    }

    /// For a URL path: every inserted value percent-encoded; an empty or `null` value is an
    /// error (`/items/` is not `/items/<id>`).
    pub fn render_path(&self, scope: &Value) -> Result<String, TemplateError> {
        for path in self.paths() {
            if matches!(path.lookup(scope)?, Value::Null) || path.lookup(scope)? == "" {
                return Err(TemplateError::Empty(path.text.clone()));
            }
        }
        self.render_with(scope, |text, _| {
            utf8_percent_encode(&text, PATH_VALUE).to_string()
        })
    }

    /// For a header value: like text, but a control character (a line break) is an error.
    pub fn render_header(&self, scope: &Value) -> Result<String, TemplateError> {
        let text = self.render_text(scope)?;
        if text.chars().any(|c| c.is_control() && c != '\t') {
            let path = self.paths().next().map(|p| p.text.clone());
            return Err(TemplateError::LineBreak(path.unwrap_or_default()));
        }
        Ok(text)
    }

    /// As a JSON value: a template that is one placeholder gives the value with its type.
    pub fn render_json(&self, scope: &Value) -> Result<Value, TemplateError> {
        match self.parts.as_slice() {
            [Part::Value(path)] => path.lookup(scope).cloned(),
            _ => self.render_text(scope).map(Value::String),
        }
    }

    fn render_with(
        &self,
        scope: &Value,
        encode: impl Fn(String, &Path) -> String,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(path) => {
                    let text = match path.lookup(scope)? {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    out.push_str(&encode(text, path));
                }
                Part::Stringify(path) => {
                    let text = path.lookup(scope)?.to_string();
                    out.push_str(&encode(text, path));
                }
            }
        }
        Ok(out)
    }
}

/// A JSON body whose strings may hold placeholders.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Compiles a JSON value: every string is parsed as a template.
    pub fn compile(value: &Value) -> Result<JsonTemplate, String> {
        Ok(match value {
            Value::String(s) => {
                let template = Template::parse(s)?;
                if template.is_literal() {
                    JsonTemplate::Literal(value.clone())
                } else {
                    JsonTemplate::Text(template)
                }
            }
            Value::Array(items) => JsonTemplate::Array(
                items
                    .iter()
                    .map(JsonTemplate::compile)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => JsonTemplate::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), JsonTemplate::compile(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => JsonTemplate::Literal(other.clone()),
        })
    }

    /// The paths the body reads.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            JsonTemplate::Literal(_) => {}
            JsonTemplate::Text(t) => out.extend(t.paths()),
            JsonTemplate::Array(items) => items.iter().for_each(|i| i.collect_paths(out)),
            JsonTemplate::Object(fields) => fields.iter().for_each(|(_, v)| v.collect_paths(out)),
        }
    }

    pub fn render(&self, scope: &Value) -> Result<Value, TemplateError> {
        Ok(match self {
            JsonTemplate::Literal(v) => v.clone(),
            JsonTemplate::Text(t) => t.render_json(scope)?,
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(scope)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope() -> Value {
        json!({
            "event": {"id": "e-1", "data": {"asset": "Pump \"7\"\nline 2", "site": "Werk Süd/Halle 3",
                "temperature": 81.5, "state": {"new": "ALARM"}, "none": null}},
            "steps": {"equipment": {"Result": [{"EquipmentDetails": {"Equipment": "210100019"}}]}}
        })
    }

    #[test]
    fn a_lone_placeholder_keeps_the_value_s_type() {
        let body = JsonTemplate::compile(&json!({
            "t": "${{event.data.temperature}}", "s": "${{event.data.state}}",
            "n": "${{ event.data.none }}", "e": "${{steps.equipment.Result[0].EquipmentDetails.Equipment}}"
        }))
        .expect("body (JsonTemplate::compile)");
        let out = body.render(&scope()).expect("out (scope)");
        assert_eq!(
            out,
            json!({"t": 81.5, "s": {"new": "ALARM"}, "n": null, "e": "210100019"})
        );
    }

    #[test]
    fn quotes_newlines_and_non_ascii_give_valid_json() {
        let body = JsonTemplate::compile(&json!({"text": "Alarm at ${{event.data.asset}} in ${{event.data.site}} (${{event.data.temperature}} °C)"}))
            .expect("body (JsonTemplate::compile)");
        let out = body.render(&scope()).expect("out (scope)");
        let wire = out.to_string();
        let back: Value = serde_json::from_str(&wire).unwrap_or_else(|e| panic!("{e}: {wire}"));
        assert_eq!(
            back["text"],
            "Alarm at Pump \"7\"\nline 2 in Werk Süd/Halle 3 (81.5 °C)"
        );
    }

    #[test]
    fn stringify_embeds_compact_json_as_text() {
        let t = Template::parse("data: ${{stringify(event.data.state)}}").expect("t (stringify)");
        assert_eq!(
            t.render_json(&scope()),
            Ok(json!("data: {\"new\":\"ALARM\"}"))
        );
    }

    #[test]
    fn path_placeholders_are_url_encoded() {
        let t = Template::parse("/sites/${{event.data.site}}/items?id=${{event.id}}")
            .expect("t (Template::parse)");
        assert_eq!(
            t.render_path(&scope()).as_deref(),
            Ok("/sites/Werk%20S%C3%BCd%2FHalle%203/items?id=e-1")
        );
        let climb = json!({"event": {"data": {"site": "..", "none": null}}});
        assert_eq!(
            Template::parse("/sites/${{event.data.site}}/x")
                .and_then(|t| t.render_path(&climb).map_err(|e| e.to_string()))
                .as_deref(),
            Ok("/sites/%2E%2E/x")
        );
        assert!(matches!(
            Template::parse("/items/${{event.data.none}}").map(|t| t.render_path(&climb)),
            Ok(Err(TemplateError::Empty(_)))
        ));
    }

    #[test]
    fn a_missing_path_names_itself_and_the_missing_part() {
        let t = Template::parse("${{steps.equipment.Result[0].Location}}")
            .expect("t (Template::parse)");
        let Err(e) = t.render_json(&scope()) else {
            panic!("rendered")
        };
        assert_eq!(
            e.to_string(),
            "template path `steps.equipment.Result[0].Location`: `steps.equipment.Result[0]` has no `Location`"
        );
        let t = Template::parse("${{steps.lookup.x}}").expect("t (Template::parse)");
        assert!(
            t.render_text(&scope())
                .is_err_and(|e| e.to_string().contains("`steps` has no `lookup`"))
        );
    }

    #[test]
    fn headers_refuse_line_breaks() {
        let t = Template::parse("x ${{event.data.asset}}").expect("t (Template::parse)");
        assert!(matches!(
            t.render_header(&scope()),
            Err(TemplateError::LineBreak(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_name_gives_valid_json_that_reads_back(name in "\\PC*", n in proptest::num::i64::ANY) {
            let scope = json!({"event": {"data": {"asset": name, "n": n}}});
            let body = JsonTemplate::compile(&json!({"t": "at ${{event.data.asset}}!", "v": "${{event.data.asset}}", "n": "${{event.data.n}}"}))
                .expect("body (JsonTemplate::compile)");
            let wire = body.render(&scope).expect("wire (render)").to_string();
            let back: Value = serde_json::from_str(&wire).unwrap_or_else(|e| panic!("{e}: {wire}"));
            proptest::prop_assert_eq!(&back["t"], &json!(format!("at {name}!")));
            proptest::prop_assert_eq!(&back["v"], &json!(name));
            proptest::prop_assert_eq!(&back["n"], &json!(n));
        }
    }

    #[test]
    fn bad_templates_are_refused_when_parsed() {
        for bad in [
            "${{event.id",
            "${{}}",
            "${{event..id}}",
            "${{a[x]}}",
            "${{a[0}}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} accepted");
        }
        let Ok(path) = Path::parse("steps.a.Result[0][2].b") else {
            panic!("refused")
        };
        assert_eq!(path.root(), "steps");
        assert_eq!(path.second(), Some("a"));
        assert_eq!(path.segments.len(), 6);
    }
}
