//! What the services of one layer share, apart from the layer that builds it.

use std::sync::Arc;

use super::alarms::Alarms;
use super::budget::Budget;
use super::decision::Rules;
use super::observe::Hook;
use super::routes::Table;
use crate::extract::{BodyLimits, ParamSource};

/// What the services of one layer (and its clones) share: the verifier, the routes, the rules,
/// the degraded budget and the alarms.
pub(crate) struct Shared<V, R> {
    pub(crate) verifier: V,
    pub(crate) extractor: ParamSource,
    pub(crate) table: Table,
    pub(crate) rules: Rules,
    pub(crate) responder: R,
    pub(crate) limits: BodyLimits,
    pub(crate) budget: Arc<Budget>,
    pub(crate) alarms: Arc<Alarms>,
    pub(crate) hook: Option<Hook>,
}
