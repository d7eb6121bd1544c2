//! `e2b rules test … --after EARLIER.json`: the episode decision for an event, given the
//! events of its position delivered before it (each assumed carried out in S/4 as planned).

use crate::processor::delivery::{self, AlertEvent, Delivery};
use crate::processor::episode::model::{Change, PositionKey};
use crate::processor::episode::plan::{Plan, Target, assume_done, change, creation, plans};
use crate::processor::episode::state::PositionState;
use crate::processor::episode::text::SeenFor;
use crate::processor::rules::{Rule, RuleSet};

/// Reads the `--after` files; an error names the file.
pub fn read_events(paths: &[String]) -> Result<Vec<AlertEvent>, String> {
    let mut events = Vec::new();
    for path in paths {
        let body = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        match delivery::parse(&body) {
            Ok(Delivery::Event(e)) => events.push(*e),
            Ok(Delivery::NotAnAlert { .. }) => {}
            Err(e) => return Err(format!("{path}: not an event the processor accepts: {e}")),
        }
    }
    Ok(events)
}

/// Prints the episode decision; `false` when the event is handled per event (no position
/// identity or no usable time).
pub fn explain(rules: &RuleSet, event: &AlertEvent, rule: &Rule, earlier: &[AlertEvent]) -> bool {
    let (Some(position), Some(_)) = (PositionKey::of(event), Change::of(event)) else {
        println!("  no position identity or no usable time: handled per event");
        return false;
    };
    let mut state: Option<PositionState> = None;
    let mut created = 0;
    for (i, e) in earlier.iter().chain([event]).enumerate() {
        let last = i == earlier.len();
        if PositionKey::of(e).as_ref() != Some(&position) {
            println!("  --after event {} is of another position: left out", e.id);
            continue;
        }
        let Some(change) = Change::of(e) else {
            continue;
        };
        let rule = if last {
            rule
        } else {
            match rules.decide(e).into_iter().next() {
                Some(r) => r,
                None => continue,
            }
        };
        let seen = match SeenFor::event(e, change, rule, rules, &position) {
            Ok(seen) => seen,
            Err(reason) => {
                println!(
                    "  {}: {reason}: the event would fail (ERROR, recorded)",
                    e.id
                );
                return true;
            }
        };
        let state = state.get_or_insert_with(|| PositionState::new(seen.place.clone()));
        let id = seen.seen.change.id.clone();
        if !state.remember(seen.seen) {
            continue;
        }
        for plan in plans(state, &id) {
            if last {
                describe(state, &plan);
            }
            if let Target::Create(_) = plan.target {
                created += 1;
            }
            let number = match created {
                1 => "NOTIFICATION".to_string(),
                n => format!("NOTIFICATION{n}"),
            };
            assume_done(state, &plan, &number);
        }
        if last && plans(state, &id).is_empty() {
            println!(
                "  episode: none open; the recovery is kept and ends the episode of alerts that arrive later"
            );
        }
    }
    true
}

fn describe(state: &PositionState, plan: &Plan) {
    let line = |id: &String| plan.line(state, id).unwrap_or(id).to_string();
    println!(
        "  episode of {} ({} event(s)): {}",
        state.place.label,
        plan.ids.len(),
        plan.ids.join(", ")
    );
    match &plan.target {
        Target::Create(creator) => {
            let draft = state.seen(creator).and_then(|s| s.draft.as_ref());
            println!(
                "  → create a notification from {creator}: \"{}\", type {}, priority {}, reference {}",
                draft.map(|d| d.text.as_str()).unwrap_or("?"),
                draft.map(|d| d.notification_type.as_str()).unwrap_or("?"),
                plan.priority
                    .as_deref()
                    .or(draft.and_then(|d| d.priority.as_deref()))
                    .unwrap_or("-"),
                draft.map(|d| d.external_reference.as_str()).unwrap_or("?"),
            );
            println!("      {}", line(creator));
            if let (Some(requests), Some((draft, _))) = (
                super::s4_requests::s4_requests(),
                creation(state, creator, plan),
            ) {
                super::s4_requests::show(requests.create(&draft));
            }
        }
        Target::Filed(i) if plan.joins => {
            let number = &state.filed[*i].number;
            println!(
                "  → a new episode joins the open notification {number} (one open notification per position): S/4 is read first unless it showed it open in the last {} s; completed, postponed or deleted there, the episode gets a notification of its own",
                crate::processor::episode::plan::OPEN_FOR_SURE.as_secs()
            );
            if let Some(requests) = super::s4_requests::s4_requests() {
                super::s4_requests::show(requests.find_by_reference(&state.filed[*i].reference));
            }
        }
        Target::Filed(i) => println!("  → the episode's notification {}", state.filed[*i].number),
        Target::Pending(_) => println!("  → look up the create whose answer was lost"),
    }
    for id in &plan.append {
        println!("  → add the line: {}", line(id));
    }
    if let Some(p) = &plan.priority
        && matches!(plan.target, Target::Filed(_))
    {
        println!("  → raise the priority to {p}");
    }
    if let Some(t) = &plan.retitle {
        println!("  → take the short text of the most urgent alert, {t}");
    }
    if let Some(t) = &plan.restart {
        println!("  → take the malfunction start of the earliest alert, {t}");
    }
    let (fields, _) = change(state, plan);
    let number = match &plan.target {
        Target::Filed(i) => state.filed[*i].number.clone(),
        _ => "NOTIFICATION".to_string(),
    };
    let requests = (!fields.is_empty() || plan.complete.is_some())
        .then(super::s4_requests::s4_requests)
        .flatten();
    if let (Some(requests), false) = (&requests, fields.is_empty()) {
        super::s4_requests::show(requests.update(&number, serde_json::Value::Object(fields)));
    }
    if let Some(end) = &plan.complete {
        let time = state.seen(end).map(|s| s.change.time.to_rfc3339());
        println!(
            "  → write the closure's catalog codes, then complete it at {}",
            time.unwrap_or_default()
        );
        if let Some(requests) = &requests {
            let at = state.seen(end).map(|s| s.change.time);
            super::s4_requests::show(requests.complete(&number, at));
        }
    }
    if plan.is_settled() {
        println!("  → nothing to change (DUPLICATE)");
    }
}
