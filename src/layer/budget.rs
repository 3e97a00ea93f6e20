//! How many requests may pass unverified, marked degraded, while the service is down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// ```
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::DegradedBudget;
/// # let verifier = |_r: tower_aliyun_captcha::VerifyRequest| async {
/// #     Err::<tower_aliyun_captcha::Verification, _>(tower_aliyun_captcha::Error::other("x"))
/// # };
///
/// let layer = CaptchaLayer::builder(verifier, SceneId::new("login")?)
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
/// How often the rate of genuine passes is sampled.
const SAMPLE: Duration = Duration::from_secs(10);
/// How much each new sample moves the estimate: about the last minute counts.
const SMOOTHING: f64 = 0.2;

impl DegradedBudget {
    /// The default: degraded passes at the rate genuine passes came before the outage.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::DegradedBudget;
    ///
    /// assert_eq!(DegradedBudget::default(), DegradedBudget::adaptive());
    /// ```
    pub fn adaptive() -> Self {
        Self(Kind::Adaptive {
            floor: ADAPTIVE_FLOOR,
            burst: ADAPTIVE_BURST,
        })
    }

    /// At most `rate` degraded passes per second, and `burst` at once. A zero rate or burst is
    /// refused when the layer is built.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::DegradedBudget;
    ///
    /// let budget = DegradedBudget::per_second(10, 50);
    /// # let _ = budget;
    /// ```
    pub fn per_second(rate: u32, burst: u32) -> Self {
        Self(Kind::Fixed {
            rate: f64::from(rate),
            burst: f64::from(burst),
        })
    }

    /// No limit: every request passes degraded during an outage.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::DegradedBudget;
    ///
    /// let budget = DegradedBudget::unlimited();
    /// # let _ = budget;
    /// ```
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

/// The budget's state, shared by the services of one layer.
#[derive(Debug)]
pub(crate) struct Budget {
    kind: Kind,
    /// Genuine passes and outages since the layer was built; read at each sample.
    passes: AtomicU64,
    outages: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The estimated rate of genuine passes per second before the current outage.
    rate: f64,
    sampled_at: Instant,
    passes_then: u64,
    outages_then: u64,
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
            passes: AtomicU64::new(0),
            outages: AtomicU64::new(0),
            state: Mutex::new(State {
                rate: 0.0,
                sampled_at: now,
                passes_then: 0,
                outages_then: 0,
                tokens: burst,
                refilled_at: now,
            }),
        }
    }

    /// A person passed the captcha.
    pub(crate) fn genuine_pass(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// The service failed (an outage): samples taken while it fails do not count.
    pub(crate) fn outage(&self) {
        self.outages.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one degraded pass, if the budget has one left at `now`.
    pub(crate) fn take(&self, now: Instant) -> bool {
        let (floor, burst) = match self.kind {
            Kind::Unlimited => return true,
            Kind::Fixed { rate, burst } => (rate, burst),
            Kind::Adaptive { floor, burst } => (floor, burst),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(self.kind, Kind::Adaptive { .. }) {
            self.sample(&mut state, now);
        }
        let rate = match self.kind {
            Kind::Adaptive { .. } => state.rate.max(floor),
            _ => floor,
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

    /// Folds the passes since the last sample into the rate, unless the service failed in
    /// between: an outage must not teach the budget that nobody passes.
    fn sample(&self, state: &mut State, now: Instant) {
        let elapsed = now.saturating_duration_since(state.sampled_at);
        if elapsed < SAMPLE {
            return;
        }
        let passes = self.passes.load(Ordering::Relaxed);
        let outages = self.outages.load(Ordering::Relaxed);
        let clean = outages == state.outages_then;
        if clean {
            let observed = (passes - state.passes_then) as f64 / elapsed.as_secs_f64();
            // The first sample sets the estimate; later ones move it.
            state.rate = if state.passes_then == 0 && state.rate == 0.0 {
                observed
            } else {
                state.rate + SMOOTHING * (observed - state.rate)
            };
        }
        state.sampled_at = now;
        state.passes_then = passes;
        state.outages_then = outages;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes_in(budget: &Budget, start: Instant, seconds: u64, attempts_per_second: u64) -> u64 {
        let mut passed = 0;
        for tick in 0..seconds * attempts_per_second {
            let at = start + Duration::from_millis(tick * 1000 / attempts_per_second);
            budget.outage();
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
            for _ in 0..50 {
                budget.genuine_pass();
            }
            // Something asks the budget now and then, which samples the rate.
            if second % 10 == 0 {
                let _ = budget.take(start + Duration::from_secs(second));
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
    fn unlimited_is_unlimited() {
        let start = Instant::now();
        let budget = Budget::new(DegradedBudget::unlimited(), start);
        assert_eq!(passes_in(&budget, start, 1, 500), 500);
    }
}
