//! The broker as the forwarder reaches it, checked step by step (`e2b doctor`, and the
//! forwarder invoked with `{"e2b": "doctor"}`): its secret, the network (`http::reach`), the
//! logon ([`Publisher::check_logon`]).

use crate::aws::secrets::{BrokerLogon, SecretStore};
use crate::broker::{Broker, Publisher};
use crate::http::reach::{Check, network};

/// Every check of the broker, in order; a step runs only when the earlier ones passed.
pub async fn broker<S: SecretStore>(publisher: &Publisher<S>) -> Vec<Check> {
    let (variable, peer) = match &publisher.config().broker {
        Broker::Aem(aem) => (
            "AEM_CREDENTIALS_SECRET",
            format!("the broker ({})", aem.base_url.host_str().unwrap_or("?")),
        ),
        Broker::EventMesh(_) => (
            "EVENT_MESH_SERVICE_KEY_SECRET",
            "the broker (SAP Event Mesh)".to_string(),
        ),
    };
    let credentials = match publisher.credentials().await {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::failed(
                &peer,
                "secret",
                e.to_string(),
                format!(
                    "check {variable}, the secret's JSON and the role's secretsmanager:GetSecretValue (in a VPC: the Secrets Manager endpoint)"
                ),
            )];
        }
    };
    let url = match publisher.address(&credentials) {
        Ok(url) => url,
        Err(e) => {
            return vec![Check::failed(
                &peer,
                "secret",
                e.to_string(),
                format!("check {variable} and the secret's JSON"),
            )];
        }
    };
    let host = url.host_str().unwrap_or("?");
    let peer = match &publisher.config().broker {
        Broker::Aem(_) => format!("the broker ({host})"),
        Broker::EventMesh(_) => format!("SAP Event Mesh ({host})"),
    };
    let logon = match (&credentials.logon, &credentials.messaging) {
        (_, Some(endpoint)) => &format!(
            "an SAP Event Mesh service key (namespace {})",
            endpoint.namespace
        ),
        (BrokerLogon::Basic { .. }, None) => "username and password",
        (BrokerLogon::OAuth2(_), None) => "OAuth2 client credentials",
        (BrokerLogon::Certificate, None) => "a client certificate",
    };
    let trust = if credentials.tls.ca_pem.is_some() {
        ", with `ca_pem`"
    } else {
        ""
    };
    let mut checks = vec![Check::passed(
        &peer,
        "secret",
        format!("secret {} holds {logon}{trust}", credentials.tls.secret),
    )];
    checks.extend(network(&peer, &url, &credentials.tls).await);
    if checks.iter().all(|c| c.ok) {
        checks.push(match publisher.check_logon(&credentials).await {
            Ok(found) => Check::passed(&peer, "logon", found),
            Err(why) => Check::failed(
                &peer,
                "logon",
                why,
                match &publisher.config().broker {
                    Broker::Aem(_) => format!(
                        "check the client username, password, token client or certificate in secret {} and the client profile's publish permissions",
                        credentials.tls.secret
                    ),
                    Broker::EventMesh(_) => format!(
                        "check the service key in secret {} (a 401: the key was deleted or its client changed) and the instance's publishFilter (a 403: it must allow `${{namespace}}/*`)",
                        credentials.tls.secret
                    ),
                },
            ),
        });
    }
    checks
}
