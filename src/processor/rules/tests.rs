use super::*;
use crate::processor::rules::conditions::Matcher;

fn event(kind: &str, state: &str, site: &str) -> AlertEvent {
    AlertEvent {
        id: "e".into(),
        source: "s".into(),
        event_type: format!("com.amazon.monitron.asset.{kind}"),
        category: "asset".into(),
        kind: kind.into(),
        time: None,
        project: Some("Plant A".into()),
        site: Some(site.into()),
        asset: Some("Pump 7".into()),
        position: Some("Motor DE".into()),
        new_state: Some(state.into()),
        previous_state: Some("HEALTHY".into()),
        transition: Some("measurement".into()),
        closure_code: None,
        sensor_id: None,
        asset_position_url: None,
        schema_version: Some("2".into()),
        data: serde_json::Value::Null,
        trace: crate::trace::TraceParent::for_alert("s", "e"),
        carried: crate::processor::delivery::Carried::Absent,
    }
}

const FILE: &str = r#"
hit_policy = "all"
[[rule]]
name = "alarms-in-hall-sites"
when = { new_state = ["ALARM", "WARNING"], site = "Hall*" }
action = "create_notification"
params = { priority = "1" }
[[rule]]
name = "log-everything"
action = "log"
[[mapping]]
site = "Hall 2"
asset = "*"
technical_object = "FL-100-200"
object_kind = "functional_location"
planning_plant = "1010"
[[mapping]]
technical_object = "10000000"
object_kind = "equipment"
"#;

#[test]
fn the_bundled_rules_are_valid_and_map_states_to_priorities() {
    let rules = RuleSet::bundled().expect("rules (RuleSet::bundled)");
    let pick = |kind: &str, state: &str| {
        rules
            .decide(&event(kind, state, "Site 1"))
            .first()
            .map(|r| r.name.clone())
    };
    assert_eq!(pick("alert", "ALARM").as_deref(), Some("alarm"));
    assert_eq!(pick("alert", "WARNING").as_deref(), Some("warning"));
    assert_eq!(
        pick("alert", "NEEDS_MAINTENANCE").as_deref(),
        Some("needs-maintenance")
    );
    assert_eq!(pick("recovered", "HEALTHY").as_deref(), Some("recovery"));
    assert_eq!(
        rules.decide(&event("alert", "ALARM", "x")).len(),
        1,
        "first match"
    );
}

#[test]
fn the_bundled_rules_work_by_episodes_and_if_open_keeps_a_rule_per_event() {
    let bundled = RuleSet::bundled().expect("bundled rules");
    for rule in &bundled.rules {
        if matches!(
            rule.action,
            ActionKind::CreateNotification | ActionKind::CloseNotification
        ) {
            assert_eq!(rule.params.per(), Per::Episode, "{}", rule.name);
        }
    }
    let params = |text: &str| -> ActionParams { toml::from_str(text).expect("params") };
    assert_eq!(params("if_open = \"append\"").per(), Per::Event);
    assert_eq!(params("per = \"event\"").per(), Per::Event);
    assert_eq!(params("").per(), Per::Episode);
}

#[test]
fn all_match_lists_every_row_and_patterns_work() {
    let rules = RuleSet::parse("test.toml", FILE).expect("rules (RuleSet::parse)");
    let names = |e: &AlertEvent| {
        rules
            .decide(e)
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&event("alert", "ALARM", "Hall 2")),
        vec!["alarms-in-hall-sites", "log-everything"]
    );
    assert_eq!(
        names(&event("alert", "ALARM", "Site 1")),
        vec!["log-everything"]
    );
    assert_eq!(
        names(&event("alert", "HEALTHY", "Hall 2")),
        vec!["log-everything"]
    );
    let hall = rules
        .mapping_for(&event("alert", "ALARM", "Hall 2"))
        .map(|m| m.technical_object.clone());
    assert_eq!(hall.as_deref(), Some("FL-100-200"));
    let other = rules
        .mapping_for(&event("alert", "ALARM", "Site 9"))
        .map(|m| m.object_kind);
    assert_eq!(other, Some(ObjectKind::Equipment));
}

#[test]
fn patterns_match_exactly_by_prefix_by_suffix_or_anything() {
    let m = |p: &str, v: Option<&str>| Matcher::One(p.into()).matches(v);
    assert!(m("Pump 7", Some("Pump 7")) && !m("Pump 7", Some("Pump 70")));
    assert!(m("Pump*", Some("Pump 70")) && !m("Pump*", Some("A Pump")));
    assert!(m("*DE", Some("Motor DE")) && !m("*DE", Some("Motor NDE ")));
    assert!(m("*", None) && !m("x", None));
    assert!(Matcher::AnyOf(vec!["A".into(), "B".into()]).matches(Some("B")));
}

/// A file with one rule running action `act`, whose first step `a` logs, and a destination.
const ACTION: &str = "[[rule]]\nname = \"r\"\naction = \"act\"\n[destination.itsm]\nurl = \"https://itsm.example.com/api\"\n[[action]]\nname = \"act\"\n[[action.step]]\nname = \"a\"\ntype = \"log\"\n";

#[test]
fn mistakes_are_reported_precisely() {
    let cases = [
        (
            "[[rule]]\nname = \"a\"\nwhen = { sate = \"ALARM\" }\naction = \"log\"\n",
            "unknown field `sate`",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"explode\"\n",
            "action `explode` is neither built in",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"log\"\n[[rule]]\nname = \"a\"\naction = \"log\"\n",
            "rule 2 (`a`): the name is used twice",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"create_notification\"\n",
            "has no [[mapping]]",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"log\"\nparams = { priority = \"12\" }\n",
            "params.priority `12` is longer than the 1",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"log\"\n[[mapping]]\ntechnical_object = \"\"\nobject_kind = \"equipment\"\n",
            "technical_object is empty",
        ),
        ("hit_policy = \"some\"\n", "unknown variant `some`"),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"itsm\"\nmethod = \"POST\"\npath = \"/x\"\nbody = {{ n = \"${{{{steps.lookp.id}}}}\" }}\n"
            ),
            "step `b`: body: `steps.lookp.id` does not name a step that runs before this one",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"crm\"\nmethod = \"GET\"\npath = \"/x\"\n"
            ),
            "step `b`: there is no [destination.crm]",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"itsm\"\nmethod = \"GET\"\npath = \"/x/${{{{event.asset}}}}\"\n"
            ),
            "`event.asset`: an event has id, source, type, time, data",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"itsm\"\nmethod = \"GET\"\npath = \"/x/${{{{event.id\"\n"
            ),
            "is not closed",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"log\"\ndestination = \"itsm\"\n"
            ),
            "`destination` does not apply to a Log step",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"itsm\"\nmethod = \"GET\"\npath = \"/x\"\nbody_json = \"{{oops\"\n"
            ),
            "body_json is not JSON",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"log\"\n[destination.x]\nurl = \"https://x.example\"\nauth = \"basic\"\n",
            "auth Basic needs `secret`",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"log\"\n[destination.x]\nurl = \"http://crm.example\"\nauth = \"basic\"\nsecret = \"s\"\n",
            "credentials would travel in clear text",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"itsm\"\nmethod = \"GET\"\npath = \"/x\"\nheaders = {{ APIKey = \"k\" }}\n"
            ),
            "header APIKey carries credentials",
        ),
        (
            &format!(
                "{ACTION}[[action.step]]\nname = \"b\"\ntype = \"http\"\ndestination = \"itsm\"\nmethod = \"GET\"\npath = \"/x\"\nheaders = {{ \"X Source\" = \"k\" }}\n"
            ),
            "`X Source` is not a header name",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"log\"\nparams = { per = \"episode\" }\n",
            "params.per is for create_notification and close_notification",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"create_notification\"\nparams = { per = \"episode\", if_open = \"skip\" }\n[[mapping]]\ntechnical_object = \"1\"\nobject_kind = \"equipment\"\n",
            "with per = \"episode\" the episode decides",
        ),
        (
            "[[rule]]\nname = \"a\"\naction = \"create_notification\"\nparams = { per = \"alert\" }\n[[mapping]]\ntechnical_object = \"1\"\nobject_kind = \"equipment\"\n",
            "unknown variant `alert`",
        ),
        ("", "no [[rule]]"),
        ("[[rule]\n", "test.toml"),
    ];
    for (text, expected) in cases {
        match RuleSet::parse("test.toml", text) {
            Err(e) => assert!(e.to_string().contains(expected), "{text:?}: {e}"),
            Ok(_) => panic!("accepted: {text:?}"),
        }
    }
}

#[test]
fn closure_codes_map_monitron_values_to_catalog_codes_and_are_checked() {
    let text = format!(
        "{BUNDLED}\n[closure_codes.failure_mode]\nMISALIGNMENT = {{ group = \"PM-DAMG\", code = \"0010\" }}\n\
         [closure_codes.action_taken]\nADJUST = {{ group = \"PM-ACTY\", code = \"0030\" }}\n"
    );
    let rules = RuleSet::parse("codes", &text).expect("valid closure codes");
    let catalog = rules.closure_codes.for_closure(&serde_json::json!({
        "failureMode": "MISALIGNMENT", "failureCause": "MAINTENANCE", "actionTaken": "ADJUST"
    }));
    assert_eq!(
        catalog.damage,
        Some(CatalogCode {
            group: "PM-DAMG".into(),
            code: "0010".into()
        })
    );
    assert_eq!(catalog.cause, None, "not in the tables: long text only");
    assert_eq!(catalog.activity.map(|c| c.code), Some("0030".into()));
    assert!(
        rules
            .closure_codes
            .for_closure(&serde_json::json!({"failureMode": "OTHER"}))
            .is_empty()
    );
    let bad = format!(
        "{BUNDLED}\n[closure_codes.failure_cause]\nWEAR = {{ group = \"\", code = \"12345\" }}\n"
    );
    let problems = RuleSet::parse("bad", &bad).expect_err("refused").0;
    assert!(
        problems
            .iter()
            .any(|p| p
                .contains("closure_codes.failure_cause.WEAR: group and code must not be empty")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("code `12345` is longer than the 4")),
        "{problems:?}"
    );
    let typo = format!("{BUNDLED}\n[closure_codes.failure_mood]\n");
    assert!(
        RuleSet::parse("typo", &typo).is_err(),
        "unknown tables are refused"
    );
}
