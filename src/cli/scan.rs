//! `e2b scan`: objects (files, stdin, S3) → the payloads the forwarder would publish.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::ValueEnum;
use tokio_util::io::SyncIoBridge;

use crate::aws::s3::{ObjectStore, S3Location};
use crate::event::{EventBuilder, Origin, PayloadFormat, TopicTemplate, topic};
use crate::forwarder::config;
use crate::forwarder::firehose::{DecodeOptions, ObjectError};
use crate::forwarder::scan::{Report, ScanConfig, Scanner};
use crate::forwarder::trigger::ObjectRef;
use crate::monitron::ForwardingRules;

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Firehose objects: files (gzip or not), `-` for standard input, or `s3://bucket/key`
    /// (read with the usual AWS settings: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,

    /// Payload format.
    #[arg(long, value_enum, default_value_t = Format::Cloudevents)]
    format: Format,

    /// Print each event's mesh topic before its payload, separated by a tab.
    #[arg(long)]
    topics: bool,

    /// With --topics, print the topics as SAP Event Mesh takes them under this namespace (the
    /// service key's `namespace`, e.g. `acme/s4/monitron`): Event Mesh's alphabet, at most 150
    /// characters (`event::topic::event_mesh`).
    #[arg(long, value_name = "NAMESPACE")]
    event_mesh_namespace: Option<String>,

    /// Mesh topic template (placeholders: see `--help`).
    #[arg(long, value_name = "TEMPLATE", default_value = topic::DEFAULT_TOPIC_TEMPLATE,
          long_help = topic_template_help())]
    topic_template: String,

    /// Also forward v2 measurements whose model classification changed to or from WARNING/ALARM.
    #[arg(long)]
    model_transitions: bool,

    /// Also forward sensor and gateway connect/disconnect events.
    #[arg(long)]
    connectivity: bool,

    /// The new asset states forwarded, as the forwarder's FORWARD_STATES: a comma list
    /// (UNKNOWN, HEALTHY, NEEDS_MAINTENANCE, WARNING, ALARM) or `all`. Default: the payload
    /// format's, as in the forwarder (sap-e2b: NEEDS_MAINTENANCE; cloudevents: all).
    #[arg(long, value_name = "STATES")]
    states: Option<String>,

    /// Records larger than this many bytes are reported as malformed and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = crate::forwarder::firehose::DEFAULT_MAX_RECORD_BYTES)]
    max_record_bytes: usize,

    /// Print only the summary, not each problem.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// CloudEvents 1.0, structured JSON.
    Cloudevents,
    /// The SAP sample's envelope, for the SAP action-management processor.
    #[value(name = "sap-e2b")]
    SapE2b,
}

fn topic_template_help() -> String {
    let mut help = String::from(
        "Mesh topic template: levels separated by `/`, each literal text and {placeholders}. \
         Names are made safe for Solace (a `/` in a name becomes `_`, an empty level `_`, \
         at most 250 bytes). Placeholders:\n",
    );
    for (name, meaning) in topic::PLACEHOLDERS {
        help.push_str(&format!("  {{{name}}}: {meaning}\n"));
    }
    help
}

pub fn run(args: ScanArgs) -> ExitCode {
    let topics = match TopicTemplate::parse(&args.topic_template) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("e2b scan: --topic-template: {e}");
            return ExitCode::from(2);
        }
    };
    let format = match args.format {
        Format::Cloudevents => PayloadFormat::CloudEvents,
        Format::SapE2b => PayloadFormat::SapE2b,
    };
    let states = match args.states.as_deref().map(config::parse_states) {
        None => config::default_states(format),
        Some(Ok(states)) => states,
        Some(Err(e)) => {
            eprintln!("e2b scan: --states {e}");
            return ExitCode::from(2);
        }
    };
    let config = ScanConfig {
        rules: ForwardingRules {
            model_transitions: args.model_transitions,
            connectivity: args.connectivity,
            states,
        },
        events: EventBuilder { format, topics },
        decode: DecodeOptions {
            max_record_bytes: args.max_record_bytes,
            ..DecodeOptions::default()
        },
        measurements: false,
    };
    let mut scanner = Scanner::new(config);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut failed = false;
    let mut objects = Objects::default();

    for path in &args.paths {
        let print = |report: Report| -> io::Result<()> {
            match report {
                Report::Event(event) => {
                    if args.topics {
                        let topic = match &args.event_mesh_namespace {
                            Some(namespace) => topic::event_mesh_topic(namespace, &event.topic),
                            None => event.topic.clone(),
                        };
                        out.write_all(topic.as_bytes())?;
                        out.write_all(b"\t")?;
                    }
                    out.write_all(event.payload.as_bytes())?;
                    out.write_all(b"\n")
                }
                Report::Problem(problem) => {
                    if !args.quiet {
                        eprintln!("{problem}");
                    }
                    Ok(())
                }
                Report::Measurement(_) => Ok(()),
            }
        };
        let (origin, reader) = match objects.open(path) {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!("e2b scan: {e}");
                failed = true;
                continue;
            }
        };
        let result = scanner.scan(&origin, reader, print);
        match result {
            Ok(_) => {}
            Err(ObjectError::Stopped(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return ExitCode::SUCCESS;
            }
            Err(ObjectError::Stopped(e)) => {
                eprintln!("e2b scan: cannot write the events: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("e2b scan: {}: {e}", origin.label());
                failed = true;
            }
        }
    }
    if let Err(e) = out.flush()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("e2b scan: cannot write the events: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("e2b scan: {}", scanner.summary());
    if failed {
        eprintln!("e2b scan: not every object could be read to its end (see above)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Opens what a command names: a file, `-` for standard input, or `s3://bucket/key` (with the
/// usual AWS settings; the runtime and client are made at the first S3 path).
#[derive(Default)]
pub(super) struct Objects {
    runtime: Option<tokio::runtime::Runtime>,
    s3: Option<aws_sdk_s3::Client>,
}

impl Objects {
    /// The object's origin and a reader of its bytes; `Err` says why it cannot be read.
    pub(super) fn open(
        &mut self,
        path: &str,
    ) -> Result<(Origin, Box<dyn io::Read + Send>), String> {
        if path == "-" {
            let origin = Origin::Local { path: path.into() };
            return Ok((origin, Box::new(io::stdin())));
        }
        let Some(location) = S3Location::parse(path) else {
            let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
            let origin = Origin::Local { path: path.into() };
            return Ok((origin, Box::new(file)));
        };
        let runtime = match &self.runtime {
            Some(r) => r,
            None => self.runtime.insert(
                super::runtime().map_err(|e| format!("cannot start the async runtime: {e}"))?,
            ),
        };
        let s3 = match &self.s3 {
            Some(c) => c,
            None => self
                .s3
                .insert(runtime.block_on(async { super::s3_client(&super::aws().await).await })),
        };
        let object = ObjectRef {
            location: location.clone(),
            version_id: None,
            etag: None,
            size: None,
        };
        let body = runtime
            .block_on(s3.open(&object))
            .map_err(|e| e.to_string())?;
        let body = SyncIoBridge::new_with_handle(body, runtime.handle().clone());
        Ok((Origin::S3(location), Box::new(body)))
    }
}
