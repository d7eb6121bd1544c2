//! `e2b doctor`: every peer the functions' environment variables name, checked from here step
//! by step (secret, DNS, TCP, TLS and which CA, logon), one line a check with what to fix.
//! The same checks run inside the deployed functions, the only place that sees their VPC: the
//! forwarder invoked with `{"e2b": "doctor"}`, the processor's Function URL with an
//! authenticated `GET ?e2b=doctor`.

use std::process::ExitCode;

use crate::aws::secrets::SecretStore;
use crate::env::{Env, process};
use crate::forwarder::config::ForwarderConfig;
use crate::http::reach::Check;
use crate::processor::config::ProcessorConfig;
use crate::processor::s4::{S4Client, S4Logon};

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Print the checks as one JSON document instead of lines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DoctorArgs) -> ExitCode {
    super::block_on(doctor(args))
}

async fn doctor(args: DoctorArgs) -> ExitCode {
    let env = Env::new("CLI", &process);
    let broker = env
        .text("AEM_REST_URL")
        .or_else(|| env.text("SAP_AEM_REST_URL"))
        .or_else(|| env.text("EVENT_MESH_SERVICE_KEY_SECRET"));
    let s4 = env.text("S4_BASE_URL");
    if broker.is_none() && s4.is_none() {
        eprintln!(
            "nothing to check: set the forwarder's variables (AEM_REST_URL and AEM_CREDENTIALS_SECRET, or EVENT_MESH_SERVICE_KEY_SECRET) and/or the processor's (S4_BASE_URL, S4_CREDENTIALS_SECRET), as the functions have them"
        );
        return ExitCode::from(2);
    }
    let aws = super::aws().await;
    let mut checks = Vec::new();
    if broker.is_some() {
        checks.extend(forwarder_checks(&aws).await);
    }
    if s4.is_some() {
        checks.extend(processor_checks(&aws).await);
    }
    if args.json {
        let ok = checks.iter().all(|c| c.ok);
        println!("{}", serde_json::json!({"doctor": checks, "ok": ok}));
    } else {
        for check in &checks {
            println!("{}", check.line());
        }
    }
    if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn forwarder_checks(aws: &aws_config::SdkConfig) -> Vec<Check> {
    let peer = "the broker";
    let config = match ForwarderConfig::from_env() {
        Ok(config) => config,
        Err(e) => return unusable(peer, &e),
    };
    match crate::forwarder::setup::publisher(&config, aws) {
        Ok(publisher) => crate::forwarder::doctor::broker(&publisher).await,
        Err(e) => vec![Check::failed(
            peer,
            "client",
            e.to_string(),
            "this build's TLS set-up",
        )],
    }
}

async fn processor_checks(aws: &aws_config::SdkConfig) -> Vec<Check> {
    let peer = "S/4";
    let config = match ProcessorConfig::from_env() {
        Ok(config) => config,
        Err(e) => return unusable(peer, &e),
    };
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let id = &config.s4_secret;
    let logon = match secrets.secret_string(id).await {
        Ok(json) => S4Logon::from_secret(id, &json).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let logon = match logon {
        Ok(logon) => logon,
        Err(why) => {
            return vec![Check::failed(
                peer,
                "secret",
                why,
                "check S4_CREDENTIALS_SECRET, the secret's JSON and the role's secretsmanager:GetSecretValue (in a VPC: the Secrets Manager endpoint)",
            )];
        }
    };
    let how = match &logon.auth {
        crate::processor::s4::S4Auth::Basic(_) => "username and password",
        crate::processor::s4::S4Auth::OAuth2(_) => "OAuth2 client credentials",
        crate::processor::s4::S4Auth::Certificate => "a client certificate (X.509 logon)",
    };
    let trust = if logon.tls.ca_pem.is_some() {
        ", with `ca_pem`"
    } else {
        ""
    };
    let mut checks = vec![Check::passed(
        peer,
        "secret",
        format!("secret {id} holds {how}{trust}"),
    )];
    match S4Client::new(config.s4.clone(), logon) {
        Ok(client) => checks.extend(crate::processor::doctor::s4(&client).await),
        Err(e) => checks.push(Check::failed(
            peer,
            "client",
            e.to_string(),
            "this build's TLS set-up",
        )),
    }
    checks
}

/// The one check of a peer whose settings cannot be read.
fn unusable(peer: &str, e: &dyn std::fmt::Display) -> Vec<Check> {
    vec![Check::failed(
        peer,
        "configuration",
        e.to_string(),
        "set the variables named, as the function has them",
    )]
}
