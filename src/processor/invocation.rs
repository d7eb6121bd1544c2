//! One invocation of the processor's Lambda: a Function URL request (the mesh's delivery, the
//! webhook handshake, `?e2b=doctor`) or EventBridge's Scheduled Event (the schedule's tick).
//!
//! Rules:
//! - a Scheduled Event (`"detail-type": "Scheduled Event"`, `"source": "aws.events"`) runs one
//!   tick and answers what it did; its failures are in the answer and the log, never an error
//!   of the invocation (the next tick tries again);
//! - anything else is read as the Function URL's request (payload format 2.0); what is neither
//!   is an error of the invocation, saying what arrived;
//! - the answer to a request is the Function URL's response: status, `content-type:
//!   application/json` and the reply's headers, the JSON body as text (every field of payload
//!   format 2.0's response, `cookies` included: the Function URL emulator requires them).

use lambda_http::http::Method;
use lambda_http::request::LambdaRequest;
use serde_json::{Map, Value, json};

use crate::processor::Processor;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::schedule::is_scheduled_event;

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// Handles one Lambda event (module doc).
    pub async fn invoke(&self, event: Value) -> Result<Value, String> {
        if is_scheduled_event(&event) {
            let tick = self.tick().await;
            return Ok(json!({"tick": tick}));
        }
        let keys: Vec<String> = event
            .as_object()
            .map(|o| o.keys().take(8).cloned().collect())
            .unwrap_or_default();
        let request: LambdaRequest = serde_json::from_value(event).map_err(|e| {
            format!(
                "the event is neither a Function URL request nor EventBridge's Scheduled Event ({e}); its keys: {}",
                keys.join(", ")
            )
        })?;
        let request: lambda_http::Request = request.into();
        let (parts, body) = request.into_parts();
        let doctor = parts.method == Method::GET && parts.uri.query() == Some("e2b=doctor");
        let reply = if doctor {
            self.doctor(&parts.headers).await
        } else if parts.method == Method::OPTIONS {
            self.options(&parts.headers).await
        } else {
            self.handle(&parts.headers, body.as_ref()).await
        };
        let mut headers = Map::new();
        headers.insert("content-type".into(), "application/json".into());
        for (name, value) in &reply.headers {
            headers.insert(name.clone(), value.clone().into());
        }
        Ok(json!({
            "statusCode": reply.status,
            "headers": headers,
            "multiValueHeaders": {},
            "body": reply.body.to_string(),
            "isBase64Encoded": false,
            "cookies": [],
        }))
    }
}
