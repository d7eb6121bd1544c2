//! The processor Lambda (behind a Function URL): mesh deliveries → maintenance notifications in
//! S/4HANA. Only wiring: configuration and secrets are read before the first delivery.

use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};

use e2b::processor::config::ProcessorConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    e2b::metrics::enable();
    let config = ProcessorConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::new(&aws);
    let processor = Arc::new(
        e2b::processor::setup::build(&config, &aws, s3)
            .await
            .inspect_err(|e| tracing::error!("{e}"))?,
    );
    lambda_http::run(service_fn(move |request: Request| {
        let processor = processor.clone();
        async move {
            let (parts, body) = request.into_parts();
            let doctor = parts.method == lambda_http::http::Method::GET
                && parts.uri.query() == Some("e2b=doctor");
            let reply = if doctor {
                processor.doctor(&parts.headers).await
            } else if parts.method == lambda_http::http::Method::OPTIONS {
                processor.options(&parts.headers).await
            } else {
                processor.handle(&parts.headers, body.as_ref()).await
            };
            let mut response = Response::builder()
                .status(reply.status)
                .header("content-type", "application/json");
            for (name, value) in &reply.headers {
                response = response.header(name, value);
            }
            response
                .body(Body::from(reply.body.to_string()))
                .map_err(lambda_http::Error::from)
        }
    }))
    .await
}
