//! Counts over the whole store, for `/metrics`: executions by state, and steps by type and
//! state with their attempts. Read-only; two grouped queries on the materialized tables.

use super::{Store, StoreResult};
use crate::plan::StepType;
use crate::state::{ExecutionState, StepState};

/// Steps of one type in one state, and the attempts they made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTally {
    pub step_type: StepType,
    pub state: StepState,
    /// How many steps.
    pub steps: u64,
    /// Their attempts, summed (a step not started yet has made none).
    pub attempts: u64,
}

/// What the store holds, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tallies {
    /// Every execution state with its count (zero included), in a fixed order.
    pub executions: Vec<(ExecutionState, u64)>,
    /// Steps by type and state (only the pairs that occur).
    pub steps: Vec<StepTally>,
}

/// Every execution state, in the order `/metrics` lists them.
const EXECUTION_STATES: [ExecutionState; 5] = [
    ExecutionState::Pending,
    ExecutionState::Running,
    ExecutionState::Succeeded,
    ExecutionState::Failed,
    ExecutionState::Aborted,
];

impl Store {
    /// Counts executions by state and steps by type and state. Rows whose type or state this
    /// build does not know (a newer Steppy's) are left out.
    pub fn tallies(&self) -> StoreResult<Tallies> {
        let (counted, rows) = self.read(|conn| {
            let counted: Vec<(String, i64)> = conn
                .prepare_cached("SELECT state, COUNT(*) FROM executions GROUP BY state")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let rows: Vec<(String, String, i64, i64)> = conn
                .prepare_cached(
                    "SELECT type, state, COUNT(*), COALESCE(SUM(attempt), 0) FROM steps GROUP BY type, state",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok((counted, rows))
        })?;
        let executions = EXECUTION_STATES
            .iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (*s, u64::try_from(n).unwrap_or(0))
            })
            .collect();
        let steps = rows
            .into_iter()
            .filter_map(|(kind, state, steps, attempts)| {
                Some(StepTally {
                    step_type: StepType::from_name(&kind)?,
                    state: state.parse().ok()?,
                    steps: u64::try_from(steps).unwrap_or(0),
                    attempts: u64::try_from(attempts).unwrap_or(0),
                })
            })
            .collect();
        Ok(Tallies { executions, steps })
    }
}

#[cfg(test)]
mod tests {
    use crate::state::ExecutionState;
    use crate::store::Store;

    #[test]
    fn an_empty_store_counts_every_state_as_zero() {
        let store = Store::open_in_memory().expect("store");
        let t = store.tallies().expect("tallies");
        assert_eq!(t.executions.len(), 5);
        assert!(t.executions.iter().all(|(_, n)| *n == 0));
        assert!(t.executions.iter().any(|(s, _)| *s == ExecutionState::Aborted));
        assert!(t.steps.is_empty());
    }
}
