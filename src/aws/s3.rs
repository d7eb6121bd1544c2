//! Reading Firehose objects from S3 as byte streams.

use std::future::Future;
use std::pin::Pin;

use tokio::io::AsyncRead;

use crate::forwarder::trigger::ObjectRef;
use crate::outcome::{Disposed, Disposition};

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
            .bucket(&object.bucket)
            .key(&object.key)
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
        let path = self.root.join(&object.bucket).join(&object.key);
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
    bucket: &str,
    key: &str,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    if object
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(format!("s3://{bucket}/{key} is larger than {limit} bytes"));
    }
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| format!("cannot read s3://{bucket}/{key}: {e}"))?
        .into_bytes();
    Ok(bytes.to_vec())
}
