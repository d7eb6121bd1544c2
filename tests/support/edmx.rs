//! The service's metadata (`API_MAINTNOTIFICATION.edmx`, beside this file, as S/4 publishes it
//! at `$metadata`), read for the test server: which properties an entity type has, their
//! maximum lengths, and which may be set on create.

/// One property of an entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub max_length: Option<usize>,
    /// `sap:creatable="false"` is absent.
    pub creatable: bool,
}

const EDMX: &str = include_str!("API_MAINTNOTIFICATION.edmx");

/// An attribute's value in a tag's text (which starts after the element's name).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = if tag.starts_with(&format!("{name}=\"")) {
        0
    } else {
        tag.find(&format!(" {name}=\""))? + 1
    };
    let start = at + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

/// The properties of an entity type (`MaintenanceNotificationItemType`, ...); empty when the
/// metadata has no such type.
pub fn properties(entity_type: &str) -> Vec<Property> {
    let Some(start) = EDMX.find(&format!("<EntityType Name=\"{entity_type}\"")) else {
        return Vec::new();
    };
    let end = EDMX[start..]
        .find("</EntityType>")
        .map_or(EDMX.len(), |e| start + e);
    EDMX[start..end]
        .split("<Property ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            Some(Property {
                name: attribute(tag, "Name")?.to_string(),
                max_length: attribute(tag, "MaxLength").and_then(|m| m.parse().ok()),
                creatable: attribute(tag, "sap:creatable") != Some("false"),
            })
        })
        .collect()
}

#[test]
fn the_metadata_is_read() {
    let item = properties("MaintenanceNotificationItemType");
    let group = item
        .iter()
        .find(|p| p.name == "MaintNotifDamageCodeGroup")
        .expect("the damage code group is a property of an item");
    assert_eq!((group.max_length, group.creatable), (Some(8), true));
    let name = item
        .iter()
        .find(|p| p.name == "MaintNotifDamageCodeGroupName")
        .expect("its name too");
    assert!(!name.creatable);
    assert!(properties("NoSuchType").is_empty());
}
