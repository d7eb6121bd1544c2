use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;
use crate::forwarder::firehose::Broken;

struct AnyJson;

impl Parse for AnyJson {
    type Value<'a> = serde_json::Value;
}

#[derive(Debug, PartialEq)]
enum Out {
    Record(u64, String),
    Broken(u64, Broken),
}

fn decode(bytes: impl Read + Send, chunk: usize) -> (Vec<Out>, Result<ObjectEnd, ObjectError<()>>) {
    let mut out = Vec::new();
    let options = DecodeOptions {
        max_record_bytes: 1024,
        chunk_bytes: chunk,
    };
    let result = decode_object::<AnyJson, (), _>(bytes, &options, |piece| {
        out.push(match piece {
            Piece::Record { offset, bytes, .. } => {
                Out::Record(offset, String::from_utf8_lossy(bytes).into())
            }
            Piece::Broken { offset, reason } => Out::Broken(offset, reason),
        });
        Ok(())
    });
    (out, result)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    let written = encoder.write_all(data);
    assert!(written.is_ok());
    encoder.finish().unwrap_or_default()
}

fn records(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"n\":{i}}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn plain_and_gzip_objects_give_the_same_records() {
    let plain = records(500);
    let (from_plain, end_plain) = decode(&plain[..], 100);
    let (from_gzip, end_gzip) = decode(&gzip(&plain)[..], 100);
    assert_eq!(from_plain.len(), 500);
    assert_eq!(from_plain, from_gzip);
    assert!(
        matches!(end_plain, Ok(ObjectEnd { gzip: false, bytes }) if bytes == plain.len() as u64)
    );
    assert!(matches!(end_gzip, Ok(ObjectEnd { gzip: true, bytes }) if bytes == plain.len() as u64));
}

#[test]
fn every_member_of_a_multi_member_gzip_is_read() {
    let mut object = gzip(b"{\"a\":1}\n{\"b\":");
    object.extend(gzip(b"2}\n"));
    object.extend(gzip(b"{\"c\":3}"));
    let (out, end) = decode(&object[..], 4);
    assert_eq!(
        out,
        vec![
            Out::Record(0, r#"{"a":1}"#.into()),
            Out::Record(8, r#"{"b":2}"#.into()),
            Out::Record(16, r#"{"c":3}"#.into()),
        ]
    );
    assert!(end.is_ok());
}

#[test]
fn a_truncated_gzip_yields_every_record_before_the_cut_then_an_error() {
    let plain = records(20_000);
    let compressed = gzip(&plain);
    let cut = &compressed[..compressed.len() * 2 / 3];
    let (out, end) = decode(cut, 4096);
    assert!(out.len() > 1000, "records before the cut: {}", out.len());
    // Every record before the cut is whole and in order; the one the cut falls in, if any, is
    // reported as truncated at its own offset.
    let mut expected_offset = 0u64;
    for (i, piece) in out.iter().enumerate() {
        let text = format!("{{\"n\":{i}}}");
        match piece {
            Out::Record(offset, got) => {
                assert_eq!((*offset, got), (expected_offset, &text));
                expected_offset += text.len() as u64 + 1;
            }
            Out::Broken(offset, Broken::Truncated) => {
                assert_eq!(i, out.len() - 1, "only the last piece can be cut");
                assert_eq!(*offset, expected_offset);
            }
            other => panic!("{other:?}"),
        }
    }
    match end {
        Err(ObjectError::Read {
            gzip: true,
            after,
            source,
        }) => {
            assert!(after > 0 && after < plain.len() as u64);
            let error = ObjectError::<String>::Read {
                gzip: true,
                after,
                source,
            };
            let message = error.to_string();
            assert!(message.contains("gzip stream is broken after"), "{message}");
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn gzip_is_detected_by_its_magic_bytes_only() {
    // Plain bytes that start with 0x1f but not 0x1f 0x8b are plain (and broken).
    let (out, end) = decode(&b"\x1f{\"a\":1}\n{\"b\":2}"[..], 64);
    assert!(matches!(out[0], Out::Broken(0, _)));
    assert_eq!(out[1], Out::Record(9, r#"{"b":2}"#.into()));
    assert!(matches!(end, Ok(ObjectEnd { gzip: false, .. })));
}

#[test]
fn bytes_after_the_last_gzip_member_are_an_error_after_the_records() {
    let mut object = gzip(b"{\"a\":1}\n");
    object.extend_from_slice(b"not gzip at all");
    let (out, end) = decode(&object[..], 64);
    assert_eq!(out, vec![Out::Record(0, r#"{"a":1}"#.into())]);
    assert!(
        matches!(end, Err(ObjectError::Read { gzip: true, .. })),
        "{end:?}"
    );
}

/// A source that fails after some bytes, as a dropped S3 connection does.
struct FailingAfter {
    data: Vec<u8>,
    at: usize,
}

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.data.len() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let n = buf.len().min(self.data.len() - self.at).min(10);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_read_error_ends_the_object_after_the_records_already_read() {
    let (out, end) = decode(
        FailingAfter {
            data: b"{\"a\":1}\n{\"b\":2}\n{\"c\"".to_vec(),
            at: 0,
        },
        8,
    );
    assert_eq!(
        out,
        vec![
            Out::Record(0, r#"{"a":1}"#.into()),
            Out::Record(8, r#"{"b":2}"#.into()),
            Out::Broken(16, Broken::Truncated),
        ]
    );
    match end {
        Err(ObjectError::Read {
            after: 20,
            gzip: false,
            source,
        }) => {
            assert_eq!(source.kind(), io::ErrorKind::ConnectionReset);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_handler_that_stops_stops_the_reading_thread_too() {
    let plain = records(200_000);
    let options = DecodeOptions {
        max_record_bytes: 1024,
        chunk_bytes: 1024,
    };
    let mut seen = 0;
    let result = decode_object::<AnyJson, &str, _>(&plain[..], &options, |_| {
        seen += 1;
        if seen == 10 { Err("enough") } else { Ok(()) }
    });
    assert!(matches!(result, Err(ObjectError::Stopped("enough"))));
    assert_eq!(seen, 10);
}

#[test]
fn an_empty_object_is_read_to_its_end() {
    let (out, end) = decode(&b""[..], 64);
    assert!(out.is_empty());
    assert!(matches!(
        end,
        Ok(ObjectEnd {
            bytes: 0,
            gzip: false
        })
    ));
}

/// A source that panics, as a bug in an adapter might.
struct Panicking;

impl Read for Panicking {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        panic!("adapter bug");
    }
}

#[test]
fn a_reader_that_dies_is_a_failed_object_not_a_clean_end() {
    let (out, end) = decode(Panicking, 64);
    assert!(out.is_empty());
    match end {
        Err(ObjectError::Read { source, .. }) => {
            assert!(
                source.to_string().contains("stopped unexpectedly"),
                "{source}"
            );
        }
        other => panic!("{other:?}"),
    }
}
