//! What a verification takes and gives: the validated param, the scene, the verdict and its
//! code, and the [`Verify`] trait that the client implements and the layer is generic over.

mod code;
mod param;
mod verdict;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

pub use code::VerifyCode;
pub use param::{CaptchaVerifyParam, InvalidParam, InvalidSceneId, SceneId};
pub use verdict::{Verification, VerifyRequest};

/// Something that can verify a param: the [`Client`](crate::Client), or a stand-in in tests.
///
/// The future is `'static` and `Send` so that the layer can hold it without boxing it and run
/// it on any executor. Any `Fn(VerifyRequest) -> impl Future<…>` closure is a verifier:
///
/// ```
/// use std::sync::Arc;
/// use tower_aliyun_captcha::{
///     CaptchaVerifyParam, Verification, Verify, VerifyCode, VerifyRequest,
/// };
///
/// // A stand-in for tests: passes the param "good", fails any other.
/// let verifier = |request: VerifyRequest| async move {
///     Ok::<_, tower_aliyun_captcha::Error>(if request.param().as_str() == "good" {
///         Verification::pass(VerifyCode::T001, "local")
///     } else {
///         Verification::fail(VerifyCode::F015, "local")
///     })
/// };
/// // Shared behind an `Arc`, it is a verifier too.
/// let verifier = Arc::new(verifier);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let request = |param: &str| VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap());
/// assert!(verifier.verify(request("good")).await.unwrap().passed());
/// let bad = verifier.verify(request("bad")).await.unwrap();
/// assert_eq!(bad.code(), &VerifyCode::F015);
/// # });
/// ```
pub trait Verify: Send + Sync + 'static {
    /// The future that yields the verdict.
    type Future: Future<Output = Result<Verification, Error>> + Send + 'static;

    /// Verifies one param. The param is single-use: an implementation must not send it twice.
    fn verify(&self, request: VerifyRequest) -> Self::Future;

    /// The degraded budgets the layers using this verifier share during an outage, one per
    /// setting. `None`, the default: each layer keeps its own. [`Client`](crate::Client) shares
    /// one set among its clones, so routes protected with one client share one budget.
    fn shared_budgets(&self) -> Option<&crate::layer::SharedBudgets> {
        None
    }

    /// The longest a layer waits for one verification before it counts it as an outage. The
    /// default, 10 s, bounds a verifier without a timeout of its own; [`Client`](crate::Client)
    /// answers within its own `timeout`, and says so here.
    fn deadline(&self) -> Duration {
        DEFAULT_DEADLINE
    }
}

/// A verifier that passes every param, offline.
// Exists for the documentation's examples only (`# let verifier = …doc_verifier();`).
#[doc(hidden)]
pub fn doc_verifier() -> impl Verify + Clone {
    |_request: VerifyRequest| async {
        Ok::<_, Error>(Verification::pass(VerifyCode::T001, "doc-example"))
    }
}

/// What a layer waits for a verifier that does not say.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

impl<F, Fut> Verify for F
where
    F: Fn(VerifyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Verification, Error>> + Send + 'static,
{
    type Future = Fut;

    fn verify(&self, request: VerifyRequest) -> Self::Future {
        self(request)
    }
}

impl<V: Verify + ?Sized> Verify for Arc<V> {
    type Future = V::Future;

    fn verify(&self, request: VerifyRequest) -> Self::Future {
        (**self).verify(request)
    }

    fn shared_budgets(&self) -> Option<&crate::layer::SharedBudgets> {
        (**self).shared_budgets()
    }

    fn deadline(&self) -> Duration {
        (**self).deadline()
    }
}
