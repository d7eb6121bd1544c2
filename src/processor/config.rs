//! The processor's environment variables, read and checked at start-up.

use std::time::Duration;

use reqwest::Url;

use crate::env::{ConfigError, Env};
use crate::http::retry::Backoff;
use crate::processor::destination::DEFAULT_RETRY;
use crate::processor::failures::FailureTarget;
use crate::processor::rules::source::RuleOrigin;
use crate::processor::s4::S4Config;
use crate::processor::s4::config::service_root;

/// How deliveries authenticate, before the secret is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    Basic,
    Bearer,
    ApiKey,
    Iam,
}

/// Everything the processor Lambda needs to know.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub s4: S4Config,
    pub s4_secret: String,
    /// `RULES_SOURCE`: bundled, a path, or `s3://bucket/key` (re-read after `rules_ttl`).
    pub rules: RuleOrigin,
    pub rules_ttl: Duration,
    pub idempotency_table: Option<String>,
    pub keep_completed: Duration,
    pub in_progress_for: Duration,
    pub auth: AuthScheme,
    /// Secret with the deliveries' credentials (not needed for `iam`).
    pub auth_secret: Option<String>,
    pub api_key_header: String,
    pub budget: Duration,
    /// `FAILURE_RECORDS`: where permanent failures are recorded for `e2b reprocess`.
    pub failure_records: Option<FailureTarget>,
    /// The rule files' destinations: attempts per call (`DESTINATION_MAX_ATTEMPTS`).
    pub destination_retry: Backoff,
    /// `PROCESSOR_ALLOWED_ORIGINS`: the webhook origins the handshake allows (all when unset).
    pub allowed_origins: Option<Vec<String>>,
    /// `PROCESSOR_ALLOWED_RATE`: requests a minute the handshake asks the mesh to keep to
    /// (`*`, no limit, when unset).
    pub allowed_rate: Option<u64>,
    /// `S4_MAX_REQUESTS_PER_SECOND`: S/4's request rate, shared by every container (no limit
    /// when unset; needs `IDEMPOTENCY_TABLE`).
    pub s4_max_per_second: Option<u32>,
    /// Trend charts attached to created notifications; `None` with `S4_ATTACHMENTS=off` or
    /// without `IDEMPOTENCY_TABLE`.
    pub charts: Option<ChartConfig>,
    pub warnings: Vec<String>,
}

/// Where trend charts come from and go (`episode::chart`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChartConfig {
    /// `TREND_TABLE`: the forwarder's trend points; `IDEMPOTENCY_TABLE` when unset.
    pub trend_table: String,
    /// `TREND_DAYS` (default 30, at most 35: the points are kept 35 days).
    pub days: u32,
    /// `S4_ATTACHMENT_OBJECT_TYPE`: `PMQMEL` (default) or `BUS2038`.
    pub object_type: String,
    /// `S4_ATTACHMENT_URL`: `API_CV_ATTACHMENT_SRV`'s root; beside the notification service
    /// when unset.
    pub service_url: Url,
}

impl ProcessorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(crate::env::process)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new("processor", &lookup);
        let mut warnings = Vec::new();
        let timeout_ms = env.number("S4_TIMEOUT_MS", 8_000, 100, 60_000);
        let attempts = env.number("S4_MAX_ATTEMPTS", 3, 1, 10);
        let destination_attempts = env.number(
            "DESTINATION_MAX_ATTEMPTS",
            u64::from(DEFAULT_RETRY.attempts),
            1,
            10,
        );
        let budget_ms = env.number("REPLY_BUDGET_MS", 25_000, 1_000, 29_000);
        let keep_hours = env.number("IDEMPOTENCY_KEEP_HOURS", 168, 1, 24 * 365);
        let in_progress_s = env.number("IDEMPOTENCY_IN_PROGRESS_SECONDS", 60, 1, 900);
        let rules_ttl = Duration::from_secs(env.number("RULES_CACHE_TTL_SECONDS", 300, 1, 86_400));

        let service_url = match env.text("S4_BASE_URL") {
            None => {
                env.problem("S4_BASE_URL is missing: the S/4HANA host or the API_MAINTNOTIFICATION service URL");
                None
            }
            Some(v) => match Url::parse(&v) {
                Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
                    let url = service_root(url);
                    if url.scheme() == "http" {
                        warnings.push(format!(
                            "S4_BASE_URL {url} is plain http: use https outside tests"
                        ));
                    }
                    Some(url)
                }
                _ => {
                    env.problem("S4_BASE_URL is not an http(s) URL");
                    None
                }
            },
        };
        let s4_secret = env.text("S4_CREDENTIALS_SECRET").unwrap_or_else(|| {
            env.problem("S4_CREDENTIALS_SECRET is missing: the secret with the S/4 user's username and password");
            String::new()
        });
        let rules =
            RuleOrigin::parse(&env.text("RULES_SOURCE").unwrap_or_else(|| "bundled".into()));
        let auth = match env.text("PROCESSOR_AUTH").as_deref().unwrap_or("basic") {
            "basic" => AuthScheme::Basic,
            "bearer" => AuthScheme::Bearer,
            "api-key" => AuthScheme::ApiKey,
            "iam" => AuthScheme::Iam,
            other => {
                env.problem(format!(
                    "PROCESSOR_AUTH `{other}` is none of basic, bearer, api-key, iam"
                ));
                AuthScheme::Basic
            }
        };
        let auth_secret = env.text("PROCESSOR_CREDENTIALS_SECRET");
        if auth != AuthScheme::Iam && auth_secret.is_none() {
            env.problem("PROCESSOR_CREDENTIALS_SECRET is missing: the secret with the credentials the mesh sends (or set PROCESSOR_AUTH=iam)");
        }
        let idempotency_table = env.text("IDEMPOTENCY_TABLE");
        if idempotency_table.is_none() {
            warnings.push("IDEMPOTENCY_TABLE is not set: concurrent deliveries of one event rely on the S/4 lookup alone".into());
        }
        if in_progress_s * 1000 < budget_ms + 5_000 {
            env.problem(format!(
                "IDEMPOTENCY_IN_PROGRESS_SECONDS {in_progress_s} must exceed REPLY_BUDGET_MS ({budget_ms} ms) by 5 s, or a second delivery could start while the first is still working"
            ));
        }
        let failure_records = match env
            .text("FAILURE_RECORDS")
            .map(|t| FailureTarget::parse(&t))
        {
            None => {
                warnings.push("FAILURE_RECORDS is not set: permanent failures are logged but not recorded for e2b reprocess".into());
                None
            }
            Some(Ok(target)) => Some(target),
            Some(Err(e)) => {
                env.problem(format!("FAILURE_RECORDS {e}"));
                None
            }
        };
        let optional = |env: &mut Env, name: &str, max: u64| {
            env.text(name)?;
            Some(env.number(name, 0, 1, max))
        };
        let s4_max_per_second = optional(&mut env, "S4_MAX_REQUESTS_PER_SECOND", 10_000)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        if s4_max_per_second.is_some() && idempotency_table.is_none() {
            env.problem("S4_MAX_REQUESTS_PER_SECOND needs IDEMPOTENCY_TABLE: the containers share the rate through it");
        }
        let allowed_rate = optional(&mut env, "PROCESSOR_ALLOWED_RATE", 1_000_000);
        let charts = charts(
            &mut env,
            idempotency_table.as_deref(),
            service_url.as_ref(),
            &mut warnings,
        );
        let Some(service_url) = service_url.filter(|_| !env.has_problems()) else {
            return Err(env.error());
        };
        Ok(ProcessorConfig {
            s4: S4Config {
                service_url,
                sap_client: env.text("S4_SAP_CLIENT"),
                request_timeout: Duration::from_millis(timeout_ms),
                retry: Backoff {
                    base: Duration::from_millis(200),
                    cap: Duration::from_millis(200 * 64),
                    attempts: attempts as u32,
                },
            },
            s4_secret,
            rules,
            rules_ttl,
            idempotency_table,
            keep_completed: Duration::from_secs(keep_hours * 3600),
            in_progress_for: Duration::from_secs(in_progress_s),
            auth,
            auth_secret,
            api_key_header: env
                .text("PROCESSOR_API_KEY_HEADER")
                .unwrap_or_else(|| "x-api-key".into()),
            budget: Duration::from_millis(budget_ms),
            failure_records,
            destination_retry: Backoff {
                attempts: destination_attempts as u32,
                ..DEFAULT_RETRY
            },
            allowed_origins: env.text("PROCESSOR_ALLOWED_ORIGINS").map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            allowed_rate,
            s4_max_per_second,
            charts,
            warnings,
        })
    }
}

/// The trend charts' settings (`S4_ATTACHMENTS`, default on).
fn charts(
    env: &mut Env,
    idempotency_table: Option<&str>,
    notifications: Option<&Url>,
    warnings: &mut Vec<String>,
) -> Option<ChartConfig> {
    let on = env.text("S4_ATTACHMENTS").is_none() || env.flag("S4_ATTACHMENTS");
    let days = u32::try_from(env.number("TREND_DAYS", 30, 1, 35)).unwrap_or(30);
    let object_type = env
        .text("S4_ATTACHMENT_OBJECT_TYPE")
        .unwrap_or_else(|| "PMQMEL".into());
    if object_type.chars().count() > 40 {
        env.problem(
            "S4_ATTACHMENT_OBJECT_TYPE is longer than 40 characters (BusinessObjectTypeName)",
        );
    }
    let service_url = match env.text("S4_ATTACHMENT_URL").map(|v| Url::parse(&v)) {
        None => notifications.map(crate::processor::s4::attachment::service_beside),
        Some(Ok(url)) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            Some(url)
        }
        Some(_) => {
            env.problem("S4_ATTACHMENT_URL is not an http(s) URL");
            None
        }
    };
    if !on {
        return None;
    }
    let Some(table) = idempotency_table else {
        warnings.push("IDEMPOTENCY_TABLE is not set: no trend charts are attached (they are attached once per notification, under its position's record)".into());
        return None;
    };
    Some(ChartConfig {
        trend_table: env.text("TREND_TABLE").unwrap_or_else(|| table.to_string()),
        days,
        object_type,
        service_url: service_url?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ProcessorConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProcessorConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn a_host_gets_the_service_path_and_defaults_apply() {
        let Ok(config) = read(&[
            ("S4_BASE_URL", "https://s4.example.com"),
            ("S4_CREDENTIALS_SECRET", "s4"),
            ("PROCESSOR_CREDENTIALS_SECRET", "rdp"),
            ("IDEMPOTENCY_TABLE", "e2b-idempotency"),
            ("FAILURE_RECORDS", "s3://ops-bucket/e2b/failures"),
        ]) else {
            panic!("refused")
        };
        assert_eq!(
            config.s4.service_url.as_str(),
            "https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION"
        );
        assert_eq!(config.auth, AuthScheme::Basic);
        assert_eq!(config.rules, RuleOrigin::Bundled);
        assert_eq!(config.budget, Duration::from_secs(25));
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn the_s4_rate_needs_the_table_and_the_handshake_rate_is_optional() {
        let base = [
            ("S4_BASE_URL", "https://s4.example.com"),
            ("S4_CREDENTIALS_SECRET", "s4"),
            ("PROCESSOR_CREDENTIALS_SECRET", "rdp"),
            ("FAILURE_RECORDS", "s3://ops-bucket/e2b/failures"),
        ];
        let Ok(unset) = read(&base) else {
            panic!("refused")
        };
        assert_eq!((unset.s4_max_per_second, unset.allowed_rate), (None, None));
        let mut with_table = base.to_vec();
        with_table.extend([
            ("IDEMPOTENCY_TABLE", "t"),
            ("S4_MAX_REQUESTS_PER_SECOND", "8"),
            ("PROCESSOR_ALLOWED_RATE", "600"),
        ]);
        let Ok(set) = read(&with_table) else {
            panic!("refused")
        };
        assert_eq!(
            (set.s4_max_per_second, set.allowed_rate),
            (Some(8), Some(600))
        );
        let mut without_table = base.to_vec();
        without_table.push(("S4_MAX_REQUESTS_PER_SECOND", "8"));
        let Err(e) = read(&without_table) else {
            panic!("accepted a rate without a table")
        };
        assert!(e.to_string().contains("needs IDEMPOTENCY_TABLE"), "{e}");
        let mut zero = with_table.clone();
        zero.push(("S4_MAX_REQUESTS_PER_SECOND", "0"));
        let zero: std::collections::HashMap<&str, &str> = zero.into_iter().collect();
        let zero: Vec<(&str, &str)> = zero.into_iter().collect();
        assert!(read(&zero).is_err(), "0 is no rate");
    }

    #[test]
    fn charts_are_on_with_the_table_and_beside_the_notifications() {
        let base = [
            ("S4_BASE_URL", "https://s4.example.com"),
            ("S4_CREDENTIALS_SECRET", "s4"),
            ("PROCESSOR_CREDENTIALS_SECRET", "rdp"),
            ("IDEMPOTENCY_TABLE", "e2b-idempotency"),
        ];
        let Ok(config) = read(&base) else {
            panic!("refused")
        };
        let Some(charts) = config.charts else {
            panic!("charts are on by default")
        };
        assert_eq!(charts.trend_table, "e2b-idempotency");
        assert_eq!((charts.days, charts.object_type.as_str()), (30, "PMQMEL"));
        assert_eq!(
            charts.service_url.as_str(),
            "https://s4.example.com/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV"
        );
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            read(&all)
        };
        assert!(with(&[("S4_ATTACHMENTS", "off")]).is_ok_and(|c| c.charts.is_none()));
        let Ok(set) = with(&[
            ("TREND_TABLE", "e2b-ledger"),
            ("TREND_DAYS", "14"),
            ("S4_ATTACHMENT_OBJECT_TYPE", "BUS2038"),
            ("S4_ATTACHMENT_URL", "https://gw.example.com/attachments"),
        ]) else {
            panic!("refused")
        };
        let charts = set.charts.unwrap_or_else(|| panic!("charts"));
        assert_eq!(charts.trend_table, "e2b-ledger");
        assert_eq!((charts.days, charts.object_type.as_str()), (14, "BUS2038"));
        assert_eq!(
            charts.service_url.as_str(),
            "https://gw.example.com/attachments"
        );
        let Err(e) = with(&[("TREND_DAYS", "36"), ("S4_ATTACHMENTS", "maybe")]) else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("TREND_DAYS") && e.to_string().contains("S4_ATTACHMENTS"));
        // Without the table there is no record to attach under: off, and said.
        let Ok(untabled) = read(&base[..3]) else {
            panic!("refused")
        };
        assert!(untabled.charts.is_none());
        assert!(
            untabled
                .warnings
                .iter()
                .any(|w| w.contains("no trend charts"))
        );
    }

    #[test]
    fn every_problem_is_named() {
        let Err(e) = read(&[
            ("PROCESSOR_AUTH", "magic"),
            ("REPLY_BUDGET_MS", "60000"),
            ("S4_BASE_URL", "s4"),
        ]) else {
            panic!("accepted")
        };
        let text = e.to_string();
        for name in [
            "S4_BASE_URL",
            "S4_CREDENTIALS_SECRET",
            "PROCESSOR_AUTH",
            "REPLY_BUDGET_MS",
        ] {
            assert!(text.contains(name), "{name} not named: {text}");
        }
    }

    #[test]
    fn iam_needs_no_secret_and_rules_may_come_from_s3() {
        let Ok(config) = read(&[
            (
                "S4_BASE_URL",
                "http://127.0.0.1:8080/sap/opu/odata/sap/API_MAINTNOTIFICATION",
            ),
            ("S4_CREDENTIALS_SECRET", "s4"),
            ("PROCESSOR_AUTH", "iam"),
            ("RULES_SOURCE", "s3://config-bucket/e2b/rules.toml"),
        ]) else {
            panic!("refused")
        };
        assert_eq!(config.auth, AuthScheme::Iam);
        assert_eq!(
            config.rules,
            RuleOrigin::S3(crate::aws::s3::S3Location::new(
                "config-bucket",
                "e2b/rules.toml"
            ))
        );
        assert!(config.warnings.iter().any(|w| w.contains("plain http")));
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.contains("IDEMPOTENCY_TABLE"))
        );
    }
}
