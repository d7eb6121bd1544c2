//! The fault and load campaigns of `tests/support/campaign.rs` in their short form (CI); the full
//! size runs with `bash bench/campaign.sh`.

use crate::support::campaign;
use crate::support::s4::TestS4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_under_faults_delivers_every_event_or_names_it() {
    let f = campaign::forwarder(40, 25, true, 2, false).await;
    eprintln!("{f:?}");
    assert_eq!(
        f.unaccounted, 0,
        "events neither delivered nor named nor recorded: {f:?}"
    );
    assert_eq!(f.lost, 0, "{f:?}");
    assert_eq!(f.delivered, f.expected, "{f:?}");
    // Refusals no longer fail invocations (they are recorded), and 503s are retried within
    // one; the retry path is the property in tests/it/ledger.rs.
    assert!(f.refused > 0, "the faults did not bite: {f:?}");
    assert_eq!(
        f.refusals_mishandled, 0,
        "refused events recorded once, never re-sent: {f:?}"
    );
    assert_eq!(f.resent, f.refused, "{f:?}");
    assert!(f.duplicate_percent() <= 1.0, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_under_faults_makes_one_notification_per_alert() {
    let s4 = TestS4::start("CAMPAIGN", "campaign-s4-s3cret").await;
    s4.set_chaos(100, 50, 11);
    let f = campaign::processor(500, &s4.service_url(), || s4.notifications()).await;
    eprintln!("{f:?}");
    assert_eq!(f.wrong, 0, "alerts without exactly one notification: {f:?}");
    assert_eq!(f.without_outcome, 0, "{f:?}");
    assert_eq!(f.notifications, 500);
    assert!(f.redeliveries > 0, "the faults did not bite: {f:?}");
}
