//! Whether a peer can be reached from here, step by step, in words a network team can act on:
//! the checks of `e2b doctor` and of a function invoked with `{"e2b": "doctor"}`.
//!
//! Rules:
//! - one [`Check`] a step: DNS (the name resolves), TCP (a connection opens within 5 s), TLS
//!   (the handshake, and which CA vouched: the public roots, or the secret's `ca_pem`); each
//!   failure says what to fix;
//! - behind an egress proxy (`HTTPS_PROXY` for an https peer, `HTTP_PROXY` for http, unless
//!   `NO_PROXY` names the host) DNS and TCP are checked for the proxy, and TLS through it, as
//!   the functions connect;
//! - a later step runs only when the earlier ones passed;
//! - logging on is the peer's own protocol: each path checks it (`forwarder::doctor`,
//!   `processor::doctor`).

use std::time::Duration;

use reqwest::Url;
use serde::Serialize;

use super::tls::{PeerTls, explain};

/// How long a step may take.
const STEP: Duration = Duration::from_secs(5);

/// One step of reaching a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked: `S/4 (s4.example.com)`, `the broker (...)`.
    pub peer: String,
    /// `secret`, `dns`, `tcp`, `tls`, `logon`.
    pub step: String,
    pub ok: bool,
    /// What was found.
    pub found: String,
    /// What to do, for a failed step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn passed(peer: &str, step: &str, found: impl Into<String>) -> Check {
        Check {
            peer: peer.to_string(),
            step: step.to_string(),
            ok: true,
            found: found.into(),
            fix: None,
        }
    }

    pub fn failed(
        peer: &str,
        step: &str,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            peer: peer.to_string(),
            step: step.to_string(),
            ok: false,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    /// One line: `ok   S/4 (host) tls: ...` or `FAIL ... -> fix`.
    pub fn line(&self) -> String {
        match (&self.fix, self.ok) {
            (Some(fix), false) => {
                format!("FAIL {} {}: {} -> {fix}", self.peer, self.step, self.found)
            }
            _ => format!("ok   {} {}: {}", self.peer, self.step, self.found),
        }
    }
}

/// The proxy the functions would use for `url`, from the environment.
fn proxy_for(url: &Url) -> Option<Url> {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
    };
    let proxy = match url.scheme() {
        "https" => var(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
        _ => var(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]),
    }?;
    let host = url.host_str().unwrap_or_default();
    let bypassed = var(&["NO_PROXY", "no_proxy"]).is_some_and(|list| {
        list.split(',').map(str::trim).any(|entry| {
            let entry = entry.trim_start_matches('.');
            entry == "*" || host == entry || host.ends_with(&format!(".{entry}"))
        })
    });
    if bypassed {
        return None;
    }
    Url::parse(&proxy)
        .or_else(|_| Url::parse(&format!("http://{proxy}")))
        .ok()
}

/// DNS, TCP and TLS towards `url`, with the trust and identity of `tls`.
pub async fn network(peer: &str, url: &Url, tls: &PeerTls) -> Vec<Check> {
    let proxy = proxy_for(url);
    let first_hop = proxy.as_ref().unwrap_or(url);
    let via = proxy
        .as_ref()
        .map(|p| format!(" (the egress proxy {})", p.host_str().unwrap_or("?")))
        .unwrap_or_default();
    let mut checks = Vec::new();
    let address = match dns(peer, first_hop, &via).await {
        Ok((found, address)) => {
            checks.push(found);
            address
        }
        Err(failed) => return vec![failed],
    };
    match tcp(peer, address, &via).await {
        Ok(found) => checks.push(found),
        Err(failed) => {
            checks.push(failed);
            return checks;
        }
    }
    if url.scheme() == "https" {
        checks.push(handshake(peer, url, tls).await);
    }
    checks
}

/// The first hop's name resolved: the check, and the address to connect to.
async fn dns(peer: &str, hop: &Url, via: &str) -> Result<(Check, std::net::SocketAddr), Check> {
    let host = hop.host_str().unwrap_or_default();
    let port = hop.port_or_known_default().unwrap_or(443);
    let failed = |found: String, fix: &str| Check::failed(peer, "dns", found, fix);
    let addresses: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        STEP,
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(found)) => found.collect(),
        Ok(Err(e)) => {
            return Err(failed(
                format!("{host}{via} does not resolve: {e}"),
                "check the VPC's DNS resolution, the private hosted zone or the PrivateLink endpoint's private DNS name (a Route 53 Resolver rule for an on-premise name)",
            ));
        }
        Err(_) => {
            return Err(failed(
                format!("no answer for {host}{via} within {STEP:?}"),
                "the resolver is not reachable: check the VPC's DNS settings and the security group's outbound rules",
            ));
        }
    };
    let Some(first) = addresses.first().copied() else {
        return Err(failed(
            format!("{host}{via} has no address"),
            "check its DNS records",
        ));
    };
    let listed: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
    let found = Check::passed(peer, "dns", format!("{host}{via} is {}", listed.join(", ")));
    Ok((found, first))
}

/// A TCP connection to `address` within [`STEP`].
async fn tcp(peer: &str, address: std::net::SocketAddr, via: &str) -> Result<Check, Check> {
    let (found, fix) = match tokio::time::timeout(STEP, tokio::net::TcpStream::connect(address))
        .await
    {
        Ok(Ok(_)) => {
            return Ok(Check::passed(
                peer,
                "tcp",
                format!("{address}{via} accepts connections"),
            ));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            format!("{address}{via} refused the connection"),
            "nothing listens on that port, or a firewall rejects it: check the port in the URL and the service (or the PrivateLink endpoint service) behind it",
        ),
        Ok(Err(e)) => (
            format!("{address}{via}: {e}"),
            "check the route to that address (VPC peering, Transit Gateway, VPN or Direct Connect)",
        ),
        Err(_) => (
            format!("no connection to {address}{via} within {STEP:?}"),
            "a security group (outbound 443), a network ACL, a route or a firewall drops the packets",
        ),
    };
    Err(Check::failed(peer, "tcp", found, fix))
}

/// The TLS handshake (any HTTP answer proves it), and which CA vouched for the server.
async fn handshake(peer: &str, url: &Url, tls: &PeerTls) -> Check {
    let public_only = PeerTls {
        ca_pem: None,
        ..tls.clone()
    };
    let first = try_tls(url, &public_only).await;
    let secret = tls.secret_label();
    let identity = if tls.has_client_certificate() {
        ", our client certificate accepted"
    } else {
        ""
    };
    match first {
        Ok(()) => Check::passed(
            peer,
            "tls",
            format!("the server certificate chains to a public root{identity}"),
        ),
        Err(_) if tls.ca_pem.is_some() => match try_tls(url, tls).await {
            Ok(()) => Check::passed(
                peer,
                "tls",
                format!("the server certificate chains to a CA in `ca_pem` of {secret}{identity}"),
            ),
            Err(e) => Check::failed(
                peer,
                "tls",
                explain(&e, peer, tls),
                format!("see above; the TLS fields are in {secret}"),
            ),
        },
        Err(e) => Check::failed(
            peer,
            "tls",
            explain(&e, peer, tls),
            format!("see above; the TLS fields are in {secret}"),
        ),
    }
}

async fn try_tls(url: &Url, tls: &PeerTls) -> Result<(), reqwest::Error> {
    let client = tls
        .apply(
            reqwest::Client::builder()
                .connect_timeout(STEP)
                .timeout(STEP * 2)
                .redirect(reqwest::redirect::Policy::none()),
        )
        .build()?;
    client.get(url.clone()).send().await.map(|_| ())
}
