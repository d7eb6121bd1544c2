//! Firehose objects: the bytes Kinesis Data Firehose wrote to S3 → one JSON value at a time.
//!
//! An object is a stream of JSON values, concatenated with no delimiter (Firehose's default),
//! newline-delimited (`AppendDelimiterToRecord`), pretty-printed over several lines, or any mix,
//! optionally gzip-compressed (one or several members; detected by the magic bytes, never by the
//! key's extension).
//!
//! - [`split`]: the framing state machine: chunks of bytes in, parsed values out, broken records
//!   reported with their byte offset and skipped, memory bounded by the record size limit;
//! - [`object`]: a reader (file, stdin, S3 body) → gzip sniffing → chunks, inflating on one thread
//!   while the caller parses on another.

pub mod object;
mod skip;
pub mod split;

pub use object::{DecodeOptions, ObjectEnd, ObjectError, decode_object};
pub use split::{Broken, Parse, Piece, Splitter};

/// The framing of Monitron records: each value read as the shared Monitron model
/// ([`crate::monitron::Value`]).
pub struct MonitronFormat;

impl Parse for MonitronFormat {
    type Value<'a> = crate::monitron::Value<'a>;
}

/// The default limit on the size of one record: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;
