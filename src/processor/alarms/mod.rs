//! Alarm management across positions (ISA-18.2 / IEC 62682 flood suppression; the settings are
//! the rule file's `[alarm_management]`, `docs/alarm-management.md`): what a site's record says,
//! as data, and when a site is in a storm. Pure: the record is read and written by
//! `episode::sites`, acted on by `episode::hold` (deliveries) and `schedule` (the tick).
//!
//! - [`site`]: a site's record: the positions that started episodes lately, the storm;
//! - [`storm`]: the storm notification's texts.

pub mod site;
pub mod storm;
