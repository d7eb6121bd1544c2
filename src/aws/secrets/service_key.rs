//! An SAP Event Mesh service key, stored in a secret exactly as BTP shows it, read as broker
//! credentials.
//!
//! Rules (SAP Event Mesh documentation, "Create a Service Key" and the REST API for messaging;
//! `docs/operations.md` cites them):
//! - the REST entry is the `messaging` element whose `protocol` list contains `httprest`; its
//!   `uri` is where messages are posted, its `oa2` holds `clientid`, `clientsecret` and
//!   `tokenendpoint` for the client-credentials grant;
//! - the key's top-level `namespace` (`orgname/clientname/uniqueid`) prefixes every topic;
//! - a key made with `credential-type: x509` (a certificate instead of `clientsecret`) is named
//!   as not supported: make one with `binding-secret`;
//! - the optional top-level `ca_pem` (a plant's own CA, e.g. behind a TLS-inspecting proxy) is
//!   trusted besides the public roots, as for every other secret ([`crate::http::tls`]).
//!
//! Errors name the secret and the field, never a value.

use std::fmt;

use reqwest::Url;
use serde_json::Value;

use super::{BrokerLogon, Credentials, SecretError};
use crate::http::oauth::{ClientCredentials, TokenCache};
use crate::http::tls::PeerTls;

/// Where SAP Event Mesh takes messages over REST, from its service key.
#[derive(Clone, PartialEq, Eq)]
pub struct MessagingEndpoint {
    /// The `httprest` entry's `uri`, e.g. `https://enterprise-messaging-pubsub.cfapps.eu10.hana.ondemand.com`.
    pub uri: Url,
    /// The instance's namespace, e.g. `acme/plant/monitron`.
    pub namespace: String,
}

impl fmt::Debug for MessagingEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (namespace {})", self.uri, self.namespace)
    }
}

/// Reads an SAP Event Mesh service key: the `httprest` entry's URI and OAuth2 client, and the
/// namespace.
pub fn parse_service_key(id: &str, json: &str) -> Result<Credentials, SecretError> {
    let problem = |what: String| {
        SecretError::Permanent(format!(
            "secret {id} (an SAP Event Mesh service key): {what}"
        ))
    };
    let value: Value = serde_json::from_str(json).map_err(|e| {
        problem(format!(
            "not JSON (line {}, column {}); paste the service key exactly as BTP shows it",
            e.line(),
            e.column()
        ))
    })?;
    let namespace = value
        .get("namespace")
        .and_then(Value::as_str)
        .map(|n| n.trim_matches('/'))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| problem("no `namespace`".into()))?;
    let rest = value
        .get("messaging")
        .and_then(Value::as_array)
        .and_then(|entries| entries.iter().find(|entry| speaks_httprest(entry)))
        .ok_or_else(|| {
            problem("no `messaging` entry whose `protocol` contains `httprest`".into())
        })?;
    let uri = rest
        .get("uri")
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
        .ok_or_else(|| problem("the `httprest` entry's `uri` is not an http(s) URL".into()))?;
    let oa2 = rest
        .get("oa2")
        .ok_or_else(|| problem("the `httprest` entry has no `oa2`".into()))?;
    let field = |name: &str| {
        oa2.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let (Some(client_id), Some(token_url)) = (field("clientid"), field("tokenendpoint")) else {
        return Err(problem(
            "the `httprest` entry's `oa2` needs `clientid` and `tokenendpoint`".into(),
        ));
    };
    let Some(client_secret) = field("clientsecret") else {
        let x509 = field("certificate").is_some() || field("certurl").is_some();
        return Err(problem(if x509 {
            "a key with `credential-type: x509` is not supported; create a service key with `credential-type: binding-secret`".into()
        } else {
            "the `httprest` entry's `oa2` has no `clientsecret`".into()
        }));
    };
    let token_url =
        Url::parse(token_url).map_err(|_| problem("`oa2.tokenendpoint` is not a URL".into()))?;
    let tls = PeerTls::from_json(id, &value).map_err(SecretError::Permanent)?;
    Ok(Credentials {
        logon: BrokerLogon::OAuth2(TokenCache::new(ClientCredentials {
            token_url,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            scope: None,
        })),
        tls,
        messaging: Some(MessagingEndpoint {
            uri,
            namespace: namespace.to_string(),
        }),
    })
}

fn speaks_httprest(entry: &Value) -> bool {
    match entry.get("protocol") {
        Some(Value::Array(list)) => list.iter().any(|p| p.as_str() == Some("httprest")),
        Some(Value::String(p)) => p == "httprest",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> Value {
        json!({
            "xsappname": "clone-xbem-service-broker-1234!b2436|xbem-service-broker!b2436",
            "serviceinstanceid": "5c2a2f64",
            "namespace": "acme/plant/monitron",
            "management": [{"oa2": {"clientid": "m", "clientsecret": "m"}, "uri": "https://m.example"}],
            "messaging": [
                {"protocol": ["amqp10ws"], "broker": {"type": "sapmgw"}, "uri": "wss://amqp.example",
                 "oa2": {"clientid": "a", "clientsecret": "a", "tokenendpoint": "https://t.example/oauth/token"}},
                {"protocol": ["httprest"], "broker": {"type": "saprestmgw"},
                 "uri": "https://enterprise-messaging-pubsub.cfapps.eu10.hana.ondemand.com",
                 "oa2": {"clientid": "sb-clone!b2436|xbem!b2436", "clientsecret": "s3cr$t+/=",
                         "tokenendpoint": "https://acme.authentication.eu10.hana.ondemand.com/oauth/token",
                         "granttype": "client_credentials"}}
            ]
        })
    }

    #[test]
    fn the_httprest_entry_and_the_namespace_are_read() {
        let credentials = parse_service_key("em-key", &key().to_string());
        let Ok(credentials) = credentials else {
            panic!("not read: {credentials:?}")
        };
        let Some(endpoint) = &credentials.messaging else {
            panic!("no endpoint")
        };
        assert_eq!(
            endpoint.uri.as_str(),
            "https://enterprise-messaging-pubsub.cfapps.eu10.hana.ondemand.com/"
        );
        assert_eq!(endpoint.namespace, "acme/plant/monitron");
        assert!(matches!(credentials.logon, BrokerLogon::OAuth2(_)));
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("s3cr$t"), "{shown}");
    }

    #[test]
    fn what_is_missing_is_named_without_values() {
        let mut no_rest = key();
        if let Some(entries) = no_rest["messaging"].as_array_mut() {
            entries.truncate(1);
        }
        let mut x509 = key();
        x509["messaging"][1]["oa2"] = json!({"clientid": "c", "tokenendpoint": "https://t.example/oauth/token",
            "certurl": "https://acme.authentication.cert.eu10.hana.ondemand.com", "certificate": "-----BEGIN"});
        let mut no_namespace = key();
        no_namespace["namespace"] = json!("");
        for (value, expected) in [
            (no_rest, "`httprest`"),
            (x509, "binding-secret"),
            (no_namespace, "`namespace`"),
        ] {
            let Err(SecretError::Permanent(message)) =
                parse_service_key("em-key", &value.to_string())
            else {
                panic!("accepted")
            };
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("em-key"), "{message}");
            assert!(!message.contains("s3cr$t"), "{message}");
        }
        let Err(SecretError::Permanent(message)) =
            parse_service_key("em-key", "{\"namespace\": s3cr")
        else {
            panic!("accepted")
        };
        assert!(!message.contains("s3cr"), "{message}");
    }
}
