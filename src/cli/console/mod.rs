//! `e2b console`: a web console on 127.0.0.1 where a maintenance or integration lead sees every
//! alarm's way to S/4 and acts on failures.
//!
//! Rules:
//! - the overview counts from the functions' CloudWatch metrics ([`metrics`]), and from the
//!   records where there are none;
//! - it reads with the operator's own AWS credentials and the functions' environment variables
//!   (`IDEMPOTENCY_TABLE` for episodes, `FAILURE_RECORDS` for the processor's failures,
//!   `FORWARDER_FAILURE_RECORDS` for the forwarder's refusals; `--table`, `--failures`,
//!   `--refusals` override them), so it works against an account and against
//!   `scripts/e2e-local.sh`;
//! - access ([`access`]): 127.0.0.1 only, a random token in the printed URL, state changes by POST
//!   from the console's own pages only;
//! - what it shows is a snapshot ([`snapshot`]): pages are served from memory, each says when
//!   its data was read and which source could not be read and why;
//! - Reprocess and Resend ([`actions`]) run the same code as `e2b reprocess` and `e2b resend`,
//!   after a confirmation page, and show the result in place;
//! - server-rendered HTML (askama templates compiled into the binary, `templates/console/`),
//!   readable without script; no asset is fetched from elsewhere.

pub mod access;
mod actions;
pub mod metrics;
mod overview;
mod pages;
pub mod snapshot;
mod storms;
mod trend;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::{Mutex, RwLock};

use crate::aws::records::FailureTarget;
use access::Access;
use snapshot::{Clients, Snapshot, Sources};

#[derive(clap::Args)]
pub struct ConsoleArgs {
    /// The port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8765)]
    port: u16,

    /// Open the console in the default browser.
    #[arg(long)]
    open: bool,

    /// The processor's idempotency table (episodes). Default: IDEMPOTENCY_TABLE.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// The processor's failure records. Default: FAILURE_RECORDS.
    #[arg(long, value_name = "TARGET")]
    failures: Option<String>,

    /// The forwarder's refusals. Default: FORWARDER_FAILURE_RECORDS.
    #[arg(long, value_name = "TARGET")]
    refusals: Option<String>,
}

/// The running console's state, shared by every request.
pub struct Console {
    pub access: Access,
    pub sources: Sources,
    pub clients: Clients,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One read at a time.
    reading: Mutex<()>,
    /// `S4_NOTIFICATION_URL`: a link for a notification number, `{number}` in it.
    pub notification_url: Option<String>,
}

impl Console {
    pub fn new(access: Access, sources: Sources, clients: Clients) -> Console {
        let notification_url = crate::env::Env::new("console", &crate::env::process)
            .text("S4_NOTIFICATION_URL")
            .filter(|t| t.contains("{number}"));
        Console {
            access,
            sources,
            clients,
            snapshot: RwLock::new(Arc::new(Snapshot::empty("nothing read yet"))),
            reading: Mutex::new(()),
            notification_url,
        }
    }

    /// The snapshot pages are served from; read again first when older than
    /// [`snapshot::REREAD_AFTER`].
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let current = self.snapshot.read().await.clone();
        if current.read_at.elapsed() < snapshot::REREAD_AFTER {
            return current;
        }
        self.read().await
    }

    /// Reads every source now.
    pub async fn read(&self) -> Arc<Snapshot> {
        let _one = self.reading.lock().await;
        let fresh = Arc::new(Snapshot::read(&self.sources, &self.clients).await);
        *self.snapshot.write().await = fresh.clone();
        fresh
    }
}

/// The console's routes, behind the access guard.
pub fn router(console: Arc<Console>) -> Router {
    let access = console.access.clone();
    Router::new()
        .route("/", get(overview::overview))
        .route("/episodes", get(pages::episodes))
        .route("/position", get(pages::position))
        .route("/failures", get(pages::failures))
        .route("/storms", get(storms::storms))
        .route("/search", get(pages::search))
        .route("/act", post(actions::act))
        .route("/refresh", post(actions::refresh))
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
        .with_state(console)
}

/// Serves `console` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
) -> std::io::Result<()> {
    axum::serve(listener, router(console)).await
}

fn target(flag: Option<String>, variable: &str) -> Result<Option<FailureTarget>, String> {
    let text =
        flag.or_else(|| crate::env::Env::new("console", &crate::env::process).text(variable));
    text.map(|t| FailureTarget::parse(&t).map_err(|e| format!("{variable}: {e}")))
        .transpose()
}

pub fn run(args: ConsoleArgs) -> ExitCode {
    super::block_on(console(args))
}

async fn console(args: ConsoleArgs) -> ExitCode {
    let (failures, refusals) = match (
        target(args.failures, "FAILURE_RECORDS"),
        target(args.refusals, "FORWARDER_FAILURE_RECORDS"),
    ) {
        (Ok(f), Ok(r)) => (f, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("e2b console: {e}");
            return ExitCode::from(2);
        }
    };
    let sources = Sources {
        episodes_table: args.table.or_else(|| {
            crate::env::Env::new("console", &crate::env::process).text("IDEMPOTENCY_TABLE")
        }),
        failures,
        refusals,
        trend_table: crate::env::Env::new("console", &crate::env::process).text("TREND_TABLE"),
    };
    let aws = super::aws().await;
    let clients = Clients {
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&aws),
        s3: super::s3_client(&aws).await,
        aws,
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "e2b console: cannot listen on 127.0.0.1:{}: {e} (choose another --port)",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    let access = match Access::new(port) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("e2b console: {e}");
            return ExitCode::FAILURE;
        }
    };
    let console = Arc::new(Console::new(access, sources, clients));
    eprintln!("e2b console: reading the episodes and failure records ...");
    let first = console.read().await;
    for problem in pages::problems(&first, true, true) {
        eprintln!("e2b console: could not read {problem}");
    }
    let url = console.access.url();
    println!("e2b console: open {url}");
    if args.open {
        let opened = std::process::Command::new("xdg-open")
            .arg(&url)
            .spawn()
            .or_else(|_| std::process::Command::new("open").arg(&url).spawn());
        if let Err(e) = opened {
            eprintln!("e2b console: cannot open a browser ({e}); open the URL above");
        }
    }
    match serve(listener, console).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2b console: {e}");
            ExitCode::FAILURE
        }
    }
}
