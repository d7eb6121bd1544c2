//! One object's bytes → framed records: gzip sniffing, inflating on a second thread, framing on
//! the caller's thread.

use std::io::{self, Cursor, Read};
use std::sync::mpsc;

use flate2::read::MultiGzDecoder;

use super::split::{Parse, Piece, Splitter};

/// How an object is decoded.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Records longer than this are reported as too large and skipped.
    pub max_record_bytes: usize,
    /// Size of the chunks handed from the reading thread to the framer.
    pub chunk_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_record_bytes: super::DEFAULT_MAX_RECORD_BYTES,
            chunk_bytes: 256 * 1024,
        }
    }
}

/// An object read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectEnd {
    /// Bytes decoded (after decompression).
    pub bytes: u64,
    /// Whether the object was gzip-compressed.
    pub gzip: bool,
}

/// An object that could not be read to its end. Every record before the failure has been handed
/// out already.
#[derive(Debug)]
pub enum ObjectError<E> {
    /// Reading or inflating failed after `after` decoded bytes.
    Read {
        after: u64,
        gzip: bool,
        source: io::Error,
    },
    /// The record handler asked to stop.
    Stopped(E),
}

impl<E: std::fmt::Display> std::fmt::Display for ObjectError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectError::Read {
                after,
                gzip: true,
                source,
            } => write!(
                f,
                "the gzip stream is broken after {after} decompressed bytes ({source}); \
                 every record before that point was read"
            ),
            ObjectError::Read { after, source, .. } => write!(
                f,
                "reading failed after {after} bytes ({source}); every record before that point was read"
            ),
            ObjectError::Stopped(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for ObjectError<E> {}

/// Decodes one object from `reader`, handing each record (or broken record) to `f` in order.
///
/// Inflating runs on a second thread, so decompression and parsing overlap; at most four chunks
/// are in flight, so memory stays bounded whatever the object's size.
pub fn decode_object<P, E, R>(
    reader: R,
    options: &DecodeOptions,
    mut f: impl for<'a> FnMut(Piece<'a, P::Value<'a>>) -> Result<(), E>,
) -> Result<ObjectEnd, ObjectError<E>>
where
    P: Parse,
    R: Read + Send,
{
    const IN_FLIGHT: usize = 4;
    let chunk_bytes = options.chunk_bytes.max(1);
    let mut splitter = Splitter::new(options.max_record_bytes);

    std::thread::scope(|scope| {
        let (chunks_tx, chunks_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(IN_FLIGHT);
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
        let reading = scope.spawn(move || read_chunks(reader, chunk_bytes, &chunks_tx, &spare_rx));

        let mut failure = None;
        for message in chunks_rx {
            match message {
                Ok(chunk) => {
                    if let Err(e) = splitter.push::<P, E>(&chunk, &mut f) {
                        failure = Some(ObjectError::Stopped(e));
                        break;
                    }
                    // The reader may have finished already; then the chunk is simply dropped.
                    let _ = spare_tx.send(chunk);
                }
                Err(source) => {
                    failure = Some(ObjectError::Read {
                        after: splitter.stream_offset(),
                        gzip: false,
                        source,
                    });
                    break;
                }
            }
        }
        // `chunks_rx` is gone: a reader still running stops at its next send.
        let gzip = match reading.join() {
            Ok(gzip) => gzip,
            Err(_) => {
                // The channel closed early because the reader died: that is no end of object.
                failure = failure.or_else(|| {
                    Some(ObjectError::Read {
                        after: splitter.stream_offset(),
                        gzip: false,
                        source: io::Error::other(
                            "the thread reading the object stopped unexpectedly",
                        ),
                    })
                });
                false
            }
        };
        match failure {
            Some(ObjectError::Stopped(e)) => Err(ObjectError::Stopped(e)),
            Some(ObjectError::Read { after, source, .. }) => {
                // The record the stream was cut inside is reported as truncated.
                splitter
                    .finish::<P, E>(&mut f)
                    .map_err(ObjectError::Stopped)?;
                Err(ObjectError::Read {
                    after,
                    gzip,
                    source,
                })
            }
            None => {
                splitter
                    .finish::<P, E>(&mut f)
                    .map_err(ObjectError::Stopped)?;
                Ok(ObjectEnd {
                    bytes: splitter.stream_offset(),
                    gzip,
                })
            }
        }
    })
}

/// The most one read asks of the (inflating) source.
const MAX_READ_BYTES: usize = 16 * 1024;

/// The reading thread: sniffs gzip, then sends full chunks until the end or the first error.
/// Returns whether the object was gzip.
fn read_chunks<R: Read>(
    reader: R,
    chunk_bytes: usize,
    chunks: &mpsc::SyncSender<io::Result<Vec<u8>>>,
    spare: &mpsc::Receiver<Vec<u8>>,
) -> bool {
    let (mut source, gzip) = match Decoded::open(reader) {
        Ok(opened) => opened,
        Err(e) => {
            let _ = chunks.send(Err(e));
            return false;
        }
    };
    loop {
        let mut chunk = spare.try_recv().unwrap_or_default();
        chunk.resize(chunk_bytes, 0);
        let mut filled = 0;
        let mut error = None;
        while filled < chunk_bytes {
            // Inflate reports a corrupt stream without the bytes it produced in that same call:
            // small calls bound what a corruption can take with it.
            let end = (filled + MAX_READ_BYTES).min(chunk_bytes);
            match source.read(&mut chunk[filled..end]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        chunk.truncate(filled);
        let ended = filled < chunk_bytes;
        if filled > 0 && chunks.send(Ok(chunk)).is_err() {
            return gzip;
        }
        if let Some(e) = error {
            let _ = chunks.send(Err(e));
            return gzip;
        }
        if ended {
            return gzip;
        }
    }
}

/// An object's bytes, inflated when they start with the gzip magic bytes.
enum Decoded<R: Read> {
    Plain(io::Chain<Cursor<Vec<u8>>, R>),
    Gzip(Box<MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Decoded<R> {
    fn open(mut reader: R) -> io::Result<(Self, bool)> {
        let mut head = Vec::with_capacity(2);
        while head.len() < 2 {
            let mut byte = [0u8; 2];
            let want = 2 - head.len();
            match reader.read(&mut byte[..want]) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&byte[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let gzip = head == [0x1f, 0x8b];
        let stream = Cursor::new(head).chain(reader);
        Ok(if gzip {
            (Decoded::Gzip(Box::new(MultiGzDecoder::new(stream))), true)
        } else {
            (Decoded::Plain(stream), false)
        })
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Gzip(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests;
