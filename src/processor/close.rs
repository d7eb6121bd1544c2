//! Closing the loop: when an asset recovers (or a user closes the anomaly in Monitron), the
//! open notification its alert created is completed, or annotated with the closure code.

use std::time::Instant;

use serde_json::Value;

use crate::processor::delivery::AlertEvent;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::{ActionParams, CatalogCode, CloseMode, ClosureCatalog, RuleSet};
use crate::processor::s4::{Existing, Item, ItemCode, S4Error};

use super::Processor;
use super::create::created_by_us;
use super::notification::{external_reference, recovery_note, technical_object_for};
use super::once::Keep;
use super::outcome::Outcome;

impl<I: IdempotencyStore> Processor<I> {
    /// Finds the open notifications the processor created for the event's technical object
    /// and position, adds the recovery note (once per event), and completes them when the
    /// params say so (the default). Exactly once per recovery event.
    pub(super) async fn close_once(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        params: &ActionParams,
        identity: &str,
        scope: &Value,
        deadline: Instant,
    ) -> Outcome {
        let (object, kind, _) = match technical_object_for(event, params, rules, scope) {
            Ok(found) => found,
            Err(reason) => return Outcome::gave_up(reason),
        };
        let mode = params.close.unwrap_or_default();
        let key = external_reference(&event.source, &format!("{identity}\nclose"));
        self.exactly_once(&key, &event.id, deadline, |_| async {
            let catalog = event
                .closure_code
                .as_ref()
                .map(|code| rules.closure_codes.for_closure(code))
                .unwrap_or_default();
            let closed = self
                .close(event, &object, kind.odata_value(), mode, &catalog, deadline)
                .await;
            match closed {
                Ok(numbers) if numbers.is_empty() => (
                    Outcome::Skipped(format!(
                        "no open notification from Monitron for {object} ({})",
                        event.position.as_deref().unwrap_or("any position")
                    )),
                    Keep::ByOutcome,
                ),
                Ok(numbers) => (Outcome::Closed(numbers.join(",")), Keep::ByOutcome),
                // Completing twice is refused by S/4, so a redelivery cannot complete twice;
                // the note carries the event id, so it is not added twice either.
                Err(e) => (Outcome::of_error(&e), Keep::ByOutcome),
            }
        })
        .await
    }

    async fn close(
        &self,
        event: &AlertEvent,
        object: &str,
        kind: &str,
        mode: CloseMode,
        catalog: &ClosureCatalog,
        deadline: Instant,
    ) -> Result<Vec<String>, S4Error> {
        let open = self.s4.open_for_object(object, kind, 100, deadline).await?;
        let mine: Vec<Existing> = open
            .into_iter()
            .filter(created_by_us)
            .filter(|n| same_position(n, event))
            .collect();
        let note = recovery_note(event);
        let marker = format!("Monitron event: {}", event.id);
        let mut closed = Vec::new();
        for n in mine {
            if !n.long_text.lines().any(|line| line == marker) {
                self.s4.append_long_text(&n.number, &note, deadline).await?;
            }
            if mode == CloseMode::Complete {
                self.write_catalog_codes(&n.number, catalog, deadline)
                    .await?;
                self.s4
                    .complete(&n.number, event.timestamp(), deadline)
                    .await?;
            }
            closed.push(n.number);
        }
        Ok(closed)
    }
}

impl<I: IdempotencyStore> Processor<I> {
    /// Writes a closure's catalog codes as S/4 keeps them: an item named [`CLOSURE_ITEM`] with
    /// the damage code, and under it a cause and an activity. What is there already is not
    /// written again (a redelivery after a lost answer finds it).
    pub(crate) async fn write_catalog_codes(
        &self,
        number: &str,
        catalog: &ClosureCatalog,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        if catalog.is_empty() {
            return Ok(());
        }
        let pair = |c: &CatalogCode| (c.group.clone(), c.code.clone());
        let existing = self.s4.items_of(number, deadline).await?;
        let item = match existing.into_iter().find(|i| i.text == CLOSURE_ITEM) {
            Some(item) => item,
            None => {
                let damage = catalog
                    .damage
                    .as_ref()
                    .map(|c| (c.group.as_str(), c.code.as_str()));
                let key = self
                    .s4
                    .create_item(number, CLOSURE_ITEM, damage, deadline)
                    .await?;
                Item {
                    item: key,
                    text: CLOSURE_ITEM.into(),
                    damage: catalog.damage.as_ref().map(pair),
                    ..Item::default()
                }
            }
        };
        for (kind, wanted) in [
            (ItemCode::Cause, &catalog.cause),
            (ItemCode::Activity, &catalog.activity),
        ] {
            if let Some(code) = wanted
                && !item.codes(kind).contains(&pair(code))
            {
                let request = self.s4.requests().create_item_code(
                    kind,
                    number,
                    &item.item,
                    kind.text(),
                    (&code.group, &code.code),
                )?;
                self.s4.write(&request, deadline).await?;
            }
        }
        Ok(())
    }
}

/// The text of the item a closure's catalog codes are written under.
pub const CLOSURE_ITEM: &str = "Monitron closure";

/// A notification belongs to the event's position when the first position its long text names
/// is that one (the processor writes `Position: …` into every notification it creates; alerts
/// of other positions appended later come after it). One whose long text names no position (a
/// custom `long_text`), or an event without a position, matches on the technical object alone.
fn same_position(n: &Existing, event: &AlertEvent) -> bool {
    let Some(position) = &event.position else {
        return true;
    };
    match first_position(&n.long_text) {
        Some(first) => first == position,
        None => true,
    }
}

/// The first position a notification's long text names (`Position: …`): the one that
/// created it.
pub(crate) fn first_position(long_text: &str) -> Option<&str> {
    long_text.lines().find_map(|l| l.strip_prefix("Position: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_belongs_to_the_position_that_created_it() {
        let event = |position: &str| {
            let body = serde_json::json!({"specversion": "1.0", "id": "r-1", "source": "monitron/x/y",
                "type": "com.amazon.monitron.asset.recovered", "data": {"position": position}});
            match crate::processor::delivery::parse(body.to_string().as_bytes()) {
                Ok(crate::processor::delivery::Delivery::Event(e)) => *e,
                other => panic!("{other:?}"),
            }
        };
        let n = Existing {
            number: "1".into(),
            processing_phase: Some("1".into()),
            priority: None,
            external_reference: Some("MON0".into()),
            long_text: "Asset: Pump 7\nPosition: Motor DE\n…\nPosition: Motor NDE".into(),
        };
        assert!(same_position(&n, &event("Motor DE")));
        assert!(
            !same_position(&n, &event("Motor NDE")),
            "appended later, not its creator"
        );
        let custom = Existing {
            long_text: "written by a template".into(),
            ..n
        };
        assert!(same_position(&custom, &event("Motor NDE")));
    }
}
