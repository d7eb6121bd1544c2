//! Building the processor from its configuration: secrets read, rules loaded, clients made.
//! Shared by the Lambda binary and `e2b reprocess`.

use std::sync::Arc;

use crate::aws::secrets::SecretStore;
use crate::processor::destination::Destinations;
use crate::processor::episode::chart::Charts;
use crate::processor::failures::FailureSink;
use crate::processor::idempotency::DynamoStore;
use crate::processor::rules::source::RuleSource;
use crate::processor::s4::limit::RequestGate;
use crate::processor::s4::{S4Client, S4Config, S4Logon};
use crate::trend::store::TrendTable;

use super::auth::{AuthSource, InboundAuth};
use super::config::{AuthScheme, ProcessorConfig};
use super::{Processor, ProcessorSettings};

/// The processor as deployed: DynamoDB idempotency records when a table is configured.
pub type DeployedProcessor = Processor<Option<DynamoStore>>;

/// Reads the secrets and the rules and makes the clients; an error says what is wrong.
pub async fn build(
    config: &ProcessorConfig,
    aws: &aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
) -> Result<DeployedProcessor, Box<dyn std::error::Error + Send + Sync>> {
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let s4_logon = S4Logon::from_secret(
        &config.s4_secret,
        &secrets.secret_string(&config.s4_secret).await?,
    )?;
    let (auth, auth_source) = match (&config.auth, &config.auth_secret) {
        (AuthScheme::Iam, _) | (_, None) => (InboundAuth::FunctionUrlIam, None),
        (scheme, Some(id)) => {
            let json = secrets.secret_string(id).await?;
            let auth = InboundAuth::from_secret(*scheme, id, &json, &config.api_key_header)?;
            let source =
                AuthSource::new(secrets.clone(), id, *scheme, &config.api_key_header, true);
            (auth, Some(Arc::new(source)))
        }
    };
    let rules = RuleSource::load(config.rules.clone(), config.rules_ttl, Some(s3.clone()))
        .await
        .map_err(|e| format!("rules: {e}"))?;
    let s4 = s4_client(config, config.s4.clone(), s4_logon.clone(), &secrets, aws)?;
    let charts = match &config.charts {
        Some(charts) => {
            let service = S4Config {
                service_url: charts.service_url.clone(),
                ..config.s4.clone()
            };
            Some(Arc::new(Charts {
                series: TrendTable {
                    client: aws_sdk_dynamodb::Client::new(aws),
                    table: charts.trend_table.clone(),
                },
                attachments: s4_client(config, service, s4_logon, &secrets, aws)?,
                object_type: charts.object_type.clone(),
                days: charts.days,
            }))
        }
        None => None,
    };
    let idempotency = config.idempotency_table.clone().map(|table| DynamoStore {
        client: aws_sdk_dynamodb::Client::new(aws),
        table,
        keep_completed: config.keep_completed,
    });
    let failures = FailureSink::new(config.failure_records.as_ref(), s3, aws);
    Ok(Processor::new(
        Arc::new(s4),
        idempotency,
        ProcessorSettings {
            failures: Arc::new(failures),
            destinations: Arc::new(Destinations::new(Some(secrets), config.destination_retry)),
            auth_source,
            allowed_origins: config.allowed_origins.clone(),
            allowed_rate: config.allowed_rate,
            charts,
            ..ProcessorSettings::new(rules, auth, config.budget, config.in_progress_for)
        },
    ))
}

/// A client of one S/4 service: the logon, its secret read again on refusal, and S/4's request
/// rate (one for the system, whichever service a request goes to).
fn s4_client(
    config: &ProcessorConfig,
    service: S4Config,
    logon: S4Logon,
    secrets: &aws_sdk_secretsmanager::Client,
    aws: &aws_config::SdkConfig,
) -> Result<S4Client, reqwest::Error> {
    let mut s4 =
        S4Client::new(service, logon)?.reread_secret_on_refusal(secrets.clone(), &config.s4_secret);
    if let (Some(per_second), Some(table)) = (config.s4_max_per_second, &config.idempotency_table) {
        let url = &config.s4.service_url;
        let system = format!(
            "{}:{}/{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default(),
            config.s4.sap_client.as_deref().unwrap_or("default")
        );
        let gate = RequestGate::new(
            aws_sdk_dynamodb::Client::new(aws),
            table,
            &system,
            per_second,
        );
        s4 = s4.limited_by(gate);
    }
    Ok(s4)
}
