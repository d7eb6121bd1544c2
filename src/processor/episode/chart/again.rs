//! A notification's chart tried again outside a delivery: by the schedule, for the positions
//! listed in the charts index, and by `e2b reprocess`, for a chart recorded as a failure. Both
//! lease the position as a delivery does, and save its record before they answer.

use std::time::{Duration, Instant};

use crate::processor::Processor;
use crate::processor::failures::FailureRecord;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::outcome::Outcome;

use super::super::model::PositionKey;
use super::super::state::{ChartAsk, PositionState};
use super::super::store::{EpisodeStore, Lease};
use super::Tried;

/// What leasing a position for its chart found.
enum Leased {
    Record(Box<PositionState>),
    /// No record, or one that cannot be read: there is no chart to try.
    Nothing(String),
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// Leases `position` for `owner` and reads its record; `Err` when it is busy or the table
    /// cannot be reached. Without a record the lease is given back.
    async fn lease_for_chart(&self, position: &str, owner: &str) -> Result<Leased, String> {
        let lease_for = self.settings.budget + Duration::from_secs(5);
        let json = match self.idempotency.lease(position, owner, lease_for).await {
            Ok(Lease::Taken {
                record: Some(json), ..
            }) => json,
            Ok(Lease::Taken { record: None, .. }) => {
                let _ = self.idempotency.give_back(position, owner).await;
                return Ok(Leased::Nothing(format!(
                    "sensor position {position} has no record"
                )));
            }
            Ok(Lease::Busy) => {
                return Err(format!("sensor position {position} is being processed"));
            }
            Err(e) => return Err(format!("sensor position {position} cannot be leased: {e}")),
        };
        match PositionState::read(&json) {
            Ok(state) => Ok(Leased::Record(Box::new(state))),
            Err(why) => {
                let _ = self.idempotency.give_back(position, owner).await;
                Ok(Leased::Nothing(format!(
                    "sensor position {position}'s record: {why}"
                )))
            }
        }
    }

    /// Saves the record and ends the lease (given back unwritten when it cannot be saved).
    async fn save_after_chart(
        &self,
        position: &str,
        owner: &str,
        state: &PositionState,
    ) -> Result<(), String> {
        match self
            .idempotency
            .save(position, owner, &state.to_json(), true)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.idempotency.give_back(position, owner).await;
                Err(format!("the record of {position} was not saved ({e})"))
            }
        }
    }

    /// Tries a recorded chart again (`e2b reprocess`): the position leased, one try. Attached,
    /// the record goes; not, it is kept (answered `Retry`) and no new one is written.
    pub async fn reattach(&self, record: &FailureRecord) -> Outcome {
        let field = |name: &str| {
            record
                .request
                .as_ref()
                .and_then(|r| r.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let (Some(position), Some(number)) = (field("position"), field("notification")) else {
            return Outcome::gave_up(
                "the chart's failure record names no position or notification",
            );
        };
        let Some(charts) = self.settings.charts.clone() else {
            return Outcome::Retry("S4_ATTACHMENTS is off: the chart is not attached".into());
        };
        let owner = format!("reattach#{:016x}", fastrand::u64(..));
        let mut state = match self.lease_for_chart(&position, &owner).await {
            Ok(Leased::Record(state)) => *state,
            Ok(Leased::Nothing(why)) | Err(why) => {
                return Outcome::Retry(format!("{why}; the chart is not attached"));
            }
        };
        let Some(index) = state.filed.iter().position(|f| f.number == number) else {
            let _ = self.idempotency.give_back(&position, &owner).await;
            return Outcome::Retry(format!(
                "notification {number} is not in the position's record"
            ));
        };
        let key = PositionKey(position.clone());
        let deadline = Instant::now() + self.settings.budget;
        let tried = self.try_chart(&charts, &state, index, &key, deadline).await;
        let outcome = match tried {
            Ok(Tried::Attached) => {
                state.filed[index].chart = ChartAsk::Attached;
                Outcome::Updated(number)
            }
            Ok(Tried::NoSeries) => {
                state.filed[index].chart = ChartAsk::NoSeries;
                Outcome::Skipped("no measurements kept: the long text says so".into())
            }
            Ok(Tried::Later(why) | Tried::Refused(why)) | Err(why) => {
                Outcome::Retry(format!("the chart is still not attached: {why}"))
            }
        };
        if let Err(e) = self.save_after_chart(&position, &owner, &state).await {
            tracing::warn!(%position, error = %e, "the position's record was not saved after reattaching");
        }
        outcome
    }

    /// Attaches the due charts of a position listed in the charts index (the schedule);
    /// `true` when none is left due (the position leaves the index).
    pub(crate) async fn attach_listed(
        &self,
        position: &str,
        deadline: Instant,
    ) -> Result<bool, String> {
        let owner = format!("charts#{:016x}", fastrand::u64(..));
        let mut state = match self.lease_for_chart(position, &owner).await? {
            Leased::Record(state) => *state,
            Leased::Nothing(why) => {
                tracing::info!(position, %why, "no chart to try: the position leaves the charts index");
                let _ = self.idempotency.chart_due(position, false).await;
                return Ok(true);
            }
        };
        let key = PositionKey(position.to_string());
        self.attach_due(&mut state, &key, deadline).await;
        self.save_after_chart(position, &owner, &state).await?;
        Ok(!state.filed.iter().any(|f| f.chart.is_due()))
    }
}
