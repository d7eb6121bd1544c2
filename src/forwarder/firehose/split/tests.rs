use proptest::prelude::*;

use super::*;

/// Any JSON value, owned: the framer's behaviour without a domain model.
struct AnyJson;

impl Parse for AnyJson {
    type Value<'a> = serde_json::Value;
}

#[derive(Debug, Clone, PartialEq)]
enum Out {
    Record(u64, String),
    Broken(u64, Broken),
}

/// A handler that records each piece.
fn collector(
    out: &mut Vec<Out>,
) -> impl FnMut(Piece<'_, serde_json::Value>) -> Result<(), ()> + '_ {
    |piece| {
        out.push(match piece {
            Piece::Record { offset, bytes, .. } => {
                Out::Record(offset, String::from_utf8_lossy(bytes).into_owned())
            }
            Piece::Broken { offset, reason } => Out::Broken(offset, reason),
        });
        Ok(())
    }
}

fn split_in_chunks(input: &[u8], chunk: usize, max: usize) -> Vec<Out> {
    let mut out = Vec::new();
    let mut splitter = Splitter::new(max);
    let mut collect = collector(&mut out);
    for part in input.chunks(chunk.max(1)) {
        assert!(splitter.push::<AnyJson, ()>(part, &mut collect).is_ok());
    }
    assert!(splitter.finish::<AnyJson, ()>(&mut collect).is_ok());
    assert_eq!(
        splitter.stream_offset(),
        input.len() as u64,
        "every byte accounted for"
    );
    drop(collect);
    out
}

/// Splits whole, byte by byte and in 7-byte chunks, and checks all three agree.
fn split(input: &[u8], max: usize) -> Vec<Out> {
    let whole = split_in_chunks(input, input.len().max(1), max);
    assert_eq!(split_in_chunks(input, 1, max), whole, "byte by byte");
    assert_eq!(split_in_chunks(input, 7, max), whole, "7-byte chunks");
    whole
}

fn rec(offset: u64, text: &str) -> Out {
    Out::Record(offset, text.to_string())
}

fn is_syntax(out: &Out, offset: u64) -> bool {
    matches!(out, Out::Broken(o, Broken::Syntax { .. }) if *o == offset)
}

#[test]
fn concatenated_records_with_no_delimiter() {
    let out = split(br#"{"a":1}{"b":[2]}{"c":"}{"}"#, 1024);
    assert_eq!(
        out,
        vec![
            rec(0, r#"{"a":1}"#),
            rec(7, r#"{"b":[2]}"#),
            rec(16, r#"{"c":"}{"}"#)
        ]
    );
}

#[test]
fn newline_delimited_pretty_printed_and_mixed() {
    let input = "{\"a\":1}\n{\"b\":2}\r\n{\n  \"c\": {\n    \"d\": 3\n  }\n}{\"e\":4}\n\n";
    let out = split(input.as_bytes(), 1024);
    assert_eq!(
        out,
        vec![
            rec(0, r#"{"a":1}"#),
            rec(8, r#"{"b":2}"#),
            rec(17, "{\n  \"c\": {\n    \"d\": 3\n  }\n}"),
            rec(44, r#"{"e":4}"#),
        ]
    );
}

#[test]
fn bare_scalars_are_values_even_when_cut_by_chunks() {
    let out = split(b"12345 -6.5e3\ntrue \"s\" null [1]", 1024);
    assert_eq!(
        out,
        vec![
            rec(0, "12345"),
            rec(6, "-6.5e3"),
            rec(13, "true"),
            rec(18, "\"s\""),
            rec(22, "null"),
            rec(27, "[1]"),
        ]
    );
}

#[test]
fn numbers_inside_records_cut_by_chunks_are_not_errors() {
    let record = br#"{"rms":0.0311,"e":1e-5,"n":-12}"#;
    for chunk in 1..record.len() {
        let out = split_in_chunks(record, chunk, 1024);
        assert_eq!(
            out,
            vec![rec(0, std::str::from_utf8(record).unwrap_or(""))],
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_truncated_record_is_reported_and_the_next_line_is_read() {
    let out = split(b"{\"a\":1, \"b\":\n{\"c\":2}\n{\"d\":3}", 1024);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(is_syntax(&out[0], 0), "{out:?}");
    assert_eq!(out[1..], [rec(13, r#"{"c":2}"#), rec(21, r#"{"d":3}"#)]);
}

#[test]
fn a_record_cut_by_the_end_of_the_object_is_truncated() {
    let out = split(b"{\"a\":1}\n{\"b\":[1,2", 1024);
    assert_eq!(
        out,
        vec![rec(0, r#"{"a":1}"#), Out::Broken(8, Broken::Truncated)]
    );
}

#[test]
fn garbage_is_reported_with_its_offset_and_skipped_to_the_next_line() {
    let out = split(b"{\"a\":1}\nnot json at all {\"x\":1}\n{\"b\":2}\n", 1024);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0], rec(0, r#"{"a":1}"#));
    match &out[1] {
        Out::Broken(8, Broken::Syntax { message, at }) => {
            // `n` could start `null`: the parser stops at the `o`.
            assert_eq!(*at, 9);
            assert!(message.contains("expected"), "{message}");
        }
        other => panic!("expected a syntax error at 8, got {other:?}"),
    }
    assert_eq!(out[2], rec(32, r#"{"b":2}"#));
}

#[test]
fn an_error_in_the_middle_of_a_record_names_its_byte() {
    let out = split(b"{\"a\":1,,\"b\":2}\n", 1024);
    assert_eq!(
        out,
        vec![Out::Broken(
            0,
            Broken::Syntax {
                message: "key must be a string".to_string(),
                at: 7
            }
        )]
    );
}

#[test]
fn invalid_utf8_is_reported_with_its_offset() {
    let out = split(
        b"{\"a\":\"\xff\xfe\"}\n{\"b\":2}\n\xc3\x28\n{\"c\":3}",
        1024,
    );
    assert_eq!(
        out,
        vec![
            Out::Broken(0, Broken::InvalidUtf8 { at: 6 }),
            rec(11, r#"{"b":2}"#),
            Out::Broken(19, Broken::InvalidUtf8 { at: 19 }),
            rec(22, r#"{"c":3}"#),
        ]
    );
}

#[test]
fn a_broken_line_longer_than_what_is_buffered_is_skipped_to_its_end() {
    let mut input = b"@".repeat(5000);
    input.extend_from_slice(b"\n{\"a\":1}");
    let out = split_in_chunks(&input, 100, 1024);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(is_syntax(&out[0], 0));
    assert_eq!(out[1], rec(5001, r#"{"a":1}"#));
}

#[test]
fn an_oversized_record_is_skipped_whole_even_when_pretty_printed() {
    let input =
        "{\n  \"a\": \"0123456789012345678901234567890\",\n  \"b\": {\"c\": \"}\"}\n}\n{\"d\":1}";
    let out = split(input.as_bytes(), 32);
    assert_eq!(
        out,
        vec![
            Out::Broken(0, Broken::TooLarge { limit: 32 }),
            rec(input.len() as u64 - 7, r#"{"d":1}"#),
        ]
    );
}

#[test]
fn an_oversized_record_is_never_held_in_memory() {
    const LIMIT: usize = 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let mut splitter = Splitter::new(LIMIT);
    let mut pieces = Vec::new();
    let mut collect = collector(&mut pieces);
    // A 20 MiB single-line record, then a small one.
    let filler = vec![b'x'; CHUNK];
    assert!(
        splitter
            .push::<AnyJson, ()>(b"{\"big\":\"", &mut collect)
            .is_ok()
    );
    let mut peak = 0;
    for _ in 0..(20 * 1024 * 1024 / CHUNK) {
        assert!(splitter.push::<AnyJson, ()>(&filler, &mut collect).is_ok());
        peak = peak.max(splitter.buffered_bytes());
    }
    assert!(
        splitter
            .push::<AnyJson, ()>(b"\"}\n{\"small\":1}", &mut collect)
            .is_ok()
    );
    assert!(splitter.finish::<AnyJson, ()>(&mut collect).is_ok());
    drop(collect);
    assert!(peak <= LIMIT + CHUNK + 8, "held {peak} bytes");
    let small_at = 8 + 20 * 1024 * 1024 + 3;
    assert_eq!(
        pieces,
        vec![
            Out::Broken(0, Broken::TooLarge { limit: LIMIT }),
            Out::Record(small_at, r#"{"small":1}"#.to_string()),
        ]
    );
}

#[test]
fn an_oversized_record_cut_by_the_end_of_the_object_is_reported_once() {
    let out = split(b"{\"a\":\"0123456789012345678901234567890", 16);
    assert_eq!(out, vec![Out::Broken(0, Broken::TooLarge { limit: 16 })]);
}

#[test]
fn a_record_just_under_the_limit_spanning_many_chunks_is_read() {
    let body = "y".repeat(900 * 1024);
    let record = format!("{{\"a\":\"{body}\"}}");
    let out = split_in_chunks(
        format!("{record}\n{{\"b\":1}}").as_bytes(),
        1000,
        1024 * 1024,
    );
    assert_eq!(
        out,
        vec![rec(0, &record), rec(record.len() as u64 + 1, r#"{"b":1}"#)]
    );
}

#[test]
fn a_byte_order_mark_at_the_start_is_ignored() {
    let out = split(b"\xEF\xBB\xBF{\"a\":1}", 1024);
    assert_eq!(out, vec![rec(3, r#"{"a":1}"#)]);
}

#[test]
fn an_empty_or_blank_object_has_no_records() {
    assert_eq!(split(b"", 1024), vec![]);
    assert_eq!(split(b" \n\r\n\t ", 1024), vec![]);
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"eventId":"e-1","assetState":{"newState":"ALARM"}}"#.to_vec()),
        Just(b"{\n  \"a\": [1, 2.5e3, \"x\\\"y\"],\n  \"b\": null\n}".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"  ".to_vec()),
        Just(b"{\"cut\":".to_vec()),
        Just(b"12".to_vec()),
        Just(b"\"str\"".to_vec()),
        Just(b"]}".to_vec()),
        Just(b"\xff\xc3".to_vec()),
        Just("\"Süd ✓\"".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary bytes: no panic, no endless loop, every byte accounted for, and the same
    /// pieces whatever the chunk size.
    #[test]
    fn any_bytes_split_the_same_whatever_the_chunks(
        input in proptest::collection::vec(any::<u8>(), 0..400),
        chunk in 1usize..50,
        max in 4usize..64,
    ) {
        let whole = split_in_chunks(&input, input.len().max(1), max);
        prop_assert_eq!(split_in_chunks(&input, chunk, max), whole);
    }

    /// Streams built from records, fragments and garbage: same invariants, plus every piece
    /// lies inside the input and records come out in order.
    #[test]
    fn record_streams_split_the_same_whatever_the_chunks(
        parts in proptest::collection::vec(fragment(), 0..30),
        chunk in 1usize..64,
        max in prop_oneof![Just(16usize), Just(60), Just(4096)],
    ) {
        let input: Vec<u8> = parts.concat();
        let whole = split_in_chunks(&input, input.len().max(1), max);
        prop_assert_eq!(split_in_chunks(&input, chunk, max), whole.clone());
        let mut last = None;
        for piece in &whole {
            let offset = match piece {
                Out::Record(o, text) => {
                    let end = *o as usize + text.len();
                    prop_assert_eq!(&input[*o as usize..end], text.as_bytes());
                    *o
                }
                Out::Broken(o, _) => *o,
            };
            prop_assert!(offset < input.len() as u64);
            prop_assert!(last.is_none_or(|l| l < offset), "pieces in order");
            last = Some(offset);
        }
    }
}

/// A model that refuses keys given twice, as the Monitron model does.
struct Strict;

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct StrictRecord {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

impl Parse for Strict {
    type Value<'a> = crate::monitron::Value<'a>;
}

fn split_strict(input: &[u8], chunk: usize, max: usize) -> Vec<Out> {
    let mut out = Vec::new();
    let mut splitter = Splitter::new(max);
    let mut collect = |piece: Piece<'_, crate::monitron::Value<'_>>| -> Result<(), ()> {
        out.push(match piece {
            Piece::Record { offset, bytes, .. } => {
                Out::Record(offset, String::from_utf8_lossy(bytes).into_owned())
            }
            Piece::Broken { offset, reason } => Out::Broken(offset, reason),
        });
        Ok(())
    };
    for part in input.chunks(chunk.max(1)) {
        assert!(splitter.push::<Strict, ()>(part, &mut collect).is_ok());
    }
    assert!(splitter.finish::<Strict, ()>(&mut collect).is_ok());
    out
}

#[test]
fn a_broken_record_in_a_concatenated_object_loses_nothing_after_it() {
    let input = br#"{"eventId":"a","x":tru}{"eventId":"b"}{"eventId":"c"}"#;
    let out = split(input, 1024);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(is_syntax(&out[0], 0));
    assert_eq!(
        out[1..],
        [rec(23, r#"{"eventId":"b"}"#), rec(38, r#"{"eventId":"c"}"#)]
    );
}

#[test]
fn a_key_given_twice_is_skipped_whole_even_with_no_delimiter() {
    let input = br#"{"eventId":"a","eventId":"b","n":{"x":[1]}}{"eventId":"c"}"#;
    for chunk in [1, 5, input.len()] {
        let out = split_strict(input, chunk, 1024);
        assert_eq!(
            out,
            vec![
                Out::Broken(
                    0,
                    Broken::Refused {
                        message: "duplicate field `eventId`".into()
                    }
                ),
                rec(43, r#"{"eventId":"c"}"#),
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn invalid_utf8_in_a_complete_record_skips_only_that_record() {
    let input = b"{\"a\":1,\"z\":\"\xff\"}{\"b\":2}";
    let out = split_strict(input, 3, 1024);
    assert_eq!(
        out,
        vec![
            Out::Broken(0, Broken::InvalidUtf8 { at: 12 }),
            rec(15, r#"{"b":2}"#)
        ]
    );
}

#[test]
fn an_absurd_record_limit_does_not_overflow() {
    let out = split_in_chunks(br#"{"a":1} {"b":2}"#, 3, usize::MAX);
    assert_eq!(out, vec![rec(0, r#"{"a":1}"#), rec(8, r#"{"b":2}"#)]);
}

#[test]
fn an_oversized_record_that_is_also_broken_does_not_swallow_the_object() {
    let mut input = b"{\"blob\":\"".to_vec();
    input.extend(std::iter::repeat_n(b'A', 5000));
    input.extend_from_slice(b"\n{\"after\":1}\n{\"and\":2}");
    let out = split_in_chunks(&input, 64, 1024);
    assert_eq!(
        out,
        vec![
            Out::Broken(0, Broken::TooLarge { limit: 1024 }),
            rec(5010, r#"{"after":1}"#),
            rec(5022, r#"{"and":2}"#),
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The Monitron model refuses some valid JSON (a key given twice); the framing stays the
    /// same whatever the chunks.
    #[test]
    fn monitron_streams_split_the_same_whatever_the_chunks(
        parts in proptest::collection::vec(prop_oneof![
            fragment(),
            Just(br#"{"eventId":"x","eventId":"y","assetState":{}}"#.to_vec()),
            Just(br#"{"eventType":"assetStateTransition","eventPayload":{"a":1},"eventId":"e"}"#.to_vec()),
            Just(b"}{".to_vec()),
        ], 0..30),
        chunk in 1usize..64,
        max in prop_oneof![Just(16usize), Just(80), Just(4096)],
    ) {
        let input: Vec<u8> = parts.concat();
        let whole = split_strict(&input, input.len().max(1), max);
        prop_assert_eq!(split_strict(&input, chunk, max), whole);
    }
}
