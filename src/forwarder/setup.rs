//! The forwarder's clients from its configuration, written once for the Lambda
//! (`src/bin/forwarder.rs`) and `e2b replay`/`e2b resend`: S3, the cached broker credentials
//! from Secrets Manager, the publisher with its connection pool, the delivery ledger (DynamoDB),
//! the failure records (SQS or S3) and the trend table (DynamoDB).

use std::sync::Arc;

use crate::aws::records::FailureSink;
use crate::aws::secrets::CachedCredentials;
use crate::broker::Publisher;
use crate::forwarder::config::ForwarderConfig;
use crate::forwarder::ledger::Ledger;
use crate::forwarder::series::SeriesKeeper;
use crate::forwarder::series::queue::TrendQueue;
use crate::forwarder::{Forwarder, ForwarderSettings};
use crate::trend::store::TrendTable;

/// The forwarder over AWS: objects from S3, credentials from Secrets Manager.
pub type AwsForwarder = Forwarder<aws_sdk_s3::Client, aws_sdk_secretsmanager::Client>;

/// Builds the forwarder; only the HTTP client can fail to build (a TLS set-up problem).
pub fn forwarder(
    config: &ForwarderConfig,
    aws: &aws_config::SdkConfig,
) -> Result<AwsForwarder, reqwest::Error> {
    let s3 = crate::aws::s3::client(aws, config.s3_force_path_style);
    let publisher = Arc::new(publisher(config, aws)?);
    let ledger = config.progress_table.as_ref().map(|table| Ledger {
        client: aws_sdk_dynamodb::Client::new(aws),
        table: table.clone(),
        keep: config.progress_keep,
    });
    let refusals = config
        .failure_records
        .as_ref()
        .map(|target| Arc::new(FailureSink::new(Some(target), s3.clone(), aws)));
    Ok(Forwarder::new(
        s3,
        publisher,
        ForwarderSettings {
            scan: config.scan.clone(),
            filter: config.filter.clone(),
            concurrency: config.concurrency,
        },
    )
    .with_ledger(ledger)
    .with_refusals(refusals)
    .with_series(config.trend_table.as_ref().map(|table| {
        SeriesKeeper::new(TrendTable {
            client: aws_sdk_dynamodb::Client::new(aws),
            table: table.clone(),
        })
        .with_queue(config.trend_queue.as_ref().map(|url| TrendQueue {
            client: aws_sdk_sqs::Client::new(aws),
            url: url.clone(),
        }))
    })))
}

/// The publisher alone, with the broker credentials from Secrets Manager (a broker logon or an
/// Event Mesh service key).
pub fn publisher(
    config: &ForwarderConfig,
    aws: &aws_config::SdkConfig,
) -> Result<Publisher<aws_sdk_secretsmanager::Client>, reqwest::Error> {
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let credentials = Arc::new(
        CachedCredentials::new(secrets, config.secret_id.clone(), config.secret_ttl)
            .with_layout(config.secret_layout),
    );
    Publisher::new(config.broker.clone(), credentials)
}
