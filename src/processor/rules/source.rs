//! Where the rules come from: bundled, a file, or an S3 object re-read after a TTL.

use super::RuleSet;
use super::file::RuleError;
use crate::aws::s3::S3Location;

/// A rule file larger than this is refused.
const MAX_RULES_BYTES: usize = 4 * 1024 * 1024;

/// Where the rules come from, re-read from S3 after a TTL so that they change without a
/// redeploy. A file that fails to load or check keeps the last good rules in force (logged).
pub struct RuleSource {
    origin: RuleOrigin,
    ttl: std::time::Duration,
    s3: Option<aws_sdk_s3::Client>,
    current: tokio::sync::RwLock<(std::time::Instant, std::sync::Arc<RuleSet>)>,
    refreshing: tokio::sync::Mutex<()>,
}

/// A rule file's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    Bundled,
    File(String),
    S3(S3Location),
}

impl RuleOrigin {
    /// `bundled`, a path, or `s3://bucket/key`.
    pub fn parse(text: &str) -> RuleOrigin {
        if text == "bundled" {
            return RuleOrigin::Bundled;
        }
        match S3Location::parse(text) {
            Some(at) => RuleOrigin::S3(at),
            None => RuleOrigin::File(text.to_string()),
        }
    }

    fn label(&self) -> String {
        match self {
            RuleOrigin::Bundled => "bundled rules/default.toml".into(),
            RuleOrigin::File(path) => path.clone(),
            RuleOrigin::S3(at) => at.to_string(),
        }
    }
}

impl RuleSource {
    /// Rules that never change (tests, local runs).
    pub fn fixed(rules: RuleSet) -> RuleSource {
        RuleSource {
            origin: RuleOrigin::Bundled,
            ttl: std::time::Duration::MAX,
            s3: None,
            current: tokio::sync::RwLock::new((
                std::time::Instant::now(),
                std::sync::Arc::new(rules),
            )),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the rules once (a failure here stops start-up) and keeps the origin to re-read.
    pub async fn load(
        origin: RuleOrigin,
        ttl: std::time::Duration,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Result<RuleSource, RuleError> {
        let rules = fetch(&origin, s3.as_ref()).await?;
        Ok(RuleSource {
            origin,
            ttl,
            s3,
            current: tokio::sync::RwLock::new((
                std::time::Instant::now(),
                std::sync::Arc::new(rules),
            )),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The rules in force; S3 rules older than the TTL are read again first.
    pub async fn current(&self) -> std::sync::Arc<RuleSet> {
        {
            let current = self.current.read().await;
            if !matches!(self.origin, RuleOrigin::S3(_)) || current.0.elapsed() < self.ttl {
                return current.1.clone();
            }
        }
        // One refresh at a time; the others use the rules in force meanwhile.
        let Ok(_guard) = self.refreshing.try_lock() else {
            return self.current.read().await.1.clone();
        };
        match fetch(&self.origin, self.s3.as_ref()).await {
            Ok(rules) => {
                let rules = std::sync::Arc::new(rules);
                *self.current.write().await = (std::time::Instant::now(), rules.clone());
                rules
            }
            Err(e) => {
                tracing::error!(origin = %self.origin.label(), error = %e, "rules not reloaded; the last good rules stay in force");
                let mut current = self.current.write().await;
                current.0 = std::time::Instant::now();
                current.1.clone()
            }
        }
    }
}

async fn fetch(origin: &RuleOrigin, s3: Option<&aws_sdk_s3::Client>) -> Result<RuleSet, RuleError> {
    let label = origin.label();
    let text = match origin {
        RuleOrigin::Bundled => return RuleSet::bundled(),
        RuleOrigin::File(path) => {
            std::fs::read_to_string(path).map_err(|e| RuleError(vec![format!("{label}: {e}")]))?
        }
        RuleOrigin::S3(at) => {
            let Some(client) = s3 else {
                return Err(RuleError(vec![format!("{label}: no S3 client")]));
            };
            let bytes = crate::aws::s3::read_small(client, at, MAX_RULES_BYTES)
                .await
                .map_err(|e| RuleError(vec![e]))?;
            String::from_utf8(bytes).map_err(|_| RuleError(vec![format!("{label}: not UTF-8")]))?
        }
    };
    RuleSet::parse(&label, &text)
}
