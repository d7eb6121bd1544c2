//! S/4HANA as the processor reaches it, checked step by step (`e2b doctor`, and an
//! authenticated `GET ?e2b=doctor` on the processor's Function URL): the network
//! (`http::reach`) with the TLS of the S/4 secret, then the logon: a read of
//! `MaintenanceNotification` by an external reference no notification has.

use std::time::{Duration, Instant};

use crate::http::reach::{Check, network};
use crate::processor::s4::{S4Client, S4Error};

/// The network and logon checks of S/4; the logon only when the network passed.
pub async fn s4(client: &S4Client) -> Vec<Check> {
    let url = client.service_url();
    let peer = format!("S/4 ({})", url.host_str().unwrap_or("?"));
    let tls = client.tls();
    let mut checks = network(&peer, url, &tls).await;
    if !checks.iter().all(|c| c.ok) {
        return checks;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    checks.push(match client.find_by_reference("E2BDOCTOR", deadline).await {
        Ok(_) => Check::passed(
            &peer,
            "logon",
            "the technical user logs on and reads MaintenanceNotification (API_MAINTNOTIFICATION)",
        ),
        Err(S4Error::Permanent { status, message }) => Check::failed(
            &peer,
            "logon",
            format!("{status} {message}"),
            "give the technical user the authorizations of API_MAINTNOTIFICATION (communication arrangement SAP_COM_0398 or the service in /IWFND/MAINT_SERVICE)",
        ),
        Err(e) => Check::failed(
            &peer,
            "logon",
            e.to_string(),
            format!(
                "check the technical user's credentials or certificate in {} (S4_CREDENTIALS_SECRET), and S4_SAP_CLIENT",
                tls.secret_label()
            ),
        ),
    });
    checks
}
