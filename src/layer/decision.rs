//! The layer's decision, as data: what a verification's outcome means for the request, under
//! the layer's rules. Pure, so that every case is a row in one table test.

use std::time::Duration;

use super::{CaptchaVerified, FailurePolicy, Refusal};
use crate::error::ErrorClass;
use crate::{Error, Verification, VerifyCode};

/// How long a client is asked to wait after a 503 the layer chose itself.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The layer's settings that bear on the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) policy: FailurePolicy,
    pub(crate) allow_test_mode: bool,
    pub(crate) open_on_configuration_errors: bool,
}

/// What a verdict means for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnVerdict {
    /// A person passed.
    Pass,
    /// The captcha was not passed here.
    Refuse(Refusal),
}

/// What a verification without a verdict means for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnFailure {
    /// The request goes on marked degraded, within the budget.
    Degraded(ErrorClass),
    /// Refused for what the failure is (or under the closed policy).
    Refuse(Refusal),
    /// It would have gone on degraded, but the budget is spent: 503 until the service answers.
    OverBudget(ErrorClass),
}

impl OnFailure {
    /// The class the request goes on degraded for, or the refusal it is answered with.
    pub(crate) fn answer(&self) -> Result<ErrorClass, Refusal> {
        match self {
            Self::Degraded(class) => Ok(*class),
            Self::Refuse(refusal) => Err(refusal.clone()),
            Self::OverBudget(class) => Err(over_budget(*class)),
        }
    }
}

/// The answer to a request that would have gone on degraded past the budget: 503 until the
/// service answers.
fn over_budget(class: ErrorClass) -> Refusal {
    Refusal::Unavailable {
        class,
        retry_after: Some(RETRY_AFTER),
    }
}

/// The decision when no verdict could be had. `take_budget` is asked only when the request
/// would pass degraded, and answers whether the degraded budget allows one more.
pub(crate) fn on_failure(
    error: &Error,
    rules: Rules,
    take_budget: impl FnOnce() -> bool,
) -> OnFailure {
    let class = error.class();
    let may_open = match class {
        ErrorClass::Outage => true,
        ErrorClass::Configuration => rules.open_on_configuration_errors,
        // The service refused what we sent: the same as a param that is not valid.
        ErrorClass::BadRequest => {
            return OnFailure::Refuse(Refusal::Rejected {
                code: VerifyCode::F003,
                local: false,
            });
        }
        // Asked to slow down, or out of our own connections: passing would reward a flood.
        ErrorClass::Throttled => {
            return OnFailure::Refuse(Refusal::Unavailable {
                class,
                retry_after: Some(error.retry_after().unwrap_or(RETRY_AFTER)),
            });
        }
        ErrorClass::Overloaded => return OnFailure::Refuse(overloaded()),
    };
    match rules.policy {
        FailurePolicy::Open if may_open => {
            if take_budget() {
                OnFailure::Degraded(class)
            } else {
                OnFailure::OverBudget(class)
            }
        }
        _ => OnFailure::Refuse(Refusal::Unavailable {
            class,
            retry_after: None,
        }),
    }
}

/// The answer to a request turned away because too many verifications are in flight: the
/// layer's own bound, or the client's connections. Never a pass, whatever the policy.
pub(crate) fn overloaded() -> Refusal {
    Refusal::Overloaded {
        retry_after: RETRY_AFTER,
    }
}

/// A verdict passes only when `VerifyResult` is true *and* its code is a pass code (every
/// `T…`, as Alibaba documents, so a pass code added later does not lock people out); test
/// mode's T005 only when allowed. Anything else, contradictions included, is refused.
pub(crate) fn on_verdict(verdict: &Verification, rules: Rules) -> OnVerdict {
    let code = verdict.code();
    let pass_code = match code {
        VerifyCode::T005 => rules.allow_test_mode,
        _ => code.is_pass(),
    };
    if verdict.passed() && pass_code {
        OnVerdict::Pass
    } else {
        OnVerdict::Refuse(Refusal::Rejected {
            code: code.clone(),
            local: false,
        })
    }
}

/// Whether a layer may take the verdict an outer layer of this crate gave the same request:
/// only one its own rules would have given. A degraded pass needs this layer's policy open
/// for its class and its budget (`take_budget`: true at once when the outer layer's budget is
/// this one's, which already counted it); test mode's T005 needs this layer to allow it.
pub(crate) fn on_earlier(
    verified: &CaptchaVerified,
    rules: Rules,
    take_budget: impl FnOnce() -> bool,
) -> Result<(), Refusal> {
    match verified {
        CaptchaVerified::Degraded(degraded) => {
            let class = degraded.class();
            let may_open = match class {
                ErrorClass::Outage => true,
                ErrorClass::Configuration => rules.open_on_configuration_errors,
                _ => false,
            };
            if rules.policy != FailurePolicy::Open || !may_open {
                Err(Refusal::Unavailable {
                    class,
                    retry_after: None,
                })
            } else if take_budget() {
                Ok(())
            } else {
                Err(over_budget(class))
            }
        }
        CaptchaVerified::Passed(passed)
            if *passed.code() == VerifyCode::T005 && !rules.allow_test_mode =>
        {
            Err(Refusal::Rejected {
                code: VerifyCode::T005,
                local: false,
            })
        }
        CaptchaVerified::Passed(_) => Ok(()),
        // Carry no param, so never claimed: an inner layer verifies for itself.
        CaptchaVerified::NotRequired(_) | CaptchaVerified::Monitored(_) => Err(Refusal::Rejected {
            code: VerifyCode::F002,
            local: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::CredentialsError;
    use crate::error::{ApiError, ApiErrorCode, ResponseError, ResponseErrorKind};
    use crate::error::{TransportError, TransportErrorKind};

    fn verdict(passed: bool, code: &str) -> Verification {
        Verification::from_result(passed, VerifyCode::from(code), "R")
    }

    fn api(status: u16, code: &str) -> Error {
        ApiError::new(status, ApiErrorCode::from(code), "", "R").into()
    }

    fn transport(kind: TransportErrorKind) -> Error {
        TransportError::possibly_sent(kind).into()
    }

    const OPEN: Rules = Rules {
        policy: FailurePolicy::Open,
        allow_test_mode: false,
        open_on_configuration_errors: false,
    };
    const CLOSED: Rules = Rules {
        policy: FailurePolicy::Closed,
        ..OPEN
    };
    const TEST_MODE: Rules = Rules {
        allow_test_mode: true,
        ..OPEN
    };
    const OPEN_ON_CONFIG: Rules = Rules {
        open_on_configuration_errors: true,
        ..OPEN
    };

    fn pass() -> OnVerdict {
        OnVerdict::Pass
    }
    fn rejected(code: &str) -> OnVerdict {
        OnVerdict::Refuse(Refusal::Rejected {
            code: VerifyCode::from(code),
            local: false,
        })
    }
    fn failed_as(code: &str) -> OnFailure {
        OnFailure::Refuse(Refusal::Rejected {
            code: VerifyCode::from(code),
            local: false,
        })
    }
    fn unavailable(class: ErrorClass, retry_after: Option<u64>) -> OnFailure {
        OnFailure::Refuse(Refusal::Unavailable {
            class,
            retry_after: retry_after.map(Duration::from_secs),
        })
    }
    fn overloaded() -> OnFailure {
        OnFailure::Refuse(super::overloaded())
    }

    #[test]
    fn every_outcome_under_every_rule() {
        use ErrorClass::*;
        let throttled_with_wait: Error = ApiError::new(400, ApiErrorCode::Throttling, "", "R")
            .with_retry_after(Duration::from_secs(7))
            .into();
        // Verdicts: (what the service answered, rules, decision), whatever the budget.
        let verdicts = [
            (verdict(true, "T001"), OPEN, pass()),
            (verdict(true, "T006"), OPEN, pass()),
            (verdict(true, "T005"), OPEN, rejected("T005")),
            (verdict(true, "T005"), TEST_MODE, pass()),
            (verdict(false, "F015"), OPEN, rejected("F015")),
            (verdict(false, "F018"), CLOSED, rejected("F018")),
            (verdict(false, "F004"), TEST_MODE, rejected("F004")),
            // Contradictions, unknown and missing codes: refused.
            (verdict(true, "F015"), OPEN, rejected("F015")),
            (verdict(false, "T001"), OPEN, rejected("T001")),
            // A pass code Alibaba added after this crate: a pass (and a warning).
            (verdict(true, "T999"), OPEN, pass()),
            (verdict(false, "T999"), OPEN, rejected("T999")),
            (verdict(true, "F999"), OPEN, rejected("F999")),
            (verdict(true, ""), OPEN, rejected("")),
            (verdict(false, ""), OPEN, rejected("")),
        ];
        for (verdict, rules, expected) in &verdicts {
            assert_eq!(
                &on_verdict(verdict, *rules),
                expected,
                "{verdict:?} {rules:?}"
            );
        }

        // No verdict: (error, rules, budget left, decision).
        let errors: Vec<(Error, Rules, bool, OnFailure)> = vec![
            // Outages: the policy, within the budget.
            (
                api(500, "InternalError"),
                OPEN,
                true,
                OnFailure::Degraded(Outage),
            ),
            (
                api(503, "ServiceUnavailable"),
                OPEN,
                false,
                OnFailure::OverBudget(Outage),
            ),
            (
                api(502, "Odd.Code"),
                OPEN,
                true,
                OnFailure::Degraded(Outage),
            ),
            (
                transport(TransportErrorKind::Timeout),
                OPEN,
                true,
                OnFailure::Degraded(Outage),
            ),
            (
                transport(TransportErrorKind::Connect),
                OPEN,
                true,
                OnFailure::Degraded(Outage),
            ),
            (
                transport(TransportErrorKind::Io),
                CLOSED,
                true,
                unavailable(Outage, None),
            ),
            (
                ResponseError::new(ResponseErrorKind::Malformed, 200, "x").into(),
                OPEN,
                true,
                OnFailure::Degraded(Outage),
            ),
            (
                ResponseError::new(ResponseErrorKind::TooLarge, 200, "x").into(),
                CLOSED,
                true,
                unavailable(Outage, None),
            ),
            // Configuration and account: 503, unless explicitly opened.
            (
                api(400, "SignatureDoesNotMatch"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(404, "InvalidAccessKeyId.NotFound"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(400, "InvalidSecurityToken.Expired"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(403, "Forbidden.AccountAccessDenied"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(403, "Forbidden.RAMUserAccessDenied"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(400, "InvalidTimeStamp.Expired"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(400, "SignatureNonceUsed"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(400, "Some.New.Code"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                transport(TransportErrorKind::Tls),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                ResponseError::new(ResponseErrorKind::UnexpectedStatus, 404, "x").into(),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                CredentialsError::Provider("expired".into()).into(),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                Error::other("custom"),
                OPEN,
                true,
                unavailable(Configuration, None),
            ),
            (
                api(400, "SignatureDoesNotMatch"),
                OPEN_ON_CONFIG,
                true,
                OnFailure::Degraded(Configuration),
            ),
            (
                api(400, "SignatureDoesNotMatch"),
                OPEN_ON_CONFIG,
                false,
                OnFailure::OverBudget(Configuration),
            ),
            (
                api(400, "SignatureDoesNotMatch"),
                CLOSED,
                true,
                unavailable(Configuration, None),
            ),
            // Bad request content: refused like a failed captcha.
            (api(400, "InvalidParameter"), OPEN, true, failed_as("F003")),
            (
                api(400, "MissingParameter"),
                CLOSED,
                true,
                failed_as("F003"),
            ),
            // Throttling: 503 with a wait, never a pass.
            (
                api(400, "Throttling"),
                OPEN,
                true,
                unavailable(Throttled, Some(1)),
            ),
            (
                api(400, "Throttling.User"),
                OPEN_ON_CONFIG,
                true,
                unavailable(Throttled, Some(1)),
            ),
            (
                throttled_with_wait,
                OPEN,
                true,
                unavailable(Throttled, Some(7)),
            ),
            // The client's own connections all busy: overloaded, whatever the policy.
            (
                transport(TransportErrorKind::Overloaded),
                OPEN,
                true,
                overloaded(),
            ),
            (
                transport(TransportErrorKind::Overloaded),
                CLOSED,
                true,
                overloaded(),
            ),
        ];
        for (error, rules, budget, expected) in &errors {
            let mut asked = false;
            let decided = on_failure(error, *rules, || {
                asked = true;
                *budget
            });
            assert_eq!(&decided, expected, "{error:?} {rules:?} budget {budget}");
            // The budget is asked only where a degraded pass is possible.
            let degrades = matches!(expected, OnFailure::Degraded(_) | OnFailure::OverBudget(_));
            assert_eq!(asked, degrades, "{error:?} {rules:?}");
            // Over budget is answered like any unavailability, with a wait.
            if let OnFailure::OverBudget(class) = expected {
                let waits = Refusal::Unavailable {
                    class: *class,
                    retry_after: Some(RETRY_AFTER),
                };
                assert_eq!(decided.answer(), Err(waits));
            }
        }

        // The layer's own bound: 503 with a wait.
        assert_eq!(super::overloaded().status(), 503);
        assert_eq!(super::overloaded().retry_after(), Some(RETRY_AFTER));
    }

    #[test]
    fn an_outer_verdict_is_taken_only_where_these_rules_would_give_it() {
        use ErrorClass::*;
        let scene = crate::SceneId::new("s").unwrap();
        let param = crate::CaptchaVerifyParam::new("p").unwrap();
        let budget = std::sync::Arc::new(super::super::budget::Budget::new(
            super::super::DegradedBudget::unlimited(),
            std::time::Instant::now(),
        ));
        let passed = |code: &str| {
            CaptchaVerified::passed(verdict(true, code), scene.clone(), param.clone(), &budget)
        };
        let degraded =
            |class| CaptchaVerified::degraded(class, None, scene.clone(), param.clone(), &budget);
        let over_budget = |class| Err(super::over_budget(class));
        let rejected_t005 = Err(Refusal::Rejected {
            code: VerifyCode::T005,
            local: false,
        });
        let unavailable = |class| {
            Err(Refusal::Unavailable {
                class,
                retry_after: None,
            })
        };
        // (the outer verdict, these rules, this layer's budget has room, decision)
        let rows = [
            (passed("T001"), CLOSED, false, Ok(())),
            (passed("T005"), OPEN, true, rejected_t005.clone()),
            (passed("T005"), TEST_MODE, false, Ok(())),
            (degraded(Outage), OPEN, true, Ok(())),
            (degraded(Outage), OPEN, false, over_budget(Outage)),
            (degraded(Outage), CLOSED, true, unavailable(Outage)),
            (
                degraded(Configuration),
                OPEN,
                true,
                unavailable(Configuration),
            ),
            (degraded(Configuration), OPEN_ON_CONFIG, true, Ok(())),
            (
                degraded(Configuration),
                OPEN_ON_CONFIG,
                false,
                over_budget(Configuration),
            ),
        ];
        for (verified, rules, room, expected) in rows {
            let mut asked = false;
            let decided = on_earlier(&verified, rules, || {
                asked = true;
                room
            });
            assert_eq!(decided, expected, "{verified:?} {rules:?} room {room}");
            // The budget is asked only for a degraded pass these rules would give.
            let may_pass = matches!(verified, CaptchaVerified::Degraded(_))
                && expected != unavailable(Outage)
                && expected != unavailable(Configuration);
            assert_eq!(asked, may_pass, "{verified:?} {rules:?}");
        }
    }
}
