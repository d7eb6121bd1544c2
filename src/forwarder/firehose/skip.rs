//! Skipping the rest of an oversized JSON value without holding it.
//!
//! Only the structure is followed (strings, escapes, nesting depth); the bytes are dropped as they
//! pass. This is used once a record is known to be larger than the limit: the value was valid so
//! far (the parser had only run out of bytes), so its end is where its nesting closes. A raw
//! control character inside a string (a line break, say) cannot be JSON: the value is broken
//! after all, and the caller goes back to looking for the next record boundary.

/// What feeding bytes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// The value ends just before this index.
    Ended(usize),
    /// The value is not JSON: a raw control character inside a string, at this index.
    Broken(usize),
    /// All the bytes belong to the value.
    NeedMore,
}

/// Follows the nesting of one JSON value whose first byte has already been fed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueSkipper {
    depth: u64,
    in_string: bool,
    escaped: bool,
    /// A bare scalar (number, literal) at top level: it ends at the first delimiter.
    scalar: bool,
    started: bool,
}

impl ValueSkipper {
    /// Feeds the next bytes of the value.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Skipped {
        let mut i = 0;
        if !self.started {
            let Some(&first) = bytes.first() else {
                return Skipped::NeedMore;
            };
            self.started = true;
            match first {
                b'{' | b'[' => self.depth = 1,
                b'"' => self.in_string = true,
                _ => self.scalar = true,
            }
            i = 1;
        }
        while i < bytes.len() {
            if self.scalar {
                match bytes[i] {
                    b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'[' | b'"' | b']' | b'}' | b',' => {
                        return Skipped::Ended(i);
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            if self.in_string {
                if self.escaped {
                    // The escaped character, whatever it is.
                    self.escaped = false;
                    if bytes[i] < 0x20 {
                        return Skipped::Broken(i);
                    }
                    i += 1;
                    continue;
                }
                // Jump to the next quote, backslash or control character.
                let rest = &bytes[i..];
                let stop = rest
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                let Some(at) = stop else {
                    return Skipped::NeedMore;
                };
                i += at;
                match bytes[i] {
                    b'\\' => self.escaped = true,
                    b'"' => {
                        self.in_string = false;
                        if self.depth == 0 {
                            return Skipped::Ended(i + 1);
                        }
                    }
                    _ => return Skipped::Broken(i),
                }
                i += 1;
                continue;
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Skipped::Ended(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        Skipped::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::{Skipped, ValueSkipper};

    fn end_in_one_go(s: &str) -> Skipped {
        ValueSkipper::default().feed(s.as_bytes())
    }

    fn end_byte_by_byte(s: &str) -> Skipped {
        let mut sk = ValueSkipper::default();
        for (i, b) in s.as_bytes().iter().enumerate() {
            match sk.feed(std::slice::from_ref(b)) {
                Skipped::NeedMore => {}
                Skipped::Ended(end) => return Skipped::Ended(i + end),
                Skipped::Broken(at) => return Skipped::Broken(i + at),
            }
        }
        Skipped::NeedMore
    }

    #[test]
    fn finds_the_end_of_nested_values_with_tricky_strings() {
        let cases = [
            (r#"{"a":"}\"]","b":[1,{"c":"\\"}]} tail"#, 31),
            (r#""just a \" string" x"#, 18),
            ("12345 {}", 5),
            ("[[[]]]]", 6),
        ];
        for (text, end) in cases {
            assert_eq!(end_in_one_go(text), Skipped::Ended(end), "{text}");
            assert_eq!(
                end_byte_by_byte(text),
                Skipped::Ended(end),
                "{text} byte by byte"
            );
        }
    }

    #[test]
    fn an_unclosed_value_never_ends() {
        assert_eq!(end_in_one_go(r#"{"a":[1,2"#), Skipped::NeedMore);
        assert_eq!(end_byte_by_byte(r#"{"a":"\"}"#), Skipped::NeedMore);
    }

    #[test]
    fn a_line_break_inside_a_string_means_the_value_is_broken() {
        let text = "{\"a\":\"never closed\n{\"b\":1}";
        assert_eq!(end_in_one_go(text), Skipped::Broken(18));
        assert_eq!(end_byte_by_byte(text), Skipped::Broken(18));
        // Line breaks between tokens are fine.
        assert_eq!(end_in_one_go("{\n\"a\":\n1\n}"), Skipped::Ended(10));
    }
}
