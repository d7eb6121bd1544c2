//! Skipping the rest of an oversized JSON value without holding it.
//!
//! Only the structure is followed (strings, escapes, nesting depth); the bytes are dropped as they
//! pass. This is used once a record is known to be larger than the limit: the value was valid so
//! far (the parser had only run out of bytes), so its end is where its nesting closes.

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
    /// Feeds `bytes`; returns the index just past the value's end when it ends inside them.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        if !self.started {
            let first = *bytes.first()?;
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
                        return Some(i);
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            if self.in_string {
                // Jump to the next quote or backslash.
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None if self.escaped => {
                        self.escaped = false;
                        i += 1;
                        continue;
                    }
                    None => return None,
                    Some(0) if self.escaped => {
                        self.escaped = false;
                        i += 1;
                        continue;
                    }
                    Some(at) => {
                        if self.escaped {
                            // The escaped character was before `at`.
                            self.escaped = false;
                        }
                        i += at;
                        if bytes[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if self.depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        i += 1;
                        continue;
                    }
                }
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::ValueSkipper;

    fn end_in_one_go(s: &str) -> Option<usize> {
        ValueSkipper::default().feed(s.as_bytes())
    }

    fn end_byte_by_byte(s: &str) -> Option<usize> {
        let mut sk = ValueSkipper::default();
        for (i, b) in s.as_bytes().iter().enumerate() {
            if let Some(end) = sk.feed(std::slice::from_ref(b)) {
                return Some(i + end);
            }
        }
        None
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
            assert_eq!(end_in_one_go(text), Some(end), "{text}");
            assert_eq!(end_byte_by_byte(text), Some(end), "{text} byte by byte");
        }
    }

    #[test]
    fn an_unclosed_value_never_ends() {
        assert_eq!(end_in_one_go(r#"{"a":[1,2"#), None);
        assert_eq!(end_byte_by_byte(r#"{"a":"\"}"#), None);
    }
}
