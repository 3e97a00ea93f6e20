//! Whether a request without a captcha may go through on a `WhenRisky` route: a pure function
//! of the failure counts the store gave (or its failure to give them) and the thresholds.

use std::fmt;
use std::time::Duration;

use super::key::Windows;
use super::store::{Counts, StoreError};
use super::window::Window;

/// How many failures within how long raise one signal: the captcha is required once the
/// sliding count reaches `failures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    failures: u32,
    window: Window,
}

/// The longest window a signal may have: beyond a day it is a ban list, not a risk signal, and
/// a store would keep every key for two days.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

impl Limit {
    /// `failures` (at least one) within `window` (a second to a day).
    pub(crate) fn new(failures: u32, window: Duration) -> Result<Self, ThresholdError> {
        if failures == 0 {
            return Err(ThresholdError::ZeroFailures);
        }
        if window > MAX_WINDOW {
            return Err(ThresholdError::Window(window));
        }
        let window = Window::new(window).ok_or(ThresholdError::Window(window))?;
        Ok(Self { failures, window })
    }

    /// For constants only (evaluated at compile time).
    const fn of(failures: u32, secs: u64) -> Self {
        match Window::from_secs(secs) {
            Some(window) => Self { failures, window },
            None => panic!("a constant limit has a window of a second or more"),
        }
    }

    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    #[cfg(test)]
    pub(crate) fn window(&self) -> Window {
        self.window
    }

    fn reached(&self, count: u64) -> bool {
        count >= u64::from(self.failures)
    }
}

/// A limit that cannot be: no failures, or a window under a second or over a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThresholdError {
    ZeroFailures,
    Window(Duration),
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroFailures => f.write_str(
                "a risk limit needs at least one failure (to always ask for the captcha, \
                 protect the route with Always)",
            ),
            Self::Window(w) => write!(
                f,
                "a risk window must be between one second and one day, not {w:?}"
            ),
        }
    }
}

impl std::error::Error for ThresholdError {}

/// The three limits of a `WhenRisky` route.
///
/// The defaults (issue 24's):
/// - **3 failures per account in 15 minutes**, **10 per client address (IPv6: per /64) in 15
///   minutes**: guessing at one account, or from one address, meets the captcha within a
///   handful of tries. The answer is a captcha, not a lockout, so the limits can be this low:
///   someone who mistypes twice never sees one, and a victim is never locked out by an
///   attacker.
/// - **30 failures per minute across the route**: credential stuffing spreads over many
///   addresses and accounts, each below its own limit, and shows only in the route's total.
///   Thirty a minute is one failure every two seconds, which a small or medium site's typing
///   mistakes do not reach and a stuffing run (hundreds to thousands a minute) passes within
///   seconds. Past it everyone gets the captcha, which is only what `Always` gives every
///   day, and it calms down a minute or two after the run stops. A site whose honest failures
///   exceed it raises it: the `global` reason in the metrics shows how often it trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    pub(crate) account: Limit,
    pub(crate) ip: Limit,
    pub(crate) global: Limit,
}

// Constants, so that `Limit::of` runs at compile time: a bad one fails the build.
const DEFAULT_ACCOUNT: Limit = Limit::of(3, 15 * 60);
const DEFAULT_IP: Limit = Limit::of(10, 15 * 60);
const DEFAULT_GLOBAL: Limit = Limit::of(30, 60);

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            account: DEFAULT_ACCOUNT,
            ip: DEFAULT_IP,
            global: DEFAULT_GLOBAL,
        }
    }
}

impl Thresholds {
    /// The windows the store counts in.
    pub(crate) fn windows(&self) -> Windows {
        Windows {
            account: self.account.window,
            ip: self.ip.window,
            global: self.global.window,
        }
    }
}

/// What a request without a captcha meets on a `WhenRisky` route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Every signal is below its limit: it goes through.
    NotRequired,
    /// The captcha is required (403 `captcha_required`), for this reason.
    Required(Raised),
}

/// What raised the requirement. When several signals are up, the most specific is named:
/// account, then address, then the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raised {
    /// The account's failures reached its limit.
    Account,
    /// The client address's failures reached its limit.
    Ip,
    /// The route's failures reached its limit, or the store had to drop live counts to stay
    /// within its bound (a spray that large is an attack on the route).
    Global,
    /// The store did not answer in time, or failed: without counts, the captcha is required.
    StoreDown,
}

impl Need {
    #[cfg(test)]
    pub(crate) fn is_required(self) -> bool {
        matches!(self, Self::Required(_))
    }

    /// The `reason` label of the metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::Required(Raised::Account) => "account",
            Self::Required(Raised::Ip) => "ip",
            Self::Required(Raised::Global) => "global",
            Self::Required(Raised::StoreDown) => "store_down",
        }
    }
}

/// The requirement for a request whose counts are `counts` (or whose store failed).
pub(crate) fn requirement(counts: Result<&Counts, &StoreError>, thresholds: &Thresholds) -> Need {
    let Ok(counts) = counts else {
        return Need::Required(Raised::StoreDown);
    };
    if thresholds.account.reached(counts.account) {
        Need::Required(Raised::Account)
    } else if thresholds.ip.reached(counts.ip) {
        Need::Required(Raised::Ip)
    } else if thresholds.global.reached(counts.global) || counts.evicted {
        Need::Required(Raised::Global)
    } else {
        Need::NotRequired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(account: u64, ip: u64, global: u64) -> Counts {
        Counts {
            account,
            ip,
            global,
            evicted: false,
        }
    }

    #[test]
    fn every_signal_against_the_limits() {
        use Raised::*;
        let defaults = Thresholds::default();
        let strict = Thresholds {
            account: Limit::new(1, Duration::from_secs(60)).unwrap(),
            ip: Limit::new(1, Duration::from_secs(60)).unwrap(),
            global: Limit::new(1, Duration::from_secs(60)).unwrap(),
        };
        let evicted = Counts {
            evicted: true,
            ..counts(0, 0, 0)
        };
        let down = StoreError::timeout(Duration::from_millis(50));
        let not = Need::NotRequired;
        let req = Need::Required;
        // (counts or the store's error, thresholds, requirement)
        let rows: [(Result<Counts, StoreError>, Thresholds, Need); 17] = [
            (Ok(counts(0, 0, 0)), defaults, not),
            // Just under each limit: through.
            (Ok(counts(2, 9, 29)), defaults, not),
            // At a limit: required, for that reason.
            (Ok(counts(3, 0, 0)), defaults, req(Account)),
            (Ok(counts(0, 10, 0)), defaults, req(Ip)),
            (Ok(counts(0, 0, 30)), defaults, req(Global)),
            (Ok(counts(u64::MAX, 0, 0)), defaults, req(Account)),
            // Several up: the most specific is named.
            (Ok(counts(3, 10, 30)), defaults, req(Account)),
            (Ok(counts(2, 10, 30)), defaults, req(Ip)),
            (Ok(counts(2, 9, 30)), defaults, req(Global)),
            // Live counts dropped under a spray: the route asks everyone.
            (Ok(evicted), defaults, req(Global)),
            (
                Ok(Counts {
                    evicted: true,
                    ..counts(3, 0, 0)
                }),
                defaults,
                req(Account),
            ),
            // No counts: required, whatever the thresholds.
            (Err(down.clone()), defaults, req(StoreDown)),
            (
                Err(StoreError::unavailable("refused")),
                strict,
                req(StoreDown),
            ),
            (
                Err(StoreError::server("READONLY")),
                defaults,
                req(StoreDown),
            ),
            // One failure may be the limit.
            (Ok(counts(1, 0, 0)), strict, req(Account)),
            (Ok(counts(0, 1, 0)), strict, req(Ip)),
            (Ok(counts(0, 0, 1)), strict, req(Global)),
        ];
        for (counts, thresholds, expected) in &rows {
            let decided = requirement(counts.as_ref(), thresholds);
            assert_eq!(&decided, expected, "{counts:?} {thresholds:?}");
            assert_eq!(decided.is_required(), *expected != not);
        }
        let labels: Vec<_> = [not, req(Account), req(Ip), req(Global), req(StoreDown)]
            .map(Need::label)
            .into();
        assert_eq!(
            labels,
            ["not_required", "account", "ip", "global", "store_down"]
        );
    }

    #[test]
    fn limits_that_cannot_be_are_refused() {
        let d = Thresholds::default();
        assert_eq!((d.account.failures(), d.account.window().secs()), (3, 900));
        assert_eq!((d.ip.failures(), d.ip.window().secs()), (10, 900));
        assert_eq!((d.global.failures(), d.global.window().secs()), (30, 60));
        assert_eq!(d.windows().global.secs(), 60);
        let minute = Duration::from_secs(60);
        assert_eq!(Limit::new(0, minute), Err(ThresholdError::ZeroFailures));
        for window in [
            Duration::ZERO,
            Duration::from_millis(999),
            MAX_WINDOW + Duration::from_secs(1),
            Duration::MAX,
        ] {
            assert_eq!(Limit::new(3, window), Err(ThresholdError::Window(window)));
        }
        assert!(Limit::new(u32::MAX, MAX_WINDOW).is_ok());
        assert!(ThresholdError::ZeroFailures.to_string().contains("Always"));
    }
}
