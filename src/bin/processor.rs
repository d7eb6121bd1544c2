//! The processor Lambda (behind a Function URL): mesh deliveries → maintenance notifications in
//! S/4HANA. Only wiring: configuration and secrets are read before the first delivery.

use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};

use e2b::idempotency::DynamoStore;
use e2b::processor::config::{AuthScheme, ProcessorConfig};
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};
use e2b::rules::RuleSource;
use e2b::s4::{S4Auth, S4Client};
use e2b::secrets::SecretStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    e2b::metrics::enable();
    let config = ProcessorConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let s4_auth = S4Auth::from_secret(
        &config.s4_secret,
        &secrets.secret_string(&config.s4_secret).await?,
    )?;
    let auth = match (&config.auth, &config.auth_secret) {
        (AuthScheme::Iam, _) | (_, None) => InboundAuth::FunctionUrlIam,
        (scheme, Some(id)) => {
            let json = secrets.secret_string(id).await?;
            InboundAuth::from_secret(*scheme, id, &json, &config.api_key_header)?
        }
    };
    let s3 = aws_sdk_s3::Client::new(&aws);
    let rules = RuleSource::load(config.rules.clone(), config.rules_ttl, Some(s3))
        .await
        .inspect_err(|e| tracing::error!("rules: {e}"))?;
    let s4 = S4Client::new(config.s4.clone(), s4_auth)?;
    let idempotency = config.idempotency_table.clone().map(|table| DynamoStore {
        client: aws_sdk_dynamodb::Client::new(&aws),
        table,
        keep_completed: config.keep_completed,
    });
    let processor = Arc::new(Processor::new(
        Arc::new(s4),
        idempotency,
        ProcessorSettings {
            rules: Arc::new(rules),
            auth,
            budget: config.budget,
            in_progress_for: config.in_progress_for,
        },
    ));
    lambda_http::run(service_fn(move |request: Request| {
        let processor = processor.clone();
        async move {
            let (parts, body) = request.into_parts();
            let reply = processor.handle(&parts.headers, body.as_ref()).await;
            Response::builder()
                .status(reply.status)
                .header("content-type", "application/json")
                .body(Body::from(reply.body.to_string()))
                .map_err(lambda_http::Error::from)
        }
    }))
    .await
}
