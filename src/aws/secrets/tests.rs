use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A secret store that counts reads and serves what the test puts in.
struct Counting {
    reads: AtomicUsize,
    value: std::sync::Mutex<Result<String, SecretError>>,
}

impl Counting {
    fn new(value: &str) -> Self {
        Counting {
            reads: AtomicUsize::new(0),
            value: std::sync::Mutex::new(Ok(value.to_string())),
        }
    }
    fn set(&self, value: Result<String, SecretError>) {
        if let Ok(mut v) = self.value.lock() {
            *v = value;
        }
    }
}

impl SecretStore for &Counting {
    async fn secret_string(&self, _id: &str) -> Result<String, SecretError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.value.lock().map_or_else(
            |_| Err(SecretError::Transient("poisoned".into())),
            |v| v.clone(),
        )
    }
}

const V1: &str = r#"{"username":"solace-cloud-client","password":"first-s3cret"}"#;
const V2: &str = r#"{"username":"solace-cloud-client","password":"second-s3cret"}"#;

#[tokio::test]
async fn credentials_are_cached_for_the_ttl() {
    let store = Counting::new(V1);
    let cache = CachedCredentials::new(&store, "aem", Duration::from_secs(300));
    for _ in 0..5 {
        let c = cache.get().await;
        assert_eq!(
            c.map(|c| c.password().map(str::to_string)),
            Ok(Some("first-s3cret".to_string()))
        );
    }
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);

    let expiring = CachedCredentials::new(&store, "aem", Duration::from_millis(1));
    assert!(expiring.get().await.is_ok());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(expiring.get().await.is_ok());
    assert_eq!(store.reads.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refresh_after_rotation_reads_the_secret_once() {
    let store = Counting::new(V1);
    let cache = CachedCredentials::new(&store, "aem", Duration::from_secs(300));
    let Ok(old) = cache.get().await else { panic!() };
    store.set(Ok(V2.to_string()));
    // Two publishes saw the 401 with the old credentials; only the first one reads the secret.
    let first = cache.refresh(&old).await;
    let second = cache.refresh(&old).await;
    assert_eq!(
        first.map(|c| c.password().map(str::to_string)),
        Ok(Some("second-s3cret".to_string()))
    );
    assert_eq!(
        second.map(|c| c.password().map(str::to_string)),
        Ok(Some("second-s3cret".to_string()))
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_read_is_not_repeated_for_every_event() {
    let store = Counting::new(V1);
    store.set(Err(SecretError::Transient("throttled".into())));
    let cache = CachedCredentials::new(&store, "aem", Duration::from_secs(300));
    for _ in 0..500 {
        assert_eq!(
            cache.get().await.err(),
            Some(SecretError::Transient("throttled".into()))
        );
    }
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        1,
        "one read per cooldown, not one per event"
    );
    // After the cooldown the secret is read again, and a success is cached as usual.
    store.set(Ok(V1.to_string()));
    tokio::time::sleep(FAILURE_COOLDOWN + Duration::from_millis(50)).await;
    assert!(cache.get().await.is_ok());
    assert!(cache.get().await.is_ok());
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[test]
fn a_malformed_secret_is_named_but_never_quoted() {
    for json in [
        r#"{"username":"u","password":"p4ss-w0rd" oops"#,
        r#"["p4ss-w0rd"]"#,
        r#"{"user":"u","pass":"p4ss-w0rd"}"#,
        r#"{"username":"","password":"p4ss-w0rd"}"#,
        "p4ss-w0rd",
    ] {
        match parse_credentials(
            "arn:aws:secretsmanager:eu-central-1:111122223333:secret:aem",
            json,
        ) {
            Err(SecretError::Permanent(message)) => {
                assert!(
                    message.contains("secret arn:aws:secretsmanager"),
                    "{message}"
                );
                assert!(
                    !message.contains("p4ss-w0rd"),
                    "the password leaked: {message}"
                );
            }
            other => panic!("{json}: {other:?}"),
        }
    }
}

#[test]
fn the_password_never_prints() {
    let credentials = parse_credentials("aem", V1).expect("V1 is a Basic logon");
    assert!(
        matches!(&credentials.logon, BrokerLogon::Basic { username, .. } if username == "solace-cloud-client")
    );
    let printed = format!("{credentials:?}");
    assert!(!printed.contains("first-s3cret"), "{printed}");
    assert!(printed.contains("***"));
}

/// One case per error code Secrets Manager can answer `GetSecretValue` with.
#[test]
fn every_secrets_manager_error_code_says_whether_a_retry_can_help() {
    use crate::outcome::Disposition::{GiveUp, Retry};
    let cases = [
        ("ResourceNotFoundException", GiveUp),
        ("InvalidParameterException", GiveUp),
        ("InvalidRequestException", GiveUp),
        ("DecryptionFailure", GiveUp),
        ("AccessDeniedException", GiveUp),
        ("InternalServiceError", Retry),
        ("ThrottlingException", Retry),
        ("RequestLimitExceeded", Retry),
        ("SomethingNew", Retry),
    ];
    for (code, expected) in cases {
        assert_eq!(super::disposition_of(Some(code)), expected, "{code}");
    }
    assert_eq!(super::disposition_of(None), Retry);
}
