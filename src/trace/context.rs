//! W3C Trace Context's `traceparent`: one alert's trace id, from the Monitron record to the S/4
//! request, as text on the wire.
//!
//! Rules:
//! - the value is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase
//!   (W3C Trace Context level 1); we write version `00` only;
//! - a value is refused (and the caller starts a new trace) when it is longer than
//!   [`LONGEST`], its version is `ff` or not two lowercase hex digits, version `00` is not exactly
//!   55 characters, a later version's 56th character is not `-`, any field is not lowercase hex
//!   of its length, or either id is all zeros. A later version is read by its first four fields,
//!   as the recommendation asks;
//! - an alert's own trace ([`TraceParent::for_alert`]) is derived from its identity (the
//!   CloudEvent `source` and `id`): the same Monitron event forwarded twice (Firehose delivers at
//!   least once), resent or reprocessed is one trace. Its parent id is derived too, so
//!   `e2b scan` prints what the forwarder publishes, byte for byte (when spans are exported,
//!   the parent id sent is the publish span's, `crate::trace::publish_span`);
//! - a request made for the trace ([`TraceParent::child`]) keeps the trace id and flags and gets
//!   a span id of its own (random, never zero);
//! - an X-Ray trace header (`Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1`, Lambda's
//!   `_X_AMZN_TRACE_ID`) is read as the same ids in W3C form, to link an invocation to it.

use std::fmt;

use sha2::{Digest, Sha256};

/// The longest `traceparent` read: a later version may add fields, but 10 kB is an attack.
pub const LONGEST: usize = 256;

/// The sampled flag.
const SAMPLED: u8 = 0x01;

/// A parsed (or made) `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("longer than {LONGEST} characters ({0})")]
    TooLong(usize),
    #[error("version `{0}` is not two lowercase hex digits other than ff")]
    Version(String),
    #[error("version 00 is 55 characters, this one is {0}")]
    Length(usize),
    #[error("the {0} is not lowercase hex of its length")]
    Field(&'static str),
    #[error("the {0} is all zeros")]
    Zero(&'static str),
}

fn hex<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], Refused> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return Err(Refused::Field(field));
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = h << 4 | l,
            _ => return Err(Refused::Field(field)),
        }
    }
    Ok(out)
}

fn hex_text(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn nonzero_span_id() -> [u8; 8] {
    fastrand::u64(1..).to_be_bytes()
}

impl TraceParent {
    /// Reads a `traceparent` value by the rules above.
    pub fn parse(value: &str) -> Result<TraceParent, Refused> {
        if value.len() > LONGEST {
            return Err(Refused::TooLong(value.len()));
        }
        let version = value.get(..2).unwrap_or(value);
        let [v] = hex::<1>(version, "version").map_err(|_| Refused::Version(version.into()))?;
        if v == 0xff {
            return Err(Refused::Version(version.into()));
        }
        let fields = match (v, value.len()) {
            (0, 55) => value,
            (0, n) => return Err(Refused::Length(n)),
            (_, n) if n < 55 => return Err(Refused::Length(n)),
            (_, 55) => value,
            (_, _) if value.as_bytes()[55] == b'-' => &value[..55],
            (_, n) => return Err(Refused::Length(n)),
        };
        let mut parts = fields.split('-');
        let (_, trace, parent, flags) = (parts.next(), parts.next(), parts.next(), parts.next());
        let trace_id = hex::<16>(trace.unwrap_or_default(), "trace id")?;
        let parent_id = hex::<8>(parent.unwrap_or_default(), "parent id")?;
        let [flags] = hex::<1>(flags.unwrap_or_default(), "flags")?;
        if trace_id == [0; 16] {
            return Err(Refused::Zero("trace id"));
        }
        if parent_id == [0; 8] {
            return Err(Refused::Zero("parent id"));
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace of an alert, from its CloudEvent `source` and `id` (see the module's rules).
    pub fn for_alert(source: &str, id: &str) -> TraceParent {
        let digest = Sha256::new()
            .chain_update(b"e2b alert trace\0")
            .chain_update(source.as_bytes())
            .chain_update(b"\0")
            .chain_update(id.as_bytes())
            .finalize();
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        trace_id.copy_from_slice(&digest[..16]);
        parent_id.copy_from_slice(&digest[16..24]);
        // All zeros is invalid; a digest that gives it is as unlikely as any other.
        trace_id[15] |= u8::from(trace_id == [0; 16]);
        parent_id[7] |= u8::from(parent_id == [0; 8]);
        TraceParent {
            trace_id,
            parent_id,
            flags: SAMPLED,
        }
    }

    /// The context of a request made within this trace: the same trace, a span of its own.
    pub fn child(&self) -> TraceParent {
        self.with_span(nonzero_span_id())
    }

    /// The same trace with `span_id` as the parent id (an OpenTelemetry span's).
    pub fn with_span(&self, span_id: [u8; 8]) -> TraceParent {
        TraceParent {
            parent_id: span_id,
            ..*self
        }
    }

    /// The trace id as 32 lowercase hex digits: what logs, records and the console show.
    pub fn trace_id(&self) -> String {
        hex_text(&self.trace_id)
    }

    /// The parent (span) id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex_text(&self.parent_id)
    }

    /// Reads an X-Ray trace header (Lambda's `_X_AMZN_TRACE_ID`); `None` without a valid root.
    pub fn from_x_ray(header: &str) -> Option<TraceParent> {
        let mut root = None;
        let mut parent = None;
        let mut flags = 0;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", r)) => root = Some(r),
                Some(("Parent", p)) => parent = Some(p),
                Some(("Sampled", "1")) => flags = SAMPLED,
                _ => {}
            }
        }
        let mut root = root?.split('-');
        let (one, time, unique) = (root.next()?, root.next()?, root.next()?);
        if one != "1" || root.next().is_some() || time.len() != 8 || unique.len() != 24 {
            return None;
        }
        let trace_id = hex::<16>(&format!("{time}{unique}"), "trace id").ok()?;
        let parent_id = match parent {
            Some(p) => hex::<8>(p, "parent id").ok()?,
            None => nonzero_span_id(),
        };
        (trace_id != [0; 16] && parent_id != [0; 8]).then_some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_reads_and_writes_back_the_same() {
        let tp = TraceParent::parse(GOOD).expect("valid");
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id(), "00f067aa0ba902b7");
        assert_eq!(tp.flags, 1);
        assert_eq!(tp.to_string(), GOOD);
    }

    #[test]
    fn malformed_values_are_refused_with_their_reason() {
        let cases = [
            (GOOD.replace("00-", "ff-"), "version"),
            (GOOD.replacen("00", "0g", 1), "version"),
            (format!("{GOOD}-extra"), "55 characters"),
            (GOOD[..54].to_string(), "55 characters"),
            (GOOD.to_uppercase(), "trace id"),
            (
                GOOD.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
                "all zeros",
            ),
            (
                GOOD.replace("00f067aa0ba902b7", &"0".repeat(16)),
                "all zeros",
            ),
            (GOOD.replace("4bf92f35", "4BF92F35"), "trace id"),
            (GOOD.replace("-01", "-1x"), "flags"),
            (GOOD.replace('-', "_"), "trace id"),
            ("x".repeat(10_000), "longer than"),
            (String::new(), "version"),
            ("é".to_string(), "version"),
        ];
        for (value, reason) in cases {
            let refused = TraceParent::parse(&value);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains(reason)),
                "{value:.60}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let tp = TraceParent::parse(later).expect("a later version");
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(TraceParent::parse(&later.replace("01-what", "01xwhat")).is_err());
        // Written back as the version we know.
        assert!(tp.to_string().starts_with("00-"));
    }

    #[test]
    fn an_alerts_trace_depends_on_its_identity_only() {
        let a = TraceParent::for_alert("monitron/123/Plant", "ev-1");
        assert_eq!(a, TraceParent::for_alert("monitron/123/Plant", "ev-1"));
        assert_ne!(
            a.trace_id,
            TraceParent::for_alert("monitron/123/Plant", "ev-2").trace_id
        );
        assert_ne!(
            a.trace_id,
            TraceParent::for_alert("monitron/123/Plan", "tev-1").trace_id
        );
        assert_eq!(TraceParent::parse(&a.to_string()), Ok(a));
        let child = a.child();
        assert_eq!(child.trace_id, a.trace_id);
        assert_ne!(child.parent_id, [0; 8]);
    }

    #[test]
    fn an_x_ray_header_is_the_same_ids_in_w3c_form() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let tp = TraceParent::from_x_ray(header).expect("valid");
        assert_eq!(tp.trace_id(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(tp.span_id(), "53995c3f42cd8ad8");
        assert_eq!(tp.flags, 1);
        assert!(TraceParent::from_x_ray("Root=2-5759e988-bd862e3fe1be46a994272793").is_none());
        assert!(TraceParent::from_x_ray("Parent=53995c3f42cd8ad8").is_none());
        assert!(TraceParent::from_x_ray("").is_none());
    }
}
