//! Trust and identity towards one HTTPS peer, from the secret that names it, and the words for
//! what went wrong on the way to it.
//!
//! Rules:
//! - a secret that names an HTTPS peer may hold `ca_pem` (one or more PEM CA certificates,
//!   trusted in addition to the public roots: a company's own CA) and `client_cert_pem` with
//!   `client_key_pem` (the client certificate chain and its PKCS#8, SEC1 or RSA key: mutual TLS,
//!   or the logon itself where the peer maps the certificate to a user);
//! - they are checked when the secret is read: a field that holds no certificate or key is an
//!   error naming the field and the secret, never its value, and [`PeerTls`] prints no PEM;
//! - one HTTP client per set of credentials, so one TLS handshake per peer per warm container
//!   (reqwest keeps the connection), not one per request;
//! - a failure to reach the peer is told apart for a network team ([`explain`]): a server
//!   certificate not trusted (add its CA as `ca_pem` in the secret), not valid for the host
//!   name, expired; our client certificate refused; a name that does not resolve; a connection
//!   refused or never answered (a security group, route or firewall).

use std::fmt;

use serde_json::Value;

/// What a secret says about TLS towards its peer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PeerTls {
    /// The secret the fields came from, for messages.
    pub secret: String,
    /// Extra CA certificates (PEM), trusted besides the public roots.
    pub ca_pem: Option<String>,
    /// The client certificate chain and its key (PEM).
    pub client: Option<(String, String)>,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls")
            .field("secret", &self.secret)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "(PEM)"))
            .field(
                "client",
                &self.client.as_ref().map(|_| "(certificate and key)"),
            )
            .finish()
    }
}

impl PeerTls {
    /// The TLS fields of secret `secret_id`'s JSON; `Err` names the field that cannot be used.
    pub fn from_json(secret_id: &str, value: &Value) -> Result<PeerTls, String> {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.trim().is_empty())
                .map(str::to_string)
        };
        let tls = PeerTls {
            secret: secret_id.to_string(),
            ca_pem: field("ca_pem"),
            client: match (field("client_cert_pem"), field("client_key_pem")) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => {
                    return Err(format!(
                        "secret {secret_id}: `client_cert_pem` and `client_key_pem` go together"
                    ));
                }
            },
        };
        tls.certificates()?;
        tls.identity()?;
        // The key is only parsed as PEM above: a client built with it proves it usable.
        if tls.client.is_some() && tls.apply(reqwest::Client::builder()).build().is_err() {
            return Err(format!(
                "secret {secret_id}: `client_key_pem` is not the private key of `client_cert_pem` (PKCS#8, SEC1 or RSA, PEM)"
            ));
        }
        Ok(tls)
    }

    /// Whether the secret has a client certificate.
    pub fn has_client_certificate(&self) -> bool {
        self.client.is_some()
    }

    /// Whether the secret says nothing about TLS (the public roots, no client certificate).
    pub fn is_empty(&self) -> bool {
        self.ca_pem.is_none() && self.client.is_none()
    }

    /// Whether the client certificate is the logon: the secret has one, and no password or
    /// client-secret field at all (a mistake in one is then an error, not a silent fall-back
    /// to the certificate). The same rule for every peer.
    pub fn is_the_logon(&self, value: &Value) -> bool {
        const LOGON_FIELDS: [&str; 5] = [
            "username",
            "password",
            "client_id",
            "client_secret",
            "token_url",
        ];
        self.has_client_certificate() && !LOGON_FIELDS.iter().any(|f| value.get(f).is_some())
    }

    /// `secret NAME` for messages (`its secret` when the name is unknown).
    pub fn secret_label(&self) -> String {
        if self.secret.is_empty() {
            "its secret".to_string()
        } else {
            format!("secret {}", self.secret)
        }
    }

    fn certificates(&self) -> Result<Vec<reqwest::Certificate>, String> {
        let Some(pem) = &self.ca_pem else {
            return Ok(Vec::new());
        };
        match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
            Ok(certificates) if !certificates.is_empty() => Ok(certificates),
            _ => Err(format!(
                "secret {}: `ca_pem` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                self.secret
            )),
        }
    }

    fn identity(&self) -> Result<Option<reqwest::Identity>, String> {
        let Some((cert, key)) = &self.client else {
            return Ok(None);
        };
        let both = format!("{}\n{}", cert.trim(), key.trim());
        let has_certificate = cert.contains("-----BEGIN CERTIFICATE-----");
        match reqwest::Identity::from_pem(both.as_bytes()) {
            Ok(identity) if has_certificate => Ok(Some(identity)),
            _ => Err(format!(
                "secret {}: `client_cert_pem` and `client_key_pem` are not a PEM certificate chain and its PKCS#8, SEC1 or RSA private key",
                self.secret
            )),
        }
    }

    /// The client builder with this trust and identity added.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        // Both were checked when the secret was read.
        let mut builder = builder.tls_certs_merge(self.certificates().unwrap_or_default());
        if let Ok(Some(identity)) = self.identity() {
            builder = builder.identity(identity);
        }
        builder
    }
}

/// What went wrong on the way to `peer`, in words a network team can act on; `tls` says which
/// secret's fields to change.
pub fn explain(error: &reqwest::Error, peer: &str, tls: &PeerTls) -> String {
    let secret = tls.secret_label();
    let target = error
        .url()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    let links = links(error);
    for e in &links {
        if let Some(said) = e
            .downcast_ref::<rustls::Error>()
            .map(|r| tls_words(r, peer, &secret, tls, target.as_deref()))
        {
            return said;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => {
                    return format!(
                        "{peer} refused the connection (nothing listens on that address and port, or a firewall rejects it)"
                    );
                }
                ErrorKind::TimedOut => {
                    return format!(
                        "no connection to {peer} in time (a security group, a route or a firewall likely drops the packets)"
                    );
                }
                _ => {}
            }
        }
    }
    let mut chain: Vec<String> = Vec::new();
    for e in &links {
        let text = e.to_string();
        if !chain.iter().any(|c| c.contains(&text)) {
            chain.push(text);
        }
    }
    let text = chain.join(": ");
    // Under TLS 1.3 the client's side of the handshake ends first; a server that refuses our
    // certificate then closes the connection, and whether the client reads its alert or only
    // the closed connection is a matter of timing.
    let closed = [
        "connection was not ready",
        "connection closed before message completed",
        "Connection reset",
        "IncompleteMessage",
        "unexpected end of file",
        "peer closed connection",
        "Broken pipe",
    ];
    if tls.has_client_certificate() && closed.iter().any(|c| text.contains(c)) {
        return format!(
            "{peer} closed the connection right after the TLS handshake, which is how a server refuses a client certificate: check that `client_cert_pem` in {secret} is issued by a CA the server trusts, is valid, and maps to a user ({text})"
        );
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return format!(
            "the host name of {peer} does not resolve (DNS: check the VPC's resolver, the private hosted zone or the endpoint's DNS name): {text}"
        );
    }
    if error.is_connect() && error.is_timeout() {
        return format!(
            "no connection to {peer} in time (a security group, a route or a firewall likely drops the packets)"
        );
    }
    text
}

/// Every error in `error`'s chain, with the errors an I/O error wraps (its `source` skips
/// them, and reqwest wraps the connector's I/O error in another).
fn links<'a>(error: &'a reqwest::Error) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        found.push(e);
        let mut inner = e;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let wrapped: &(dyn std::error::Error + 'static) = wrapped;
            found.push(wrapped);
            inner = wrapped;
        }
        next = e.source();
    }
    found
}

fn tls_words(
    error: &rustls::Error,
    peer: &str,
    secret: &str,
    tls: &PeerTls,
    target: Option<&str>,
) -> String {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    // rustls hands the presented chain only to a custom verifier, installed through its
    // dangerous-configuration API, which this project does not use: the command that shows the
    // issuer is named instead.
    let show = target
        .map(|t| format!(" (`openssl s_client -connect {t} -showcerts` shows which CA issued it)"))
        .unwrap_or_default();
    match error {
        Error::InvalidCertificate(Cert::UnknownIssuer) => format!(
            "the server certificate of {peer} is not trusted: its issuer is neither a public root nor in `ca_pem`{show}; add the issuing CA's certificate (PEM) as `ca_pem` in {secret}"
        ),
        Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            format!(
                "the server certificate of {peer} is not valid for that host name: use a name the certificate names (for PrivateLink, a private DNS name in the certificate, not the endpoint's own name)"
            )
        }
        Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
            format!(
                "the server certificate of {peer} has expired: it must be renewed on the server"
            )
        }
        Error::InvalidCertificate(other) => {
            format!("the server certificate of {peer} is refused: {other:?}")
        }
        Error::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::AccessDenied,
        ) if tls.has_client_certificate() => format!(
            "{peer} refused our client certificate ({error}): check that `client_cert_pem` in {secret} is issued by a CA the server trusts, is valid, and maps to a user"
        ),
        Error::AlertReceived(_) if !tls.has_client_certificate() => format!(
            "{peer} ended the TLS handshake ({error}): if it requires a client certificate, put one as `client_cert_pem` and `client_key_pem` in {secret}"
        ),
        other => format!("TLS with {peer} failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_hold_no_pem_are_named_and_never_quoted() {
        let bad = serde_json::json!({"ca_pem": "not a certificate s3cret"});
        let e = PeerTls::from_json("e2b/s4", &bad).unwrap_err();
        assert!(
            e.contains("`ca_pem`") && e.contains("e2b/s4") && !e.contains("s3cret"),
            "{e}"
        );
        let half = serde_json::json!({"client_cert_pem": "x"});
        let e = PeerTls::from_json("e2b/s4", &half).unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let none = PeerTls::from_json("e2b/s4", &serde_json::json!({"username": "u"}));
        assert_eq!(none.map(|t| t.has_client_certificate()), Ok(false));
        let printed = format!(
            "{:?}",
            PeerTls {
                secret: "s".into(),
                ca_pem: Some("-----BEGIN CERTIFICATE-----abc".into()),
                client: Some(("c".into(), "k".into()))
            }
        );
        assert!(
            !printed.contains("BEGIN") && !printed.contains("abc"),
            "{printed}"
        );
    }
}
