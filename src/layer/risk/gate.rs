//! A `WhenRisky` route at work: who the request is (its account and address, as counters),
//! whether it needs the captcha (the store's counts and the pure decision), and, once it is
//! answered, the failure counted or the account's count cleared.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body::Body;

use super::decision::{Need, Raised, requirement};
use super::key::Keys;
use super::store::{RiskStore, StoreError, within};
use crate::SceneId;
use crate::extract::{BodyError, BodyLimits, CaptchaBody, ContentKind, Field, body_field};
use crate::layer::Reason;
use crate::layer::alarms::Alarms;
use crate::layer::observe;
use crate::layer::rejection::LayerRefusal;
use crate::layer::requirement::{Account, FailedAttempt, Risk, Settings};

/// A request on a `WhenRisky` route, once its counters are known.
pub(crate) struct Assessed<B> {
    pub(crate) request: Request<CaptchaBody<B>>,
    /// What a later failure or success is counted against.
    /// Boxed: the futures of every route carry room for one, and most routes have none.
    pub(crate) watch: Box<Watch>,
    /// Whether a request without a param may go through; `None` when it carries one (it is
    /// verified whatever the counts).
    pub(crate) need: Option<Need>,
    /// The store did not answer (the need is then `StoreDown`).
    pub(crate) store_error: Option<StoreError>,
    /// The body could not be read for the account: the request cannot be handed on.
    pub(crate) body_error: Option<BodyError>,
    /// No client address could be had: only the account and the route are counted.
    pub(crate) no_address: bool,
}

pub(crate) type AssessFuture<B> = Pin<Box<dyn Future<Output = Assessed<B>> + Send>>;

/// Finds the request's counters and, when it carries no param, asks the store whether it
/// needs the captcha, within the store's deadline.
/// `alarms`: where a store that fails after the answer is reported.
pub(crate) fn assess<B>(
    risk: &Risk,
    scene: &SceneId,
    alarms: &Arc<Alarms>,
    request: Request<CaptchaBody<B>>,
    limits: BodyLimits,
    has_param: bool,
) -> AssessFuture<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let risk = risk.clone();
    let scene = scene.clone();
    let alarms = Arc::clone(alarms);
    Box::pin(async move {
        let risk = risk.settings();
        let (request, account) = account(risk, request, limits).await;
        let (account, ambiguous, body_error) = match account {
            Ok(Field::One(name)) => (Some(name), false, None),
            Ok(Field::Missing) => (None, false, None),
            Ok(Field::Ambiguous) => (None, true, None),
            Err(error) => (None, false, Some(error)),
        };
        let address = client_address(request.headers(), request.extensions(), risk.forwarded_hops);
        let keys = risk.hasher.keys(
            scene.as_str(),
            account.as_deref(),
            address,
            risk.thresholds.windows(),
        );
        let mut watch = Watch {
            store: Arc::clone(&risk.store),
            keys,
            failure_statuses: Arc::clone(&risk.failure_statuses),
            clear_on_success: risk.clear_on_success,
            deadline: risk.deadline,
            attempted: None,
            alarms,
            scene,
        };
        let (need, store_error) = if has_param || body_error.is_some() {
            (None, None)
        } else if ambiguous {
            // Two account names, or a body the app may read one in: which it reads cannot be
            // told, so nothing is counted and the captcha is required.
            (Some(Need::Required(Raised::Account)), None)
        } else {
            // Counted before the answer, so that concurrent guesses see each other; taken back
            // if it was no failure.
            let now = SystemTime::now();
            let counts = within(risk.deadline, risk.store.attempt(keys, now)).await;
            if counts.is_ok() {
                watch.attempted = Some(now);
            }
            let need = requirement(counts.as_ref(), &risk.thresholds);
            (Some(need), counts.err())
        };
        Assessed {
            request,
            watch: Box::new(watch),
            need,
            store_error,
            body_error,
            no_address: address.is_none(),
        }
    })
}

/// The account name of the request, if the route names where it is.
async fn account<B>(
    risk: &Settings,
    request: Request<CaptchaBody<B>>,
    limits: BodyLimits,
) -> (Request<CaptchaBody<B>>, Result<Field, BodyError>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    match &risk.account {
        None => (request, Ok(Field::Missing)),
        Some(Account::Field(name)) => body_field(request, limits, name).await,
        Some(Account::Closure(closure)) => {
            let (parts, body) = request.into_parts();
            let name = match closure(&parts) {
                Some(name) => Field::One(name),
                // A gRPC call names its account in its message, which this cannot read: a
                // call whose metadata names none may be a guess at anyone.
                None if ContentKind::of(&parts.headers) == ContentKind::Grpc => Field::Ambiguous,
                None => Field::Missing,
            };
            (Request::from_parts(parts, body), Ok(name))
        }
    }
}

/// The client's address: the socket's peer, or the one `hops` proxies back in
/// `X-Forwarded-For` when the route trusts that many. A header that does not reach that far
/// back, or does not parse, gives the socket's peer: the nearest proxy, counted for all it
/// carries, which errs towards asking for the captcha.
fn client_address(
    headers: &HeaderMap,
    extensions: &http::Extensions,
    hops: Option<usize>,
) -> Option<IpAddr> {
    let peer = peer(extensions);
    // No proxy trusted (0 included): the header is the client's own writing.
    let Some(hops) = hops.filter(|&hops| hops > 0) else {
        return peer;
    };
    // Entries are split on bytes: a client's unreadable entry must not make the proxies' own
    // entries after it unreadable too.
    let mut seen: Vec<&[u8]> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        seen.extend(
            value
                .as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii),
        );
    }
    // The last entry was appended by the nearest proxy; `hops` proxies back is the client.
    let Some(index) = seen.len().checked_sub(hops) else {
        return peer;
    };
    std::str::from_utf8(seen[index])
        .ok()
        .and_then(|entry| entry.parse().ok())
        .or(peer)
}

/// The socket's peer, however the server put it in the request's extensions.
fn peer(extensions: &http::Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(address) = extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
    {
        return Some(address.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// What a request on a `WhenRisky` route is counted against once it is answered.
pub(crate) struct Watch {
    store: Arc<dyn RiskStore>,
    keys: Keys,
    failure_statuses: Arc<[StatusCode]>,
    clear_on_success: bool,
    deadline: std::time::Duration,
    /// When the request was counted as an attempt before its answer (a request without a
    /// param): a failure then needs no more counting, anything else takes it back.
    attempted: Option<SystemTime>,
    /// Where a store that fails is reported (the answer may be long gone: see `trailers`).
    alarms: Arc<Alarms>,
    scene: SceneId,
}

/// A call to the store after the answer; a failure of the store is reported by the call.
pub(crate) type RecordFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// When an answer is counted.
pub(crate) enum Settle {
    /// Now, by this call to the store, if any.
    Now(Option<RecordFuture>),
    /// When its trailers go by: a gRPC answer whose status is still to come.
    AtTrailers(Box<Watch>),
}

impl Watch {
    /// What the inner service's answer means for the counts: a failure (a failure status, or
    /// [`FailedAttempt`]) is counted; a success may clear the account's failures. A gRPC
    /// answer says how the call went in its trailers unless it failed at once (tonic's unary
    /// errors): such an answer is counted when its trailers go by.
    pub(crate) fn answered<T>(self: Box<Self>, response: &http::Response<T>) -> Settle {
        // An inner layer of this crate asked for the captcha: no login was tried.
        if let Some(LayerRefusal(Reason::CaptchaRequired)) = response.extensions().get() {
            return Settle::Now(self.settle(false, false));
        }
        let status = response.status();
        let failed = self.failure_statuses.contains(&status)
            || response.extensions().get::<FailedAttempt>().is_some();
        let grpc_status = response.headers().get(GRPC_STATUS);
        if !failed
            && grpc_status.is_none()
            && ContentKind::of(response.headers()) == ContentKind::Grpc
        {
            return Settle::AtTrailers(self);
        }
        let (grpc_failed, grpc_succeeded) = grpc_outcome(grpc_status);
        Settle::Now(self.settle(
            failed || grpc_failed,
            status.is_success() && (grpc_status.is_none() || grpc_succeeded),
        ))
    }

    /// What a gRPC answer's trailers say: `None` when they say nothing (the attempt stays).
    #[cfg(any(feature = "tonic", feature = "axum"))]
    pub(crate) fn trailers(&self, trailers: &HeaderMap) -> Option<RecordFuture> {
        let status = trailers.get(GRPC_STATUS)?;
        let (failed, succeeded) = grpc_outcome(Some(status));
        self.settle(failed, succeeded)
    }

    /// What the layer's own refusal means for the counts: a failed verdict is a failure; a
    /// request refused for want of a captcha is not.
    pub(crate) fn refused(&self, failed: bool) -> Option<RecordFuture> {
        self.settle(failed, false)
    }

    fn settle(&self, failed: bool, succeeded: bool) -> Option<RecordFuture> {
        let (store, keys, deadline) = (Arc::clone(&self.store), self.keys, self.deadline);
        let record = failed && self.attempted.is_none();
        let undo = self.attempted.filter(|_| !failed);
        let clear = self
            .keys
            .account
            .filter(|_| succeeded && self.clear_on_success);
        if !record && undo.is_none() && clear.is_none() {
            return None;
        }
        let (alarms, scene) = (Arc::clone(&self.alarms), self.scene.clone());
        Some(Box::pin(async move {
            let recorded = async {
                let now = SystemTime::now();
                if record {
                    within(deadline, store.record_failure(keys, now)).await?;
                }
                if let Some(at) = undo {
                    within(deadline, store.undo(keys, at)).await?;
                }
                if let Some(account) = clear {
                    within(deadline, store.clear(account, now)).await?;
                }
                Ok::<_, StoreError>(())
            };
            if let Err(error) = recorded.await {
                observe::store_alarm(&alarms, &scene, &error);
            }
        }))
    }
}

const GRPC_STATUS: &str = "grpc-status";

/// A gRPC status as a login's outcome: failed (`PERMISSION_DENIED`, `UNAUTHENTICATED`), and
/// succeeded (`OK`). Any other status is neither.
fn grpc_outcome(status: Option<&http::HeaderValue>) -> (bool, bool) {
    let status = status.map(http::HeaderValue::as_bytes);
    (matches!(status, Some(b"7" | b"16")), status == Some(b"0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_address_is_read_only_as_far_back_as_the_trusted_proxies() {
        let mut extensions = http::Extensions::new();
        extensions.insert(SocketAddr::from(([10, 0, 0, 1], 443)));
        let headers = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("x-forwarded-for", value.parse().unwrap());
            }
            headers
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let spoofed = headers(&["6.6.6.6, 1.2.3.4"]);
        // Not trusted: the header is never read.
        assert_eq!(client_address(&spoofed, &extensions, None), ip("10.0.0.1"));
        // One proxy appends the address it saw: the last entry, whatever came before it.
        assert_eq!(
            client_address(&spoofed, &extensions, Some(1)),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_address(&spoofed, &extensions, Some(2)),
            ip("6.6.6.6")
        );
        // Two headers read as one list.
        let split = headers(&["6.6.6.6", "1.2.3.4"]);
        assert_eq!(client_address(&split, &extensions, Some(1)), ip("1.2.3.4"));
        // Not that many hops, or garbage: the socket's peer (the proxy), never the header.
        assert_eq!(
            client_address(&spoofed, &extensions, Some(3)),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(&headers(&["nonsense"]), &extensions, Some(1)),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(&HeaderMap::new(), &extensions, Some(1)),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(&spoofed, &http::Extensions::new(), None),
            None
        );
    }
}
