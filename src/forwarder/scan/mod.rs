//! The forwarder's path without the network: objects → records → verdicts → events.
//!
//! A [`Scanner`] lives for one invocation (one Lambda event, one CLI run): it keeps the eventIds
//! already forwarded, so that a record is forwarded at most once per object and per invocation,
//! and counts what it saw. Each object is read to its end whatever its records look like; what
//! comes out, in input order, is handed to the caller as [`Report`]s.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;

use crate::event::{EventBuilder, Forwarded, ForwardedEvent, Origin, RecordAt, source_of};
use crate::forwarder::firehose::{
    DecodeOptions, MonitronFormat, ObjectEnd, ObjectError, Piece, decode_object,
};
use crate::monitron::{ForwardingRules, NotForwarded, Value, Verdict, classify, payload_for};
use crate::trend::{Point, Position};

/// What a scan does with records.
#[derive(Debug, Clone, Default)]
pub struct ScanConfig {
    pub rules: ForwardingRules,
    pub events: EventBuilder,
    pub decode: DecodeOptions,
    /// Also hand out each measurement record's trend point ([`Report::Measurement`]).
    pub measurements: bool,
}

/// Counts over one invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects read (to their end or not).
    pub objects: u64,
    /// Objects that could not be read to their end.
    pub objects_failed: u64,
    /// JSON values found, broken ones included.
    pub records: u64,
    /// Events built for publishing.
    pub forwarded: u64,
    /// Forwardable records whose eventId was already forwarded in this invocation.
    pub duplicates: u64,
    /// Monitron records that the rules do not forward (healthy measurements, ...).
    pub not_forwarded: u64,
    /// Valid JSON that is not Monitron.
    pub unrecognised: u64,
    /// Broken records and Monitron records without a usable identity.
    pub malformed: u64,
    /// Warnings about records that were still handled (e.g. an unreadable timestamp).
    pub warnings: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        write!(
            f,
            "{} ({} not read to the end), {}: {} forwarded, {}, {} not forwarded, {} unrecognised, {} malformed, {}",
            plural(self.objects, "object"),
            self.objects_failed,
            plural(self.records, "record"),
            self.forwarded,
            plural(self.duplicates, "duplicate"),
            self.not_forwarded,
            self.unrecognised,
            self.malformed,
            plural(self.warnings, "warning"),
        )
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The record was handled; something about it is worth knowing.
    Warning,
    /// The record could not be used and is skipped.
    Malformed,
}

/// A problem with one record, named by object and byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub object: String,
    /// Offset of the record in the (decompressed) object.
    pub offset: u64,
    pub severity: Severity,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Warning => "warning",
            Severity::Malformed => "malformed record",
        };
        write!(
            f,
            "{what}: {} at byte {}: {}",
            self.object, self.offset, self.reason
        )
    }
}

impl Problem {
    /// The log line the forwarder writes for it (the object names the S3 object, or the Kinesis
    /// stream, shard and sequence number).
    pub fn log(&self) {
        match self.severity {
            Severity::Malformed => {
                tracing::warn!(object = %self.object, offset = self.offset, reason = %self.reason, "malformed record skipped")
            }
            Severity::Warning => {
                tracing::warn!(object = %self.object, offset = self.offset, reason = %self.reason, "record warning")
            }
        }
    }
}

/// What a scan hands out, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Event(ForwardedEvent),
    Problem(Problem),
    /// A measurement's point, when [`ScanConfig::measurements`] asks for them; before the
    /// record's event if it is forwarded too.
    Measurement(Box<(Position, Point)>),
}

/// The forwarder's path over the objects of one invocation.
#[derive(Debug)]
pub struct Scanner {
    config: ScanConfig,
    /// `source` + NUL + `id` of every event forwarded in this invocation.
    forwarded: HashSet<String>,
    unknown_types: HashSet<String>,
    summary: Summary,
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Self {
        Scanner {
            config,
            forwarded: HashSet::new(),
            unknown_types: HashSet::new(),
            summary: Summary::default(),
        }
    }

    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Reads one object to its end, handing events and problems to `out` in input order.
    /// An error from `out` stops the scan and is returned.
    pub fn scan<R: Read + Send, E>(
        &mut self,
        origin: &Origin,
        reader: R,
        mut out: impl FnMut(Report) -> Result<(), E>,
    ) -> Result<ObjectEnd, ObjectError<E>> {
        self.summary.objects += 1;
        let label = origin.label();
        let decode = self.config.decode.clone();
        let mut ordinal = 0u64;
        let result = decode_object::<MonitronFormat, E, R>(reader, &decode, |piece| {
            self.summary.records += 1;
            ordinal += 1;
            match piece {
                Piece::Broken { offset, reason } => {
                    self.summary.malformed += 1;
                    out(Report::Problem(Problem {
                        object: label.clone(),
                        offset,
                        severity: Severity::Malformed,
                        reason: reason.to_string(),
                    }))
                }
                Piece::Record {
                    offset,
                    bytes,
                    value,
                } => {
                    let at = RecordAt {
                        ordinal: ordinal - 1,
                        offset,
                    };
                    self.record(origin, &label, at, bytes, &value, &mut out)
                }
            }
        });
        if result.is_err() {
            self.summary.objects_failed += 1;
        }
        result
    }

    fn record<E>(
        &mut self,
        origin: &Origin,
        label: &str,
        at: RecordAt,
        bytes: &[u8],
        value: &Value<'_>,
        out: &mut impl FnMut(Report) -> Result<(), E>,
    ) -> Result<(), E> {
        let problem = |severity, reason| {
            Report::Problem(Problem {
                object: label.to_string(),
                offset: at.offset,
                severity,
                reason,
            })
        };
        let Value::Object(record) = value else {
            self.summary.unrecognised += 1;
            return Ok(());
        };
        if self.config.measurements {
            // The framer has checked the bytes are UTF-8.
            let raw = String::from_utf8_lossy(bytes);
            if let Some(measured) = crate::trend::point::of_record(record, &raw) {
                out(Report::Measurement(Box::new(measured)))?;
            }
        }
        let payload = match payload_for(record, &self.config.rules) {
            Ok(payload) => payload,
            Err(reason) => {
                self.summary.malformed += 1;
                return out(problem(Severity::Malformed, reason));
            }
        };
        let verdict = classify(record, payload.as_ref(), &self.config.rules);
        let (schema, event_id, change) = match verdict {
            Verdict::Unrecognised => {
                self.summary.unrecognised += 1;
                return Ok(());
            }
            Verdict::Malformed { reason, .. } => {
                self.summary.malformed += 1;
                return out(problem(Severity::Malformed, reason));
            }
            Verdict::Skip { reason, .. } => {
                self.summary.not_forwarded += 1;
                if let NotForwarded::UnknownEventType(t) = reason
                    && self.unknown_types.insert(t.clone())
                {
                    self.summary.warnings += 1;
                    let reason =
                        format!("unknown v2 eventType `{t}`: not forwarded (said once per type)");
                    return out(problem(Severity::Warning, reason));
                }
                return Ok(());
            }
            Verdict::Forward {
                schema,
                event_id,
                change,
            } => (schema, event_id, change),
        };
        let source = source_of(record, schema);
        let key = format!("{source}\0{event_id}");
        let event_id: &str = &event_id;
        if self.forwarded.contains(&key) {
            self.summary.duplicates += 1;
            return Ok(());
        }
        // The framer has checked the bytes are UTF-8.
        let raw = String::from_utf8_lossy(bytes);
        let forwarded = Forwarded {
            record,
            payload: payload.as_ref(),
            raw: &raw,
            schema,
            event_id,
            change: &change,
        };
        match self.config.events.build(forwarded, source, origin) {
            Ok(mut event) => {
                event.record = at;
                self.forwarded.insert(key);
                self.summary.forwarded += 1;
                if let Some(warning) = &event.warning {
                    self.summary.warnings += 1;
                    out(problem(Severity::Warning, warning.clone()))?;
                }
                out(Report::Event(event))
            }
            Err(e) => {
                self.summary.malformed += 1;
                let reason = format!("eventId {event_id}: the event could not be built: {e}");
                out(problem(Severity::Malformed, reason))
            }
        }
    }
}

#[cfg(test)]
mod tests;
