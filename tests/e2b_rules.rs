//! `e2b rules check` and `e2b rules test` as a user runs them.

use std::process::{Command, Output};

fn e2b(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e2b"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_bundled_and_shipped_files_check_clean() {
    for (file, summary) in [
        (
            "bundled",
            "valid: 6 rule(s), hit policy First, 1 mapping row(s)",
        ),
        (
            "rules/default.toml",
            "valid: 6 rule(s), hit policy First, 1 mapping row(s)",
        ),
        (
            "rules/sap-compatible.toml",
            "valid: 4 rule(s), hit policy First, 0 mapping row(s)",
        ),
    ] {
        let output = e2b(&["rules", "check", file]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(text(&output).contains(summary), "{}", text(&output));
    }
}

#[test]
fn a_typo_fails_the_check_with_its_place() {
    let path = std::env::temp_dir().join(format!("e2b-rules-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[rule]]\nname = \"a\"\nwhen = { new_sate = \"ALARM\" }\naction = \"log\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = e2b(&["rules", "check", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(
        out.contains("unknown field `new_sate`") && out.contains("line 3"),
        "{out}"
    );
}

#[test]
fn rules_test_shows_the_rows_and_the_exact_requests_without_sending() {
    let output = e2b(&[
        "rules",
        "test",
        "bundled",
        "events/deliveries/alarm.cloudevent.json",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let out = text(&output);
    assert!(out.contains("rule `alarm`: create_notification"), "{out}");
    assert!(out.contains("GET /sap/opu/odata/sap/API_MAINTNOTIFICATION/MaintenanceNotification?$filter=MaintNotifExtReferenceNumber eq 'MON"), "{out}");
    assert!(
        out.contains("POST /sap/opu/odata/sap/API_MAINTNOTIFICATION/MaintenanceNotification"),
        "{out}"
    );
    assert!(
        out.contains("\"NotificationText\": \"Monitron ALARM: Pump 7 / Motor DE\""),
        "{out}"
    );

    let closure = e2b(&[
        "rules",
        "test",
        "bundled",
        "events/deliveries/closure.cloudevent.json",
    ]);
    let closure = text(&closure);
    assert!(
        closure.contains("rule `closed-by-user`: close_notification"),
        "{closure}"
    );
    assert!(
        closure.contains(
            "Closure code: failure mode MISALIGNMENT, cause MAINTENANCE, action taken ADJUST"
        ),
        "{closure}"
    );
    assert!(
        closure.contains("POST /sap/opu/odata/sap/API_MAINTNOTIFICATION/CompleteMaintNotification?MaintenanceNotification='<number>'"),
        "{closure}"
    );
    assert!(
        !closure
            .contains("POST /sap/opu/odata/sap/API_MAINTNOTIFICATION/MaintenanceNotification\n")
    );

    let sbpa = text(&e2b(&[
        "rules",
        "test",
        "rules/sap-compatible.toml",
        "events/deliveries/alarm.cloudevent.json",
    ]));
    assert!(
        sbpa.contains("POST https://spa-api-gateway.cfapps.eu10.hana.ondemand.com/public/rule/runtime/rest/v2/rule-services"),
        "{sbpa}"
    );
    assert!(sbpa.contains("\"DeviceType\": \"Pump 7\""), "{sbpa}");

    let envelope = e2b(&[
        "rules",
        "test",
        "bundled",
        "events/deliveries/sap-envelope.json",
    ]);
    assert!(
        text(&envelope).contains("rule `needs-maintenance`"),
        "{}",
        text(&envelope)
    );

    let junk = e2b(&["rules", "test", "bundled", "Cargo.toml"]);
    assert_eq!(junk.status.code(), Some(1));
    assert!(text(&junk).contains("would answer 400"));
}
