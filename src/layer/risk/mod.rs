//! Risk-based requirement of the captcha (issue 24): on a `WhenRisky` route a request without a
//! captcha goes through while failures are few, and needs one once they are not.
//!
//! The pieces, one job each, for the layer to wire in:
//!
//! - `window`: a sliding count from two fixed buckets, pure arithmetic on a given `now`;
//! - `key`: what is counted under which key (HMAC digests: no names or addresses in a store;
//!   accounts in Unicode's compatibility form without case, IPv6 by /64);
//! - `decision`: the thresholds (3 per account and 10 per address in 15 minutes, 30 a minute on
//!   the route) and the pure decision, which names what raised the requirement;
//! - `store`: the store trait, its errors (never a secret in them) and the deadline its calls
//!   are held to: a store that is slow or down makes the captcha required;
//! - `memory`: the default store, bounded in counters whatever is sprayed at it;
//! - `redis` (feature `redis`): counts shared by several instances, every call under a
//!   deadline;
//! - `gate`: a request's counters and the store's say, and what its answer counts as;
//! - `record`: the answer, counted before it goes out; `trailers`: a gRPC answer, counted
//!   when its trailers go by.

pub(crate) mod decision;
pub(crate) mod gate;
pub(crate) mod key;
pub(crate) mod memory;
pub(crate) mod record;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod store;
pub(crate) mod trailers;
pub(crate) mod window;
