//! The names and ids of a record, whichever schema it follows.

use serde_json::value::RawValue;

use crate::monitron::{Change, DeviceKind, Payload, Record, Schema};

/// What a record says about where it comes from: v1's `*DisplayName` fields and v2's
/// `projectName` + `eventPayload.{siteName,assetName,positionName}` under one set of names.
#[derive(Debug, Clone, Default)]
pub struct Names<'r> {
    pub project: Option<&'r str>,
    pub site: Option<&'r str>,
    pub asset: Option<&'r str>,
    pub position: Option<&'r str>,
    pub account_id: Option<&'r str>,
    pub project_id: Option<&'r str>,
    pub sensor_id: Option<&'r str>,
    pub gateway_id: Option<&'r str>,
    pub gateway_name: Option<&'r str>,
    pub asset_position_id: Option<&'r str>,
    pub asset_position_url: Option<&'r str>,
    /// v2 `assetTransitionType`.
    pub transition: Option<&'r str>,
    /// v2 `closureCode`, when present (not `null`), as written.
    pub closure_code: Option<&'r RawValue>,
    /// v2 `eventType`.
    pub event_type: Option<&'r str>,
}

impl<'r> Names<'r> {
    /// The names of a record; `payload` is its parsed `eventPayload` (v2).
    pub fn of(record: &'r Record<'r>, payload: Option<&'r Payload<'r>>, schema: Schema) -> Self {
        match schema {
            Schema::V1 => Names {
                project: record.project_display_name.as_str(),
                site: record.site_display_name.as_str(),
                asset: record.asset_display_name.as_str(),
                position: record.sensor_position_display_name.as_str(),
                sensor_id: record.sensor.get().and_then(|d| d.physical_id.as_str()),
                gateway_id: record.gateway.get().and_then(|d| d.physical_id.as_str()),
                ..Names::default()
            },
            Schema::V2 => {
                let field = |pick: fn(&'r Payload<'r>) -> Option<&'r str>| payload.and_then(pick);
                Names {
                    project: record.project_name.as_str(),
                    site: field(|p| p.site_name.as_str()),
                    asset: field(|p| p.asset_name.as_str()),
                    position: field(|p| p.position_name.as_str()),
                    account_id: record.account_id.as_str(),
                    project_id: record.project_id.as_str(),
                    sensor_id: field(|p| p.sensor.get().and_then(|d| d.physical_id.as_str())),
                    gateway_id: field(|p| p.gateway.get().and_then(|d| d.physical_id.as_str())),
                    gateway_name: field(|p| p.gateway_name.as_str()),
                    asset_position_id: field(|p| p.asset_position_id.as_str()),
                    asset_position_url: field(|p| p.asset_position_url.as_str()),
                    transition: field(|p| p.asset_transition_type.as_str()),
                    closure_code: payload.and_then(|p| p.closure_code),
                    event_type: record.event_type.as_str(),
                }
            }
        }
    }

    /// The CloudEvents `subject`: `<site>/<asset>/<position>` (`<site>/<gateway>` for gateways),
    /// of the parts the record has; `None` when it has none.
    pub fn subject(&self) -> Option<String> {
        let parts: Vec<&str> = if self.gateway_name.is_some() && self.asset.is_none() {
            [self.site, self.gateway_name]
                .into_iter()
                .flatten()
                .collect()
        } else {
            [self.site, self.asset, self.position]
                .into_iter()
                .flatten()
                .collect()
        };
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// The value of a topic placeholder (see [`super::topic::PLACEHOLDERS`]).
    pub fn placeholder(&self, name: &str, schema: Schema, change: &Change<'r>) -> Option<&'r str> {
        match name {
            "category" => Some(match change {
                Change::AssetState { .. } => "asset",
                Change::Model { .. } => "model",
                Change::Connectivity {
                    device: DeviceKind::Sensor,
                    ..
                } => "sensor",
                Change::Connectivity {
                    device: DeviceKind::Gateway,
                    ..
                } => "gateway",
            }),
            "kind" => Some(match change {
                Change::Connectivity {
                    connected: true, ..
                } => "connected",
                Change::Connectivity { .. } => "disconnected",
                _ if change.is_alert() => "alert",
                _ => "recovered",
            }),
            "state" => match change {
                Change::AssetState { new, .. } => Some(new),
                Change::Model { changes } => changes.first().and_then(|c| c.new.as_str()),
                Change::Connectivity {
                    connected: true, ..
                } => Some("CONNECTED"),
                Change::Connectivity { .. } => Some("DISCONNECTED"),
            },
            "previousState" => match change {
                Change::AssetState { previous, .. } => *previous,
                Change::Model { changes } => changes.first().and_then(|c| c.previous.as_str()),
                Change::Connectivity { .. } => None,
            },
            "project" => self.project,
            "site" => self.site,
            "asset" => self.asset,
            "position" => self.position,
            "gateway" => self.gateway_name,
            "eventType" => match schema {
                Schema::V1 => Some("measurement"),
                Schema::V2 => self.event_type,
            },
            "schema" => Some(schema.as_str()),
            "accountId" => self.account_id,
            "projectId" => self.project_id,
            "sensorId" => self.sensor_id,
            "gatewayId" => self.gateway_id,
            _ => None,
        }
    }
}
