//! How many requests may pass unverified, marked degraded, while the service is down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A limit on degraded passes: during an outage, a flood of bots must not ride in.
///
/// - [`adaptive`](Self::adaptive), the default: as many degraded passes per second as there
///   were genuine passes per second before the outage (averaged over the minutes before it),
///   at least one per second, with a burst of ten.
/// - [`per_second`](Self::per_second): a fixed rate and burst.
/// - [`unlimited`](Self::unlimited): every request passes degraded during an outage, as
///   Alibaba's document has it. A flood gets in too.
///
/// Past the budget, the request is answered 503, as under [`FailurePolicy::Closed`].
///
/// Layers that verify with one [`Client`](crate::Client) (or its clones) and the same setting
/// share one budget: sixteen protected routes let no more in than one would.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{DegradedBudget, Route};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let layer = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("login")?))
///     .degraded_budget(DegradedBudget::per_second(5, 20))
///     .build()?;
/// # let _ = layer;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// [`FailurePolicy::Closed`]: super::FailurePolicy::Closed
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegradedBudget(Kind);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Adaptive { floor: f64, burst: f64 },
    Fixed { rate: f64, burst: f64 },
    Unlimited,
}

/// The smallest rate of degraded passes the adaptive budget allows, per second.
const ADAPTIVE_FLOOR: f64 = 1.0;
/// The adaptive budget's burst.
const ADAPTIVE_BURST: f64 = 10.0;
/// The length of the buckets genuine passes are counted in.
const BUCKET: Duration = Duration::from_secs(10);
/// How much each bucket moves the estimate: about the last minute counts.
const SMOOTHING: f64 = 0.2;
/// Past this many empty buckets the estimate has decayed to nothing worth counting.
const FORGOTTEN: u32 = 60;

impl DegradedBudget {
    /// The default: degraded passes at the rate genuine passes came before the outage (at
    /// least one per second, with a burst of ten).
    pub fn adaptive() -> Self {
        Self(Kind::Adaptive {
            floor: ADAPTIVE_FLOOR,
            burst: ADAPTIVE_BURST,
        })
    }

    /// At most `rate` degraded passes per second, and `burst` at once. A zero rate or burst is
    /// refused when the layer is built.
    pub fn per_second(rate: u32, burst: u32) -> Self {
        Self(Kind::Fixed {
            rate: f64::from(rate),
            burst: f64::from(burst),
        })
    }

    /// No limit: every request passes degraded during an outage.
    pub fn unlimited() -> Self {
        Self(Kind::Unlimited)
    }

    pub(crate) fn is_valid(&self) -> bool {
        match self.0 {
            Kind::Fixed { rate, burst } => rate > 0.0 && burst > 0.0,
            Kind::Adaptive { .. } | Kind::Unlimited => true,
        }
    }
}

impl Default for DegradedBudget {
    fn default() -> Self {
        Self::adaptive()
    }
}

/// The degraded budgets of the layers that share one verifier, one per setting, so that an
/// app protecting many routes with one [`Client`](crate::Client) lets no more in during an
/// outage than one route would. A verifier hands it out through
/// [`Verify::shared_budgets`](crate::Verify::shared_budgets); the client does.
#[derive(Debug, Default)]
pub struct SharedBudgets(Mutex<Vec<(DegradedBudget, Arc<Budget>)>>);

impl SharedBudgets {
    /// The budget for `setting`, made on first use.
    pub(crate) fn get(&self, setting: DegradedBudget, now: Instant) -> Arc<Budget> {
        let mut budgets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, budget)) = budgets.iter().find(|(s, _)| *s == setting) {
            return Arc::clone(budget);
        }
        let budget = Arc::new(Budget::new(setting, now));
        budgets.push((setting, Arc::clone(&budget)));
        budget
    }
}

/// A budget's state: the rate of genuine passes, and the degraded passes left.
#[derive(Debug)]
pub(crate) struct Budget {
    kind: Kind,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The estimated rate of genuine passes per second, from the buckets before any outage.
    rate: f64,
    /// Whether a whole bucket has been counted yet (the first one sets the estimate).
    learned: bool,
    bucket_start: Instant,
    bucket_passes: u64,
    /// When the current outage began; `None` while the service answers.
    outage_since: Option<Instant>,
    tokens: f64,
    refilled_at: Instant,
}

impl Budget {
    pub(crate) fn new(budget: DegradedBudget, now: Instant) -> Self {
        let burst = match budget.0 {
            Kind::Adaptive { burst, .. } | Kind::Fixed { burst, .. } => burst,
            Kind::Unlimited => 0.0,
        };
        Self {
            kind: budget.0,
            state: Mutex::new(State {
                rate: 0.0,
                learned: false,
                bucket_start: now,
                bucket_passes: 0,
                outage_since: None,
                tokens: burst,
                refilled_at: now,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A person passed the captcha: the service answers again.
    pub(crate) fn genuine_pass(&self, now: Instant) {
        if !matches!(self.kind, Kind::Adaptive { .. }) {
            return;
        }
        let mut state = self.state();
        if state.outage_since.take().is_some() {
            // The buckets the outage spans would teach the budget that nobody passes.
            state.bucket_start = now;
            state.bucket_passes = 0;
        }
        state.fold(now);
        state.bucket_passes += 1;
    }

    /// The service failed (an outage).
    pub(crate) fn outage(&self, now: Instant) {
        let mut state = self.state();
        if state.outage_since.is_none() {
            state.fold(now);
            state.outage_since = Some(now);
        }
    }

    /// Takes one degraded pass, if the budget has one left at `now`.
    pub(crate) fn take(&self, now: Instant) -> bool {
        let (rate, burst) = match self.kind {
            Kind::Unlimited => return true,
            Kind::Fixed { rate, burst } => (rate, burst),
            Kind::Adaptive { floor, burst } => (floor, burst),
        };
        let mut state = self.state();
        let rate = match self.kind {
            Kind::Adaptive { .. } => state.rate.max(rate),
            _ => rate,
        };
        let capacity = burst.max(rate);
        let elapsed = now
            .saturating_duration_since(state.refilled_at)
            .as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(capacity);
        state.refilled_at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl State {
    /// Folds every whole bucket that ended by `now` into the rate; empty ones count as quiet
    /// time, so a rate learned in a busy hour fades when it is over.
    fn fold(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.bucket_start);
        let whole = (elapsed.as_nanos() / BUCKET.as_nanos()).min(u128::from(u32::MAX)) as u32;
        if whole == 0 {
            return;
        }
        let observed = self.bucket_passes as f64 / BUCKET.as_secs_f64();
        self.rate = if self.learned {
            self.rate + SMOOTHING * (observed - self.rate)
        } else {
            observed
        };
        self.learned = true;
        // The buckets after the first were empty.
        let empty = whole - 1;
        self.rate = if empty >= FORGOTTEN {
            0.0
        } else {
            self.rate * (1.0 - SMOOTHING).powi(empty as i32)
        };
        self.bucket_passes = 0;
        self.bucket_start += BUCKET * whole;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes_in(budget: &Budget, start: Instant, seconds: u64, attempts_per_second: u64) -> u64 {
        let mut passed = 0;
        for tick in 0..seconds * attempts_per_second {
            let at = start + Duration::from_millis(tick * 1000 / attempts_per_second);
            budget.outage(at);
            passed += u64::from(budget.take(at));
        }
        passed
    }

    #[test]
    fn a_fixed_budget_lets_its_rate_and_burst_through() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::per_second(5, 20), start);
        // 1,000 attempts a second for 10 s: the burst, then 5 a second.
        let passed = passes_in(&budget, start, 10, 1000);
        assert!((65..=71).contains(&passed), "{passed}");
    }

    #[test]
    fn the_adaptive_budget_follows_the_rate_before_the_outage() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::adaptive(), start);
        // Two minutes of 50 genuine passes a second, no outage.
        for second in 0..120 {
            for pass in 0..50 {
                budget.genuine_pass(start + Duration::from_millis(second * 1000 + pass * 20));
            }
        }
        // Then an outage and a flood of 1,000 attempts a second for 20 s.
        let outage = start + Duration::from_secs(120);
        let passed = passes_in(&budget, outage, 20, 1000);
        // About 50 a second (the estimate settles within a minute), never the flood.
        assert!((700..=1100).contains(&passed), "{passed}");
    }

    #[test]
    fn with_no_history_the_floor_and_burst_apply() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::adaptive(), start);
        let passed = passes_in(&budget, start, 30, 100);
        assert!((38..=41).contains(&passed), "{passed}");
    }

    #[test]
    fn twenty_passes_a_second_then_an_outage_let_about_twenty_a_second_through() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::adaptive(), start);
        // Fifteen seconds of 20 genuine passes a second: one whole bucket is learned.
        for tick in 0..15 * 20 {
            budget.genuine_pass(start + Duration::from_millis(tick * 50));
        }
        let outage = start + Duration::from_secs(15);
        let passed = passes_in(&budget, outage, 10, 1000);
        // A second's worth at once, then about 20 a second: not the floor's 1 a second.
        assert!((200..=225).contains(&passed), "{passed}");
    }

    #[test]
    fn a_rate_learned_in_a_busy_hour_fades_when_it_is_over() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::adaptive(), start);
        for tick in 0..60 * 50 {
            budget.genuine_pass(start + Duration::from_millis(tick * 20));
        }
        // An hour of nobody, then one person, then an outage: back to the floor.
        let later = start + Duration::from_secs(3660);
        budget.genuine_pass(later);
        let passed = passes_in(&budget, later + Duration::from_secs(1), 10, 1000);
        assert!((19..=21).contains(&passed), "{passed}");
    }

    #[test]
    fn an_outage_does_not_teach_the_budget_that_nobody_passes() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::adaptive(), start);
        for tick in 0..30 * 20 {
            budget.genuine_pass(start + Duration::from_millis(tick * 50));
        }
        // A minute-long outage with nobody passing, probed now and then...
        let outage = start + Duration::from_secs(30);
        let _ = passes_in(&budget, outage, 60, 2);
        // ...leaves the rate as it was before it: about 20 a second.
        let later = outage + Duration::from_secs(60);
        let passed = passes_in(&budget, later + Duration::from_secs(30), 10, 1000);
        assert!((200..=225).contains(&passed), "{passed}");
    }

    #[test]
    fn layers_with_one_verifier_share_one_budget_per_setting() {
        let now = Instant::now();
        let shared = SharedBudgets::default();
        let a = shared.get(DegradedBudget::adaptive(), now);
        let b = shared.get(DegradedBudget::adaptive(), now);
        let other = shared.get(DegradedBudget::per_second(1, 1), now);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
    }

    #[test]
    fn unlimited_is_unlimited() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::unlimited(), start);
        assert_eq!(passes_in(&budget, start, 1, 500), 500);
    }
}
