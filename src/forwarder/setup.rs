//! The forwarder's clients from its configuration, written once for the Lambda
//! (`src/bin/forwarder.rs`) and `e2b replay`: S3, the cached broker credentials from Secrets
//! Manager, and the publisher with its connection pool.

use std::sync::Arc;

use crate::aws::secrets::CachedCredentials;
use crate::forwarder::config::ForwarderConfig;
use crate::forwarder::mesh::Publisher;
use crate::forwarder::{Forwarder, ForwarderSettings};

/// The forwarder over AWS: objects from S3, credentials from Secrets Manager.
pub type AwsForwarder = Forwarder<aws_sdk_s3::Client, aws_sdk_secretsmanager::Client>;

/// Builds the forwarder; only the HTTP client can fail to build (a TLS set-up problem).
pub fn forwarder(
    config: &ForwarderConfig,
    aws: &aws_config::SdkConfig,
) -> Result<AwsForwarder, reqwest::Error> {
    let s3 = crate::aws::s3::client(aws, config.s3_force_path_style);
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let credentials = Arc::new(CachedCredentials::new(
        secrets,
        config.secret_id.clone(),
        config.secret_ttl,
    ));
    let publisher = Arc::new(Publisher::new(config.mesh.clone(), credentials)?);
    Ok(Forwarder::new(
        s3,
        publisher,
        ForwarderSettings {
            scan: config.scan.clone(),
            filter: config.filter.clone(),
            concurrency: config.concurrency,
        },
    ))
}
