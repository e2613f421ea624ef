//! The store's series of `/metrics`, made afresh at each scrape from [`Tallies`]: executions
//! by state (a gauge), and per step type the attempts made and the steps that ended, by
//! outcome (counters: rows are never deleted, so they only grow).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use steppy_engine::store::Tallies;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    step_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    step_type: &'static str,
    outcome: &'static str,
}

/// A registry holding `tallies` as series.
pub fn registry(tallies: &Tallies) -> Registry {
    let executions = Family::<StateLabels, Gauge>::default();
    for (state, n) in &tallies.executions {
        executions
            .get_or_create(&StateLabels { state: state.as_str() })
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    let attempts = Family::<TypeLabels, Counter>::default();
    let outcomes = Family::<OutcomeLabels, Counter>::default();
    for t in &tallies.steps {
        let step_type = t.step_type.name();
        attempts.get_or_create(&TypeLabels { step_type }).inc_by(t.attempts);
        if t.state.is_terminal() {
            let labels = OutcomeLabels {
                step_type,
                outcome: t.state.as_str(),
            };
            outcomes.get_or_create(&labels).inc_by(t.steps);
        }
    }
    let mut registry = Registry::with_prefix("steppy");
    registry.register("executions", "Executions in the store, by state", executions);
    registry.register(
        "step_attempts",
        "Attempts started by the steps in the store, by step type",
        attempts,
    );
    registry.register(
        "step_outcomes",
        "Steps in the store that ended, by step type and outcome",
        outcomes,
    );
    registry
}
