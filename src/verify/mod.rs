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
/// use tower_aliyun_captcha::{
///     CaptchaVerifyParam, Verification, Verify, VerifyCode, VerifyRequest,
/// };
///
/// let always_pass = |_request: VerifyRequest| async {
///     Ok::<_, tower_aliyun_captcha::Error>(Verification::pass(VerifyCode::T001, "local"))
/// };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let param = CaptchaVerifyParam::new("anything").unwrap();
/// let verdict = always_pass.verify(VerifyRequest::new(param)).await.unwrap();
/// assert!(verdict.passed());
/// # });
/// ```
pub trait Verify: Send + Sync + 'static {
    /// The future that yields the verdict.
    type Future: Future<Output = Result<Verification, Error>> + Send + 'static;

    /// Verifies one param. The param is single-use: an implementation must not send it twice.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_aliyun_captcha::{
    ///     CaptchaVerifyParam, Verification, Verify, VerifyCode, VerifyRequest,
    /// };
    ///
    /// // A verifier shared behind an `Arc` is a verifier too.
    /// let verifier = Arc::new(|request: VerifyRequest| async move {
    ///     Ok::<_, tower_aliyun_captcha::Error>(if request.param().as_str() == "good" {
    ///         Verification::pass(VerifyCode::T001, "local")
    ///     } else {
    ///         Verification::fail(VerifyCode::F015, "local")
    ///     })
    /// });
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bad = VerifyRequest::new(CaptchaVerifyParam::new("bad").unwrap());
    /// assert_eq!(
    ///     verifier.verify(bad).await.unwrap().code(),
    ///     &VerifyCode::F015
    /// );
    /// # });
    /// ```
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
