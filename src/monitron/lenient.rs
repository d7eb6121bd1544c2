//! Field types that accept whatever JSON the export drifts into.
//!
//! The real export misses documented fields, adds undocumented ones, writes `null`s and, in
//! synthetic samples, numbers where strings are documented. These types never fail on a wrong
//! type: they say what they found, and the classification decides what it means. Only a syntax
//! error fails a record.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A scalar field: a string, a number or a boolean (kept as text), or its absence.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Text<'a> {
    /// The field is not there.
    #[default]
    Missing,
    /// `null`.
    Null,
    /// A JSON string.
    Str(Cow<'a, str>),
    /// A JSON number, as text.
    Number(String),
    /// `true` or `false`.
    Bool(bool),
    /// An object or an array where a scalar was expected.
    Nested,
}

impl<'a> Text<'a> {
    /// The text of a string, number or boolean; `None` when missing, null, nested or empty.
    pub fn as_str(&self) -> Option<&str> {
        let text = match self {
            Text::Str(s) => s.as_ref(),
            Text::Number(n) => n.as_str(),
            Text::Bool(true) => "true",
            Text::Bool(false) => "false",
            Text::Missing | Text::Null | Text::Nested => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    /// The text of a JSON string only.
    pub fn as_json_string(&self) -> Option<&str> {
        match self {
            Text::Str(s) => Some(s.as_ref()),
            _ => None,
        }
    }
}

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Text::Number(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Text::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Text::Number(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Text::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Nested)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::Nested)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

/// An object field: the object parsed into `T`, or what stood there instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Obj<T> {
    #[default]
    Missing,
    Present(T),
    /// `null`, a scalar or an array where an object was expected.
    NotAnObject,
}

impl<T> Obj<T> {
    pub fn get(&self) -> Option<&T> {
        match self {
            Obj::Present(t) => Some(t),
            _ => None,
        }
    }
}

struct ObjVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj::Present)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj::NotAnObject)
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj::NotAnObject)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Probe<'a> {
        #[serde(default, borrow)]
        a: Text<'a>,
        #[serde(default)]
        o: Obj<Inner>,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        #[serde(default)]
        x: Option<u8>,
    }

    fn probe(json: &str) -> Probe<'_> {
        match serde_json::from_str(json) {
            Ok(p) => p,
            Err(e) => panic!("{json}: {e}"),
        }
    }

    #[test]
    fn text_takes_every_json_type_without_failing() {
        assert_eq!(probe(r#"{}"#).a, Text::Missing);
        assert_eq!(probe(r#"{"a":null}"#).a, Text::Null);
        assert_eq!(probe(r#"{"a":"v"}"#).a.as_str(), Some("v"));
        assert_eq!(probe(r#"{"a":"\u00fc"}"#).a.as_str(), Some("ü"));
        assert_eq!(probe(r#"{"a":409623}"#).a.as_str(), Some("409623"));
        assert_eq!(probe(r#"{"a":-1.5}"#).a.as_str(), Some("-1.5"));
        assert_eq!(probe(r#"{"a":true}"#).a.as_str(), Some("true"));
        assert_eq!(probe(r#"{"a":{"b":[1]}}"#).a, Text::Nested);
        assert_eq!(probe(r#"{"a":[{"b":1}]}"#).a, Text::Nested);
        assert_eq!(probe(r#"{"a":""}"#).a.as_str(), None);
        assert_eq!(probe(r#"{"a":7}"#).a.as_json_string(), None);
    }

    #[test]
    fn obj_takes_every_json_type_without_failing() {
        assert_eq!(probe(r#"{}"#).o, Obj::Missing);
        assert_eq!(
            probe(r#"{"o":{"x":1,"y":2}}"#).o,
            Obj::Present(Inner { x: Some(1) })
        );
        for other in ["null", "1", "\"s\"", "[1,{}]", "false"] {
            assert_eq!(
                probe(&format!(r#"{{"o":{other}}}"#)).o,
                Obj::NotAnObject,
                "{other}"
            );
        }
    }
}
