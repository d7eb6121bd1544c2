//! Reading Firehose objects from S3 as byte streams.

use std::future::Future;
use std::pin::Pin;

use tokio::io::AsyncRead;

use crate::outcome::{Disposed, Disposition};

/// A place in S3: a bucket and a key, or a key prefix; written `s3://bucket/key`. The one S3
/// location type of the crate: objects to read, rule files, failure records, replay prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    pub bucket: String,
    /// A key, or a prefix of keys; may be empty (the whole bucket).
    pub key: String,
}

impl S3Location {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> S3Location {
        S3Location {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    /// Parses `s3://bucket/key`; `None` for anything else. The key may be empty.
    pub fn parse(text: &str) -> Option<S3Location> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| S3Location::new(bucket, key))
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// One S3 object (version) to read, its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub location: S3Location,
    pub version_id: Option<String>,
    /// The ETag the notification gave, which tells uploads under one key apart where the
    /// bucket keeps no versions.
    pub etag: Option<String>,
    pub size: Option<u64>,
}

impl ObjectRef {
    pub fn label(&self) -> String {
        self.location.to_string()
    }
}

/// An object's bytes as they arrive.
pub type ObjectBody = Pin<Box<dyn AsyncRead + Send>>;

/// Why an object could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// The object (or that version) no longer exists: a retry cannot help; logged and skipped.
    #[error("{0} (no longer exists; skipped)")]
    NotFound(String),
    /// Access denied: the role or the bucket policy must change; the invocation fails.
    #[error("{0} (access denied: check the function's role)")]
    Denied(String),
    /// Anything a retry may fix (throttling, network, 5xx); the invocation fails.
    #[error("{0}")]
    Transient(String),
}

impl Disposed for GetError {
    /// A missing object is given up (logged and skipped); access denied is retried, as the
    /// role or bucket policy fixed cures every object.
    fn disposition(&self) -> Disposition {
        match self {
            GetError::NotFound(_) => Disposition::GiveUp,
            GetError::Denied(_) | GetError::Transient(_) => Disposition::Retry,
        }
    }
}

/// Where objects come from: S3 in production.
pub trait ObjectStore: Send + Sync {
    /// Opens an object (the notified version, when the notification named one) as a stream.
    fn open(&self, object: &ObjectRef)
    -> impl Future<Output = Result<ObjectBody, GetError>> + Send;
}

impl ObjectStore for aws_sdk_s3::Client {
    async fn open(&self, object: &ObjectRef) -> Result<ObjectBody, GetError> {
        use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
        let request = self
            .get_object()
            .bucket(&object.location.bucket)
            .key(&object.location.key)
            .set_version_id(object.version_id.clone());
        match request.send().await {
            Ok(output) => Ok(Box::pin(output.body.into_async_read())),
            Err(SdkError::ServiceError(e)) => {
                let status = e.raw().status().as_u16();
                let code = e.err().code().unwrap_or("").to_string();
                let message = format!(
                    "cannot read {}: {} {}",
                    object.label(),
                    status,
                    if code.is_empty() { "error" } else { &code }
                );
                Err(match (status, code.as_str()) {
                    (404, _) | (_, "NoSuchKey" | "NoSuchVersion" | "NoSuchBucket") => {
                        GetError::NotFound(message)
                    }
                    (403, _) | (_, "AccessDenied") => GetError::Denied(message),
                    _ => GetError::Transient(message),
                })
            }
            Err(e) => Err(GetError::Transient(format!(
                "cannot read {}: {}",
                object.label(),
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))),
        }
    }
}

/// Objects in a local directory, `DIR/BUCKET/KEY`: for local runs and benchmarks.
#[derive(Debug, Clone)]
pub struct LocalDir {
    pub root: std::path::PathBuf,
}

impl ObjectStore for LocalDir {
    async fn open(&self, object: &ObjectRef) -> Result<ObjectBody, GetError> {
        let path = self
            .root
            .join(&object.location.bucket)
            .join(&object.location.key);
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Box::pin(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(GetError::NotFound(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(GetError::Denied(
                format!("cannot read {}: {e}", path.display()),
            )),
            Err(e) => Err(GetError::Transient(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}

/// An S3 client from the shared AWS configuration; path-style addressing for S3-compatible
/// stores and emulators.
pub fn client(aws: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(path_style)
            .build(),
    )
}

/// A small S3 object (a rule file, a failure record) read whole, refused above `limit` bytes.
/// Errors name the object.
pub async fn read_small(
    client: &aws_sdk_s3::Client,
    location: &S3Location,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let object = client
        .get_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read {location}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    if object
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(format!("{location} is larger than {limit} bytes"));
    }
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| format!("cannot read {location}: {e}"))?
        .into_bytes();
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_a_bucket_and_a_key_or_prefix() {
        assert_eq!(
            S3Location::parse("s3://b/project=Plant A/x.gz"),
            Some(S3Location {
                bucket: "b".into(),
                key: "project=Plant A/x.gz".into()
            })
        );
        assert_eq!(
            S3Location::parse("s3://b"),
            Some(S3Location {
                bucket: "b".into(),
                key: String::new()
            })
        );
        assert_eq!(S3Location::parse("s3:///k"), None);
        assert_eq!(S3Location::parse("/tmp/x"), None);
    }

    #[test]
    fn a_location_is_written_as_an_s3_url() {
        let at = S3Location::new("b", "project=Plant A/x.gz");
        assert_eq!(S3Location::parse(&at.to_string()), Some(at));
    }
}
