//! The broker as the forwarder reaches it, checked step by step (`e2b doctor`, and the
//! forwarder invoked with `{"e2b": "doctor"}`): its secret, the network (`http::reach`), the
//! logon ([`Publisher::check_logon`]).

use crate::aws::secrets::{BrokerLogon, SecretStore};
use crate::forwarder::mesh::Publisher;
use crate::http::reach::{Check, network};

/// Every check of the broker, in order; a step runs only when the earlier ones passed.
pub async fn broker<S: SecretStore>(publisher: &Publisher<S>) -> Vec<Check> {
    let url = &publisher.config().base_url;
    let peer = format!("the broker ({})", url.host_str().unwrap_or("?"));
    let credentials = match publisher.credentials().await {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::failed(
                &peer,
                "secret",
                e.to_string(),
                "check AEM_CREDENTIALS_SECRET, the secret's JSON and the role's secretsmanager:GetSecretValue (in a VPC: the Secrets Manager endpoint)",
            )];
        }
    };
    let logon = match &credentials.logon {
        BrokerLogon::Basic { .. } => "username and password",
        BrokerLogon::OAuth2(_) => "OAuth2 client credentials",
        BrokerLogon::Certificate => "a client certificate",
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
    checks.extend(network(&peer, url, &credentials.tls).await);
    if checks.iter().all(|c| c.ok) {
        checks.push(match publisher.check_logon(&credentials).await {
            Ok(found) => Check::passed(&peer, "logon", found),
            Err(why) => Check::failed(
                &peer,
                "logon",
                why,
                format!(
                    "check the client username, password, token client or certificate in secret {} and the client profile's publish permissions",
                    credentials.tls.secret
                ),
            ),
        });
    }
    checks
}
