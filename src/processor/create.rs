//! Creating a notification exactly once, or letting an open one take the alert.

use std::time::Instant;

use crate::processor::delivery::AlertEvent;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::IfOpen;
use crate::processor::s4::{Existing, NewNotification, S4Error};

use super::Processor;
use super::once::Keep;
use super::outcome::Outcome;

impl<I: IdempotencyStore> Processor<I> {
    /// Creates the event's notification unless it exists: the idempotency record serialises
    /// concurrent deliveries, the external-reference lookup is the source of truth.
    pub(super) async fn create_once(
        &self,
        event: &AlertEvent,
        notification: &NewNotification,
        if_open: IfOpen,
        deadline: Instant,
    ) -> Outcome {
        let key = notification.external_reference.clone();
        self.exactly_once(&key, &event.id, deadline, |_| async {
            let outcome = match self.s4.find_by_reference(&key, deadline).await {
                Ok(Some(existing)) => Ok(Outcome::Duplicate(existing.number)),
                Ok(None) => {
                    match self
                        .create_or_join(event, notification, if_open, deadline)
                        .await
                    {
                        // The write may have happened: look again before saying anything.
                        Err(S4Error::Unclear(why)) => {
                            match self.s4.find_by_reference(&key, deadline).await {
                                Ok(Some(existing)) => Ok(Outcome::Complete(Some(existing.number))),
                                _ => Err(S4Error::Unclear(why)),
                            }
                        }
                        other => other,
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(done) => (done, Keep::ByOutcome),
                Err(S4Error::Unclear(why)) => (
                    Outcome::Retry(format!(
                        "S/4 did not confirm the write ({why}); it is looked up again on redelivery"
                    )),
                    Keep::InProgress,
                ),
                Err(e) => (Outcome::of_error(&e), Keep::ByOutcome),
            }
        })
        .await
    }

    /// Creates the notification, unless the policy says to skip the alert, add it to a
    /// notification already open for the technical object, or escalate that one.
    async fn create_or_join(
        &self,
        event: &AlertEvent,
        notification: &NewNotification,
        if_open: IfOpen,
        deadline: Instant,
    ) -> Result<Outcome, S4Error> {
        if if_open != IfOpen::Create {
            let open = self
                .s4
                .open_for_object(
                    &notification.technical_object,
                    &notification.object_kind,
                    100,
                    deadline,
                )
                .await?;
            // Escalation only touches notifications this processor created.
            let target = match if_open {
                IfOpen::Escalate => open.into_iter().find(created_by_us),
                _ => open.into_iter().next(),
            };
            if let Some(open) = target {
                if if_open == IfOpen::Skip {
                    return Ok(Outcome::Skipped(format!(
                        "notification {} is already open for {}",
                        open.number, notification.technical_object
                    )));
                }
                self.join(
                    event,
                    notification,
                    &open,
                    if_open == IfOpen::Escalate,
                    deadline,
                )
                .await?;
                return Ok(Outcome::Updated(open.number));
            }
        }
        self.s4
            .create(notification, deadline)
            .await
            .map(|number| Outcome::Complete(Some(number)))
    }

    /// Adds the alert to an open notification's long text (once per event, even without the
    /// idempotency table: the text names the event), raising its priority when escalating.
    async fn join(
        &self,
        event: &AlertEvent,
        notification: &NewNotification,
        open: &Existing,
        escalate: bool,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        let marker = format!("Monitron event: {}", event.id);
        let text = format!("{}\n{}", notification.text, notification.long_text);
        let long_text = (!open.long_text.lines().any(|line| line == marker)).then_some(text);
        let priority = notification
            .priority
            .as_deref()
            .filter(|p| escalate && more_urgent(p, open.priority.as_deref()));
        match self
            .s4
            .requests()
            .join(&open.number, long_text.as_deref(), priority)?
        {
            Some(request) => self.s4.write(&request, deadline).await,
            None => Ok(()),
        }
    }
}

/// Notifications this processor created carry an external reference starting with `MON`.
pub(super) fn created_by_us(n: &Existing) -> bool {
    n.external_reference
        .as_deref()
        .is_some_and(|r| r.starts_with("MON"))
}

/// SAP's standard priorities run from `1` (very high) down: a smaller code is more urgent.
/// A notification without a priority takes any.
pub(crate) fn more_urgent(new: &str, current: Option<&str>) -> bool {
    match current {
        None => true,
        Some(current) => new < current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_only_raises_the_priority() {
        assert!(more_urgent("1", Some("2")));
        assert!(!more_urgent("2", Some("1")));
        assert!(!more_urgent("1", Some("1")));
        assert!(more_urgent("3", None));
    }
}
