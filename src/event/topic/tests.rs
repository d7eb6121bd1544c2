use super::*;

fn render(template: &str, values: &[(&str, &str)]) -> String {
    let template = match TopicTemplate::parse(template) {
        Ok(t) => t,
        Err(e) => panic!("{template}: {e}"),
    };
    template.render(|name| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
}

const NAMES: [(&str, &str); 6] = [
    ("category", "asset"),
    ("kind", "alert"),
    ("state", "ALARM"),
    ("project", "Plant A"),
    ("site", "Site 1"),
    ("asset", "Pump 7"),
];

#[test]
fn the_default_template_has_levels_for_state_project_site_asset_position() {
    let mut values = NAMES.to_vec();
    values.push(("position", "Motor DE"));
    assert_eq!(
        render(DEFAULT_TOPIC_TEMPLATE, &values),
        "monitron/asset/alert/ALARM/Plant A/Site 1/Pump 7/Motor DE"
    );
}

#[test]
fn a_slash_in_a_name_never_makes_a_level() {
    let topic = render(
        "m/{site}/{asset}",
        &[("site", "Hall 2/North"), ("asset", "Fan A/B/C")],
    );
    assert_eq!(topic, "m/Hall 2_North/Fan A_B_C");
    assert_eq!(topic.split('/').count(), 3);
}

#[test]
fn missing_and_empty_names_never_make_an_empty_level() {
    assert_eq!(render("m/{site}/{asset}/x", &[("site", "")]), "m/_/_/x");
}

#[test]
fn wildcards_never_stand_alone_in_a_level() {
    let topic = render(
        "m/{site}/{asset}/{position}",
        &[("site", "*"), ("asset", ">"), ("position", "a*")],
    );
    assert_eq!(topic, "m/_/_/a*");
}

#[test]
fn a_topic_never_starts_with_a_reserved_character() {
    assert_eq!(
        render("{site}/x", &[("site", "!important")]),
        "_important/x"
    );
    assert_eq!(render("{site}/x", &[("site", "#P2P")]), "_P2P/x");
}

#[test]
fn control_characters_are_replaced() {
    assert_eq!(
        render("m/{site}", &[("site", "a\u{0}b\tc\nd")]),
        "m/a_b_c_d"
    );
}

#[test]
fn non_ascii_names_survive() {
    let topic = render(
        "m/{site}/{asset}",
        &[("site", "Werk Süd"), ("asset", "泵 7 ✓")],
    );
    assert_eq!(topic, "m/Werk Süd/泵 7 ✓");
}

#[test]
fn long_names_are_shortened_to_250_bytes_on_character_boundaries() {
    let long_site = "ü".repeat(200); // 400 bytes
    let long_asset = "a".repeat(180);
    let topic = render(
        "monitron/{site}/{asset}/{position}",
        &[
            ("site", &long_site),
            ("asset", &long_asset),
            ("position", "Motor DE"),
        ],
    );
    assert!(topic.len() <= MAX_TOPIC_BYTES, "{} bytes", topic.len());
    assert!(
        topic.len() >= MAX_TOPIC_BYTES - 1,
        "no more is cut than needed: {}",
        topic.len()
    );
    let levels: Vec<&str> = topic.split('/').collect();
    assert_eq!(levels.len(), 4);
    assert_eq!(levels[0], "monitron");
    assert_eq!(levels[3], "Motor DE", "short names are kept whole");
    assert!(levels[1].chars().all(|c| c == 'ü') && !levels[1].is_empty());
    assert!(levels[2].chars().all(|c| c == 'a') && !levels[2].is_empty());
}

#[test]
fn many_multibyte_names_still_fit() {
    let wide = "𝄞".repeat(100);
    let values: Vec<(&str, &str)> = ["site", "asset", "position", "project", "state"]
        .iter()
        .map(|n| (*n, wide.as_str()))
        .collect();
    let topic = render("{site}/{asset}/{position}/{project}/{state}", &values);
    assert!(topic.len() <= MAX_TOPIC_BYTES);
    assert!(topic.split('/').all(|l| !l.is_empty()));
}

#[test]
fn invalid_templates_are_refused_with_the_reason() {
    for (template, reason) in [
        ("", "empty"),
        ("a//b", "level 2 is empty"),
        ("a/", "level 2 is empty"),
        ("a/*/b", "lone `*`"),
        ("a/>", "lone `>`"),
        ("!a/b", "reserves"),
        ("#a", "reserves"),
        ("a/{nope}", "unknown placeholder `{nope}`"),
        ("a/{site", "no `}`"),
        ("a/site}", "no `{`"),
        ("a/b\tc", "control character"),
    ] {
        match TopicTemplate::parse(template) {
            Err(e) => assert!(e.to_string().contains(reason), "{template}: {e}"),
            Ok(_) => panic!("{template} was accepted"),
        }
    }
    let too_long = format!("{}/{{site}}", "x".repeat(249));
    assert!(TopicTemplate::parse(&too_long).is_err());
    let too_deep = vec!["a"; 129].join("/");
    assert!(TopicTemplate::parse(&too_deep).is_err());
}

#[test]
fn literal_text_and_placeholders_mix_in_a_level() {
    assert_eq!(
        render("site-{site}/{kind}.{state}", &NAMES),
        "site-Site 1/alert.ALARM"
    );
}
