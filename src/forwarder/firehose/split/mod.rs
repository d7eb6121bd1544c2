//! Framing: a byte stream, fed in chunks of any size, → one parsed JSON value at a time.
//!
//! Each value is parsed straight into the caller's typed model (see [`Parse`]): the parser itself
//! finds where the value ends, so there is no separate scanning pass, and a syntax error is found
//! at the byte where it happens rather than at the end of the object.
//!
//! Rules, all independent of how the stream is cut into chunks:
//! - whitespace between values is ignored; values may follow each other with no delimiter;
//! - a value longer than the limit is reported as [`Broken::TooLarge`] and the rest of it is
//!   skipped by following its nesting, without holding it;
//! - a complete value that is not UTF-8, or that the model refuses (a key given twice), is
//!   reported and skipped whole;
//! - a value that is not valid JSON, or that the stream ends inside, is reported with its byte
//!   offset, and decoding resumes at the next record boundary after the value's first byte: the
//!   start of the next line, or a `{` right after a `}` (how Firehose concatenates records when
//!   it adds no delimiter), whichever comes first.
//!
//! Memory: the unconsumed tail of the stream (at most about one record plus one chunk).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::error::Category;

use super::skip::{Skipped, ValueSkipper};

/// The typed model a record is parsed into. `Value<'a>` may borrow from the record's bytes.
///
/// The model must accept any JSON value (so that only syntax errors make a record broken); a
/// record it does not recognise is the model's business, not the framer's.
pub trait Parse {
    type Value<'a>: Deserialize<'a>;
}

/// Why a record could not be decoded. Offsets are in the (decompressed) stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Not valid JSON: the parser's message, and the offset of the byte where it stopped.
    Syntax { message: String, at: u64 },
    /// The object ended inside the record.
    Truncated,
    /// Bytes that are not UTF-8, at this offset.
    InvalidUtf8 { at: u64 },
    /// Valid JSON that the model refuses (a key given twice): the parser's message.
    Refused { message: String },
    /// The record is longer than the limit (in bytes).
    TooLarge { limit: usize },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Syntax { message, at } => write!(f, "not valid JSON at byte {at}: {message}"),
            Broken::Truncated => write!(f, "the object ends inside this record (truncated)"),
            Broken::InvalidUtf8 { at } => write!(f, "invalid UTF-8 at byte {at}"),
            Broken::Refused { message } => write!(f, "not a usable record: {message}"),
            Broken::TooLarge { limit } => write!(
                f,
                "record larger than the limit of {limit} bytes; skipped without reading it"
            ),
        }
    }
}

/// What the framer hands out, in stream order.
#[derive(Debug)]
pub enum Piece<'a, V> {
    /// A complete value: its offset in the stream, its exact bytes, and the parsed model.
    Record {
        offset: u64,
        bytes: &'a [u8],
        value: V,
    },
    /// A value that could not be decoded, where it started, and why.
    Broken { offset: u64, reason: Broken },
}

#[derive(Debug)]
enum Mode {
    Normal,
    /// Dropping bytes up to the next record boundary; `prev` is the last byte dropped.
    Resync {
        prev: u8,
    },
    /// Dropping the rest of an oversized value.
    SkipValue(ValueSkipper),
}

/// The framing state machine. Feed it with [`Splitter::push`], end with [`Splitter::finish`].
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    /// `buf[pos..]` is not consumed yet.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    max_record: usize,
    mode: Mode,
    /// The pending record is not parsed again before this many bytes are available: a record
    /// that spans many chunks is re-parsed a logarithmic number of times, not once per chunk.
    retry_at: usize,
    at_start: bool,
}

impl Splitter {
    /// A framer that reports records longer than `max_record` bytes as [`Broken::TooLarge`].
    pub fn new(max_record: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            pos: 0,
            base: 0,
            // Bounded so that `max_record + 1` and doubling never overflow.
            max_record: max_record.clamp(1, usize::MAX / 4),
            mode: Mode::Normal,
            retry_at: 0,
            at_start: true,
        }
    }

    /// Bytes held right now (the unconsumed tail): bounded by about the record limit plus one
    /// chunk, whatever the stream holds.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes of the stream seen so far.
    pub fn stream_offset(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Feeds the next bytes of the stream; complete values are handed to `f` in order.
    /// An error from `f` stops the work and is returned.
    pub fn push<P: Parse, E>(
        &mut self,
        mut chunk: &[u8],
        f: &mut impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            match &mut self.mode {
                Mode::Normal => break,
                Mode::Resync { prev } => match find_boundary(chunk, *prev) {
                    Some(i) => {
                        self.mode = Mode::Normal;
                        self.base += i as u64;
                        chunk = &chunk[i..];
                    }
                    None => {
                        if let Some(&last) = chunk.last() {
                            *prev = last;
                        }
                        self.base += chunk.len() as u64;
                        return Ok(());
                    }
                },
                Mode::SkipValue(skipper) => match skipper.feed(chunk) {
                    Skipped::Ended(end) => {
                        self.mode = Mode::Normal;
                        self.base += end as u64;
                        chunk = &chunk[end..];
                    }
                    Skipped::Broken(at) => {
                        // Look for the next boundary from the offending byte on.
                        let prev = if at > 0 { chunk[at - 1] } else { 0 };
                        self.mode = Mode::Resync { prev };
                        self.base += at as u64;
                        chunk = &chunk[at..];
                    }
                    Skipped::NeedMore => {
                        self.base += chunk.len() as u64;
                        return Ok(());
                    }
                },
            }
        }
        if chunk.is_empty() {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        self.drain::<P, E>(false, f)
    }

    /// Ends the stream: a record left open is reported as truncated.
    pub fn finish<P: Parse, E>(
        &mut self,
        f: &mut impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
    ) -> Result<(), E> {
        if matches!(self.mode, Mode::Normal) {
            self.drain::<P, E>(true, f)?;
        }
        self.mode = Mode::Normal;
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.pos = 0;
        Ok(())
    }

    fn drain<P: Parse, E>(
        &mut self,
        at_eof: bool,
        f: &mut impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            if self.at_start {
                // A UTF-8 byte order mark at the very start of an object is tolerated.
                let rest = &self.buf[self.pos..];
                if rest.len() < 3 && !at_eof && b"\xEF\xBB\xBF".starts_with(rest) {
                    return Ok(());
                }
                if rest.starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                }
                self.at_start = false;
            }
            while self.pos < self.buf.len() && is_json_space(self.buf[self.pos]) {
                self.pos += 1;
            }
            let avail = self.buf.len() - self.pos;
            if avail == 0 {
                return Ok(());
            }
            if !at_eof && avail < self.retry_at {
                return Ok(());
            }
            let offset = self.base + self.pos as u64;
            // Never look further than one byte past the limit, so that the outcome does not
            // depend on how much happens to be buffered.
            let window_len = avail.min(self.max_record + 1);
            let window_complete = at_eof && window_len == avail;
            let step = {
                let window = &self.buf[self.pos..self.pos + window_len];
                parse_one::<P, E>(window, offset, window_complete, self.max_record, f)?
            };
            match step {
                Step::Consumed(end) => {
                    self.pos += end;
                    self.retry_at = 0;
                }
                Step::NeedMore => {
                    if window_complete {
                        self.broken::<P, E>(offset, Broken::Truncated, f)?;
                    } else if window_len > self.max_record {
                        self.too_large::<P, E>(offset, f)?;
                    } else {
                        self.retry_at = (avail * 2).min(self.max_record + 1).max(avail + 1);
                        return Ok(());
                    }
                }
                Step::Broken(reason) => self.broken::<P, E>(offset, reason, f)?,
            }
        }
    }

    /// Reports a broken record and resumes at the next record boundary after its first byte.
    fn broken<P: Parse, E>(
        &mut self,
        offset: u64,
        reason: Broken,
        f: &mut impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.retry_at = 0;
        let from = self.pos + 1;
        self.resync_from(from);
        f(Piece::Broken { offset, reason })
    }

    /// Moves `pos` to the first record boundary at or after `from` (a buffer index), or drops
    /// the buffer and looks further in the next chunks.
    fn resync_from(&mut self, from: usize) {
        let from = from.min(self.buf.len());
        let prev = if from > 0 { self.buf[from - 1] } else { 0 };
        match find_boundary(&self.buf[from..], prev) {
            Some(i) => self.pos = from + i,
            None => {
                let prev = self.buf.last().copied().unwrap_or(prev);
                self.pos = self.buf.len();
                self.mode = Mode::Resync { prev };
            }
        }
    }

    /// Reports an oversized record and drops the rest of it as it arrives.
    fn too_large<P: Parse, E>(
        &mut self,
        offset: u64,
        f: &mut impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.retry_at = 0;
        let mut skipper = ValueSkipper::default();
        match skipper.feed(&self.buf[self.pos..]) {
            Skipped::Ended(end) => self.pos += end,
            Skipped::Broken(at) => {
                let from = self.pos + at;
                self.resync_from(from);
            }
            Skipped::NeedMore => {
                self.pos = self.buf.len();
                self.mode = Mode::SkipValue(skipper);
            }
        }
        let reason = Broken::TooLarge {
            limit: self.max_record,
        };
        f(Piece::Broken { offset, reason })
    }
}

/// The index at which the next record may start: just after a line break, or at a `{` that
/// follows a `}` (`prev` is the byte before `bytes`).
fn find_boundary(bytes: &[u8], prev: u8) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'\n', b'{', &bytes[from..]) {
        let at = from + i;
        if bytes[at] == b'\n' {
            return Some(at + 1);
        }
        let before = if at > 0 { bytes[at - 1] } else { prev };
        if before == b'}' {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A syntax error this close to the end of an incomplete window may be a token cut short.
const NEAR_END: usize = 8;

/// What parsing the value at the start of a window came to.
enum Step {
    /// A record, or a report on a complete value, was handed out; the value ended here.
    Consumed(usize),
    /// The window ends inside the value.
    NeedMore,
    /// The value is broken.
    Broken(Broken),
}

/// Parses the value at the start of `window` and hands it to `f` when it is complete and sound.
fn parse_one<P: Parse, E>(
    window: &[u8],
    offset: u64,
    window_complete: bool,
    max_record: usize,
    f: &mut impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
) -> Result<Step, E> {
    let mut values = serde_json::Deserializer::from_slice(window).into_iter::<P::Value<'_>>();
    let value = match values.next() {
        None => return Ok(Step::NeedMore),
        Some(Ok(value)) => value,
        Some(Err(e)) if e.classify() == Category::Eof => return Ok(Step::NeedMore),
        Some(Err(e)) if e.classify() == Category::Data => {
            // Valid JSON so far, refused by the model: find the value's end without the model
            // and skip it whole.
            let message = strip_position(&e.to_string());
            return Ok(match syntax_only(window, offset, window_complete) {
                Ok(end) if end > max_record => Step::NeedMore,
                Ok(end) => {
                    f(Piece::Broken {
                        offset,
                        reason: Broken::Refused { message },
                    })?;
                    Step::Consumed(end)
                }
                Err(step) => step,
            });
        }
        Some(Err(e)) => return Ok(syntax_error(window, offset, window_complete, &e)),
    };
    let end = values.byte_offset();
    if end == window.len() && !window_complete && !self_delimited(window[end - 1]) {
        // A bare number or literal that may go on in the next chunk.
        return Ok(Step::NeedMore);
    }
    if end > max_record {
        drop(value);
        let reason = Broken::TooLarge { limit: max_record };
        f(Piece::Broken { offset, reason })?;
        return Ok(Step::Consumed(end));
    }
    let bytes = &window[..end];
    if let Err(e) = std::str::from_utf8(bytes) {
        drop(value);
        let at = offset + e.valid_up_to() as u64;
        f(Piece::Broken {
            offset,
            reason: Broken::InvalidUtf8 { at },
        })?;
        return Ok(Step::Consumed(end));
    }
    f(Piece::Record {
        offset,
        bytes,
        value,
    })?;
    Ok(Step::Consumed(end))
}

/// The end of the JSON value at the start of `window`, checking syntax only.
fn syntax_only(window: &[u8], offset: u64, window_complete: bool) -> Result<usize, Step> {
    let mut values = serde_json::Deserializer::from_slice(window).into_iter::<IgnoredAny>();
    match values.next() {
        None => Err(Step::NeedMore),
        Some(Ok(_)) => {
            let end = values.byte_offset();
            if end == window.len() && !window_complete && !self_delimited(window[end - 1]) {
                return Err(Step::NeedMore);
            }
            Ok(end)
        }
        Some(Err(e)) if e.classify() == Category::Eof => Err(Step::NeedMore),
        Some(Err(e)) => Err(syntax_error(window, offset, window_complete, &e)),
    }
}

/// A syntax error: broken, unless it may be a token cut by the end of an incomplete window.
fn syntax_error(window: &[u8], offset: u64, window_complete: bool, e: &serde_json::Error) -> Step {
    let at = error_offset(window, e.line(), e.column());
    if !window_complete && at + NEAR_END >= window.len() {
        // `1.` or `1e` at the end of the window is only a number cut short.
        return Step::NeedMore;
    }
    // A string with bytes that are not UTF-8 stops the parser near them.
    let upto = (at + 4).min(window.len());
    let reason = match std::str::from_utf8(&window[..upto]) {
        Err(bad) if bad.error_len().is_some() => Broken::InvalidUtf8 {
            at: offset + bad.valid_up_to() as u64,
        },
        _ => Broken::Syntax {
            message: strip_position(&e.to_string()),
            at: offset + at as u64,
        },
    };
    Step::Broken(reason)
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A value whose last byte closes it (object, array, string): nothing more can belong to it.
fn self_delimited(last: u8) -> bool {
    matches!(last, b'}' | b']' | b'"')
}

/// The byte offset in `window` of serde_json's 1-based line and column.
fn error_offset(window: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0usize;
    for _ in 1..line {
        match memchr::memchr(b'\n', &window[start..]) {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(window.len())
}

/// serde_json appends " at line L column C"; the offset says it better.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
