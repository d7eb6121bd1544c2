//! `e2b rules check` and `e2b rules test` as a user runs them.

use std::process::{Command, Output};

use e2b::processor::s4::Requests;

fn e2b(args: &[&str]) -> Output {
    e2b_with(args, &[])
}

fn e2b_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e2b"))
        .args(args)
        .env_remove("S4_BASE_URL")
        .env_remove("S4_SAP_CLIENT")
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the e2b binary runs")
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
    .expect("std::fs::write in the test set-up");
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
    // Per event, the requests of one event's actions (episodes: the test after this one).
    let per_event = std::env::temp_dir().join(format!("per-event-{}.toml", std::process::id()));
    std::fs::write(
        &per_event,
        e2b::processor::rules::BUNDLED.replace("params = { ", "params = { per = \"event\", "),
    )
    .expect("write the per-event rules");
    let per_event = per_event.to_string_lossy().to_string();
    let output = e2b(&[
        "rules",
        "test",
        &per_event,
        "events/deliveries/alarm.cloudevent.json",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let out = text(&output);
    assert!(out.contains("rule `alarm`: create_notification"), "{out}");
    assert!(
        out.contains("\"NotificationText\": \"Monitron ALARM: Pump 7 / Motor DE\""),
        "{out}"
    );

    // What is printed is what the client sends: the real request builders, sap-client included.
    let configured = e2b_with(
        &[
            "rules",
            "test",
            &per_event,
            "events/deliveries/alarm.cloudevent.json",
        ],
        &[
            ("S4_BASE_URL", "https://s4.plant.example:44300"),
            ("S4_SAP_CLIENT", "100"),
        ],
    );
    let out = text(&configured);
    let reference = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("\"MaintNotifExtReferenceNumber\": \"")
        })
        .map(|rest| rest.trim_end_matches([',', '"']).to_string())
        .expect("the create body names its external reference");
    let requests = Requests::for_service(
        reqwest::Url::parse(
            "https://s4.plant.example:44300/sap/opu/odata/sap/API_MAINTNOTIFICATION",
        )
        .expect("a service URL"),
        Some("100".into()),
    );
    let lookup = requests
        .find_by_reference(&reference)
        .expect("a lookup request");
    for line in lookup.describe().lines() {
        assert!(out.contains(&format!("    {line}")), "{line} in {out}");
    }
    assert!(
        lookup.url.as_str().contains("$select=") && lookup.url.as_str().contains("sap-client=100")
    );
    let create_line = format!(
        "    POST {}",
        requests.url("/MaintenanceNotification").expect("a URL")
    );
    assert!(out.contains(&create_line), "{create_line} in {out}");
    assert!(
        out.contains("    x-csrf-token: <fetched once with x-csrf-token: Fetch>"),
        "{out}"
    );

    let closure = e2b(&[
        "rules",
        "test",
        &per_event,
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
    let placeholder = Requests::for_service(
        reqwest::Url::parse("https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION")
            .expect("a service URL"),
        None,
    );
    let complete = placeholder
        .complete("NOTIFICATION", None)
        .expect("a complete request");
    let complete_line = format!("    POST {}", complete.url);
    assert!(
        closure.contains(
            complete_line
                .split("&MaintNotifReferenceDateTime")
                .next()
                .unwrap_or_default()
        ),
        "{complete_line} in {closure}"
    );
    assert!(closure.contains("    If-Match: *"), "{closure}");
    assert!(
        !closure.contains("POST https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION/MaintenanceNotification\n"),
        "a closure creates nothing"
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

#[test]
fn rules_test_shows_the_episode_decision_given_the_events_before() {
    let alone = e2b(&[
        "rules",
        "test",
        "bundled",
        "events/deliveries/closure.cloudevent.json",
    ]);
    assert!(alone.status.success(), "{}", text(&alone));
    assert!(
        text(&alone).contains("episode: none open; the recovery is kept"),
        "{}",
        text(&alone)
    );
    let after = e2b(&[
        "rules",
        "test",
        "bundled",
        "events/deliveries/closure.cloudevent.json",
        "--after",
        "events/deliveries/alarm.cloudevent.json",
    ]);
    let out = text(&after);
    assert!(after.status.success(), "{out}");
    for expected in [
        "episode of Site 1 / Pump 7 / Motor DE (2 event(s)): e-200, e-201",
        "→ the episode's notification NOTIFICATION",
        "→ add the line: 2024-03-02 10:30:00 UTC NEEDS_MAINTENANCE -> HEALTHY, closed in Monitron.",
        "then complete it at 2024-03-02T10:30:00+00:00",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    let alert = e2b(&[
        "rules",
        "test",
        "bundled",
        "events/deliveries/alarm.cloudevent.json",
    ]);
    assert!(
        text(&alert).contains("→ create a notification from e-200: \"Monitron ALARM: Pump 7 / Motor DE\", type M2, priority 1"),
        "{}",
        text(&alert)
    );
}

/// Issue 28: a new episode while the notification is open joins it, and `e2b rules test`
/// says so, with the read of S/4 that comes first and the `MERGE`.
#[test]
fn rules_test_shows_a_return_joining_the_open_notification() {
    let alarm = include_str!("../../events/deliveries/alarm.cloudevent.json");
    let dir = std::env::temp_dir().join(format!("e2b-rules-join-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("a temporary file");
        path.display().to_string()
    };
    let recovery = write(
        "recovery.json",
        alarm
            .replace("\"e-200\"", "\"e-210\"")
            .replace("2024-03-01T09:00:01.500Z", "2024-03-01T09:30:00Z")
            .replace("asset.alert", "asset.recovered")
            .replace(
                "\"state\":{\"new\":\"ALARM\",\"previous\":\"WARNING\"}",
                "\"state\":{\"new\":\"HEALTHY\",\"previous\":\"ALARM\"}",
            ),
    );
    let warning = write(
        "warning.json",
        alarm
            .replace("\"e-200\"", "\"e-220\"")
            .replace("2024-03-01T09:00:01.500Z", "2024-03-01T10:00:00Z")
            .replace(
                "\"state\":{\"new\":\"ALARM\",\"previous\":\"WARNING\"}",
                "\"state\":{\"new\":\"WARNING\",\"previous\":\"HEALTHY\"}",
            ),
    );
    let out = e2b(&[
        "rules",
        "test",
        "bundled",
        &warning,
        "--after",
        "events/deliveries/alarm.cloudevent.json",
        "--after",
        &recovery,
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for expected in [
        "→ a new episode joins the open notification NOTIFICATION (one open notification per position): S/4 is read first",
        "MaintNotifExtReferenceNumber",
        "→ add the line: Returned to alert after the recovery of 2024-03-01 09:30:00 UTC (2nd time since 2024-03-01 09:00 UTC); Monitron event: e-210 returned",
        "→ add the line: 2024-03-01 10:00:00 UTC HEALTHY -> WARNING; Monitron event: e-220",
        "MERGE",
    ] {
        assert!(said.contains(expected), "{expected}: {said}");
    }
    assert!(
        !said.contains("→ raise the priority") && !said.contains("→ take the short text"),
        "the alarm's priority 1 and text stay: {said}"
    );
}

/// `[alarm_management]` (issue 30): `e2b rules check` says what the settings mean, and names
/// what is out of bounds.
#[test]
fn rules_check_says_what_alarm_management_does_and_refuses_what_is_out_of_bounds() {
    let path = std::env::temp_dir().join(format!("e2b-alarms-{}.toml", std::process::id()));
    let bundled = e2b::processor::rules::BUNDLED;
    std::fs::write(
        &path,
        format!("{bundled}\n[alarm_management]\non_delay = \"45s\"\nstorm_positions = 20\nstorm_quiet = \"30s\"\n"),
    )
    .expect("std::fs::write in the test set-up");
    let output = e2b(&["rules", "check", &path.to_string_lossy()]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains(
            "on-delay: a new episode's notification is created 45s after its first delivery"
        ) && out.contains(
            "storms: 20 positions of one site starting episodes within 1m (Monitron event time)"
        ) && out
            .contains("it ends 30s after its last new episode, at the latest 1h after it began"),
        "{out}"
    );
    let off = e2b(&["rules", "check", "bundled"]);
    assert!(text(&off).contains("on-delay: off") && text(&off).contains("storms: off"));
    std::fs::write(
        &path,
        format!("{bundled}\n[alarm_management]\non_delay = \"2h\"\nstorm_positions = 1\nstorm_quiet = \"2h\"\nstorm_max = \"1h\"\nstorm_window = \"60\"\n"),
    )
    .expect("std::fs::write in the test set-up");
    let output = e2b(&["rules", "check", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("\"60\" has no unit"),
        "{}",
        text(&output)
    );
    std::fs::write(
        &path,
        format!("{bundled}\n[alarm_management]\non_delay = \"2h\"\nstorm_positions = 1\nstorm_quiet = \"2h\"\nstorm_max = \"1h\"\n"),
    )
    .expect("std::fs::write in the test set-up");
    let output = e2b(&["rules", "check", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1));
    for problem in [
        "alarm_management.on_delay = \"2h\" is outside 0s to 1h",
        "alarm_management.storm_positions = 1 must be 0 (off) or 2 to 10000",
        "alarm_management.storm_quiet (\"2h\") must be at most storm_max (\"1h\")",
    ] {
        assert!(out.contains(problem), "{problem}: {out}");
    }
}
