//! The API gateway's checks of a request, in the order the real gateway makes them.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, request::Parts};
use time::OffsetDateTime;

use tower_aliyun_captcha::protocol::{self, header};
use tower_aliyun_captcha::sign::{self, Authorization, CanonicalRequest};

/// How far the request's `x-acs-date` may be from the server's clock, and how long a nonce
/// is remembered.
pub(crate) const CLOCK_WINDOW: Duration = Duration::from_secs(15 * 60);

/// An error answer of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GatewayError {
    pub(crate) status: StatusCode,
    pub(crate) code: Cow<'static, str>,
    pub(crate) message: String,
}

impl GatewayError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

/// An AccessKey the emulator knows.
#[derive(Debug, Clone)]
pub(crate) struct KnownKey {
    pub(crate) secret: String,
    /// Set for STS keys: the token that must come with them.
    pub(crate) security_token: Option<String>,
    /// Set for keys the emulator's STS issued: when they stop working.
    pub(crate) expires: Option<SystemTime>,
}

/// Where the AccessKeys the emulator accepts are.
pub(crate) trait KeyStore {
    /// The key with this id, if known: borrowed when it can be.
    fn key(&self, id: &str) -> Option<Cow<'_, KnownKey>>;
}

impl KeyStore for HashMap<String, KnownKey> {
    fn key(&self, id: &str) -> Option<Cow<'_, KnownKey>> {
        self.get(id).map(Cow::Borrowed)
    }
}

/// The APIs the emulator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `VerifyIntelligentCaptcha`.
    Captcha,
    /// STS `AssumeRole`.
    AssumeRole,
    /// STS `AssumeRoleWithOIDC`: anonymous.
    AssumeRoleWithOidc,
}

/// What an authenticated request is: its nonce, its signed date and its API.
#[derive(Debug)]
pub(crate) struct Authenticated<'a> {
    pub(crate) nonce: &'a str,
    /// Its `x-acs-date`.
    pub(crate) date: SystemTime,
    pub(crate) api: Api,
}

/// The most nonces remembered at once, about 200 bytes each (some 20 MiB in all). Three times
/// the fastest rate measured against the emulator (about 30,000 requests a second in process)
/// fits in a second's worth; only a faster flood meets requests refused as stale.
pub(crate) const MAX_NONCES: usize = 100_000;

/// The nonces of accepted requests, by their signed date, for as long as that date is within
/// the clock window (after that the date check refuses a replay). Bounded: when full it forgets
/// the nonces with the earliest dates and refuses every request dated no later than the latest
/// of those (its `horizon`), as stale, since it can no longer tell whether such a request was
/// seen. Fresh requests keep flowing, and no replay is ever accepted. (A nonce forgotten for
/// room may come back under a later date: a request signed anew, which no replayer can make.)
#[derive(Debug)]
pub(crate) struct NonceWindow {
    capacity: usize,
    seen: HashMap<Arc<str>, SystemTime>,
    by_date: BTreeSet<(SystemTime, Arc<str>)>,
    horizon: Option<SystemTime>,
}

impl Default for NonceWindow {
    fn default() -> Self {
        Self::with_capacity(MAX_NONCES)
    }
}

/// Why a nonce is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceRefusal {
    /// Seen within the window.
    Used,
    /// Dated no later than nonces forgotten for room.
    Stale,
}

impl NonceWindow {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: HashMap::new(),
            by_date: BTreeSet::new(),
            horizon: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether a request with `nonce`, signed at `date`, may be accepted at `now`.
    pub(crate) fn check(
        &mut self,
        nonce: &str,
        date: SystemTime,
        now: SystemTime,
    ) -> Result<(), NonceRefusal> {
        self.expire(now);
        if self.seen.contains_key(nonce) {
            return Err(NonceRefusal::Used);
        }
        if self.horizon.is_some_and(|horizon| date <= horizon) {
            return Err(NonceRefusal::Stale);
        }
        Ok(())
    }

    /// Remembers the nonce of an accepted request signed at `date`.
    pub(crate) fn insert(&mut self, nonce: &str, date: SystemTime) {
        if self.seen.contains_key(nonce) {
            return;
        }
        let nonce: Arc<str> = nonce.into();
        if self.seen.len() >= self.capacity {
            // Forget the earliest-dated of the stored nonces and this one.
            let entry = (date, nonce);
            let earliest = match self.by_date.first() {
                Some(first) if *first < entry => self.by_date.pop_first(),
                _ => None,
            };
            let Some((forgotten, oldest)) = earliest else {
                self.raise_horizon(entry.0);
                return;
            };
            self.seen.remove(&oldest);
            self.raise_horizon(forgotten);
            self.seen.insert(Arc::clone(&entry.1), entry.0);
            self.by_date.insert(entry);
            return;
        }
        self.seen.insert(Arc::clone(&nonce), date);
        self.by_date.insert((date, nonce));
    }

    fn raise_horizon(&mut self, date: SystemTime) {
        self.horizon = Some(self.horizon.map_or(date, |horizon| horizon.max(date)));
    }

    /// Forgets what the date check refuses anyway: requests dated more than the window ago.
    fn expire(&mut self, now: SystemTime) {
        let stale = |date: SystemTime| now.duration_since(date).unwrap_or_default() > CLOCK_WINDOW;
        while let Some((date, _)) = self.by_date.first() {
            if !stale(*date) {
                break;
            }
            if let Some((_, nonce)) = self.by_date.pop_first() {
                self.seen.remove(&nonce);
            }
        }
        if self.horizon.is_some_and(stale) {
            self.horizon = None;
        }
    }
}

/// How many signed headers are checked without allocating.
const STACK_HEADERS: usize = 16;

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates a request: the captcha API, and STS's when `sts` is on.
pub(crate) fn authenticate<'a>(
    parts: &'a Parts,
    body: &[u8],
    keys: &dyn KeyStore,
    sts: bool,
    now: SystemTime,
    nonces: &mut NonceWindow,
) -> Result<Authenticated<'a>, GatewayError> {
    let headers = &parts.headers;
    for name in &header::REQUIRED[1..] {
        if header_value(headers, name).is_none_or(|v| v.trim().is_empty()) {
            return Err(GatewayError::bad_request(
                "MissingParameter",
                format!("The required header {name} is missing."),
            ));
        }
    }
    let value = |name| header_value(headers, name).unwrap_or_default();

    let action = value(header::ACTION);
    let version = value(header::VERSION);
    let (api, expected_version) = match action {
        protocol::ACTION => (Api::Captcha, protocol::VERSION),
        protocol::STS_ASSUME_ROLE if sts => (Api::AssumeRole, protocol::STS_VERSION),
        protocol::STS_ASSUME_ROLE_WITH_OIDC if sts => {
            (Api::AssumeRoleWithOidc, protocol::STS_VERSION)
        }
        _ => {
            return Err(GatewayError::new(
                StatusCode::NOT_FOUND,
                "InvalidAction.NotFound",
                format!("Specified api {action:?} is not found, please check your url and method."),
            ));
        }
    };
    if version != expected_version {
        return Err(GatewayError::bad_request(
            "InvalidVersion",
            format!("Specified parameter Version {version:?} is not valid."),
        ));
    }
    // Only AssumeRoleWithOIDC may come without a signature: the OIDC token is the proof.
    let anonymous =
        header_value(headers, header::AUTHORIZATION).is_none_or(|v| v.trim().is_empty());
    if anonymous && api != Api::AssumeRoleWithOidc {
        return Err(GatewayError::bad_request(
            "MissingParameter",
            "The required header authorization is missing.",
        ));
    }

    let date = check_date(value(header::DATE), now)?;

    let nonce = value(header::NONCE);
    match nonces.check(nonce, date, now) {
        Ok(()) => {}
        Err(NonceRefusal::Used) => {
            return Err(GatewayError::bad_request(
                "SignatureNonceUsed",
                "The x-acs-signature-nonce has been used within the last 15 minutes.",
            ));
        }
        Err(NonceRefusal::Stale) => {
            return Err(GatewayError::bad_request(
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired: x-acs-date is not after the \
                 requests the emulator had to forget to stay within its memory bound (too many \
                 requests within 15 minutes); sign with the current time",
            ));
        }
    }

    let payload_hash = sign::payload_digest(body);
    let sent_hash = value(header::CONTENT_SHA256);
    if !sent_hash.eq_ignore_ascii_case(payload_hash.as_str()) {
        return Err(GatewayError::bad_request(
            "InvalidParameter",
            format!(
                "The header x-acs-content-sha256 ({sent_hash}) is not the SHA-256 of the \
                 request body ({}).",
                payload_hash.as_str()
            ),
        ));
    }

    if anonymous {
        return Ok(Authenticated { nonce, date, api });
    }

    let authorization = Authorization::parse(value(header::AUTHORIZATION))
        .map_err(|e| GatewayError::bad_request("IncompleteSignature", e.to_string()))?;
    // A request signs about ten headers: their names and values are listed on the stack.
    let mut signed_on_stack = [""; STACK_HEADERS];
    let mut signed_on_heap = Vec::new();
    let mut count = 0;
    for name in authorization.signed_headers() {
        if count < STACK_HEADERS {
            signed_on_stack[count] = name;
        } else {
            if count == STACK_HEADERS {
                signed_on_heap.extend_from_slice(&signed_on_stack);
            }
            signed_on_heap.push(name);
        }
        count += 1;
    }
    let signed: &[&str] = if count <= STACK_HEADERS {
        &signed_on_stack[..count]
    } else {
        &signed_on_heap
    };
    if let Some(unsigned) = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| *name == header::HOST || name.starts_with("x-acs-"))
        .find(|name| !signed.contains(name))
    {
        return Err(GatewayError::bad_request(
            "IncompleteSignature",
            format!("The header {unsigned} is sent but not listed in SignedHeaders."),
        ));
    }

    let Some(key) = keys.key(authorization.access_key_id) else {
        return Err(GatewayError::new(
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    };
    if key.expires.is_some_and(|expires| now >= expires) {
        return Err(GatewayError::bad_request(
            "InvalidSecurityToken.Expired",
            "The security token you provided has expired.",
        ));
    }
    if let Some(sent_id) = header_value(headers, header::ACCESS_KEY_ID)
        && sent_id != authorization.access_key_id
    {
        return Err(GatewayError::bad_request(
            "InvalidParameter",
            "The header x-acs-accesskey-id does not match the Credential of the signature.",
        ));
    }
    match (
        &key.security_token,
        header_value(headers, header::SECURITY_TOKEN),
    ) {
        (None, _) => {}
        (Some(_), None) => {
            return Err(GatewayError::bad_request(
                "MissingParameter",
                "The header x-acs-security-token is required with an STS AccessKey.",
            ));
        }
        (Some(expected), Some(sent)) if expected != sent => {
            return Err(GatewayError::bad_request(
                "InvalidSecurityToken.MismatchWithAccessKey",
                "The security token does not match the AccessKey.",
            ));
        }
        (Some(_), Some(_)) => {}
    }

    let mut values_on_stack = [("", ""); STACK_HEADERS];
    let mut values_on_heap: Vec<(&str, &str)> = Vec::new();
    let mut values = 0;
    for name in signed {
        let mut any = false;
        for value in headers.get_all(*name) {
            any = true;
            let value = value.to_str().map_err(|_| {
                GatewayError::bad_request(
                    "InvalidParameter",
                    format!("The header {name} is not visible ASCII."),
                )
            })?;
            if values < STACK_HEADERS {
                values_on_stack[values] = (name, value);
            } else {
                if values == STACK_HEADERS {
                    values_on_heap.extend_from_slice(&values_on_stack);
                }
                values_on_heap.push((name, value));
            }
            values += 1;
        }
        if !any {
            return Err(GatewayError::bad_request(
                "IncompleteSignature",
                format!("The signed header {name} is not in the request."),
            ));
        }
    }
    let signed_values: &[(&str, &str)] = if values <= STACK_HEADERS {
        &values_on_stack[..values]
    } else {
        &values_on_heap
    };
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let canonical = CanonicalRequest::new(
        parts.method.as_str(),
        parts.uri.path(),
        &query,
        signed_values,
        sent_hash,
    );
    if !canonical.verify(key.secret.as_bytes(), authorization.signature) {
        return Err(GatewayError::bad_request(
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        ));
    }
    Ok(Authenticated { nonce, date, api })
}

/// Checks `x-acs-date` against the clock window; the date it names.
fn check_date(date: &str, now: SystemTime) -> Result<SystemTime, GatewayError> {
    let expired = |why: &str| {
        GatewayError::bad_request(
            "InvalidTimeStamp.Expired",
            format!("Specified time stamp or date value is expired: {why}"),
        )
    };
    // The gateway takes exactly yyyy-MM-ddTHH:mm:ssZ.
    let sent = protocol::parse_date(date)
        .ok_or_else(|| expired("x-acs-date is not a valid date in yyyy-MM-ddTHH:mm:ssZ form"))?;
    let now = OffsetDateTime::from(now);
    let skew = (now - sent).unsigned_abs();
    if skew > CLOCK_WINDOW {
        return Err(expired(
            "x-acs-date is more than 15 minutes from the server's clock",
        ));
    }
    Ok(sent.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Iso8601;

    fn at(date: &str) -> SystemTime {
        OffsetDateTime::parse(date, &Iso8601::DEFAULT)
            .unwrap()
            .into()
    }

    #[test]
    fn dates_must_be_exact_and_recent() {
        let now = at("2024-05-01T08:30:00Z");
        assert!(check_date("2024-05-01T08:30:00Z", now).is_ok());
        assert!(check_date("2024-05-01T08:44:59Z", now).is_ok());
        assert!(check_date("2024-05-01T08:15:00Z", now).is_ok());
        assert!(check_date("2024-05-01T08:45:01Z", now).is_err());
        assert!(check_date("2024-05-01T08:14:59Z", now).is_err());
        assert!(check_date("2024-05-01T08:30:00.000Z", now).is_err());
        assert!(check_date("2024-05-01 08:30:00Z", now).is_err());
        assert!(check_date("2024-13-01T08:30:00Z", now).is_err());
    }

    #[test]
    fn nonces_are_forgotten_after_the_window_of_their_date() {
        let mut window = NonceWindow::default();
        let now = at("2024-05-01T08:30:00Z");
        // Dated 14 minutes ahead (within the window): remembered until the date check alone
        // refuses it, 15 minutes after its date, not after its arrival.
        let ahead = now + Duration::from_secs(14 * 60);
        window.insert("n", ahead);
        let used = window.check("n", ahead, now + Duration::from_secs(20 * 60));
        assert_eq!(used, Err(NonceRefusal::Used));
        let later = ahead + CLOCK_WINDOW + Duration::from_secs(1);
        assert_eq!(window.check("n", ahead, later), Ok(()));
        assert_eq!(window.len(), 0);
        assert!(check_date("2024-05-01T08:44:00Z", later).is_err());
    }

    #[test]
    fn a_full_window_forgets_the_earliest_and_refuses_what_it_cannot_vouch_for() {
        let now = at("2024-05-01T08:30:00Z");
        let second = |n: u64| now - Duration::from_secs(100) + Duration::from_secs(n);
        let mut window = NonceWindow::with_capacity(3);
        for n in 0..3 {
            window.insert(&format!("n{n}"), second(n));
        }
        window.insert("n3", second(3));
        assert_eq!(window.len(), 3);
        // n0 was forgotten: it is refused as stale rather than accepted again.
        assert_eq!(window.check("n0", second(0), now), Err(NonceRefusal::Stale));
        // So is any new request dated no later than it, which might be a replay.
        assert_eq!(
            window.check("new", second(0), now),
            Err(NonceRefusal::Stale)
        );
        // The remembered ones are refused as used; later ones are accepted.
        assert_eq!(window.check("n1", second(1), now), Err(NonceRefusal::Used));
        assert_eq!(window.check("new", second(1), now), Ok(()));
        // A request dated before everything stored is not stored: the horizon covers it.
        window.insert("early", second(0));
        assert_eq!(window.len(), 3);
        assert_eq!(window.check("n1", second(1), now), Err(NonceRefusal::Used));
        // Once the horizon is out of the window, only the date check remains.
        let much_later = second(3) + CLOCK_WINDOW + Duration::from_secs(1);
        assert_eq!(window.check("fresh", much_later, much_later), Ok(()));
        assert_eq!(window.horizon, None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the traffic and however small the store: a request (its nonce and signed
        /// date) is accepted at most once within the window, the store stays within its cap,
        /// and a new request signed now is always accepted.
        #[test]
        fn no_nonce_is_accepted_twice_and_fresh_requests_flow(
            capacity in 1usize..8,
            traffic in proptest::collection::vec((0u8..16, 0u64..40), 1..300),
        ) {
            let start = at("2024-05-01T08:30:00Z");
            let mut window = NonceWindow::with_capacity(capacity);
            let mut accepted = std::collections::HashSet::new();
            for (step, (nonce, age)) in traffic.into_iter().enumerate() {
                // A second per step: 300 steps stay within one window, so nothing expires.
                let now = start + Duration::from_secs(step as u64);
                let nonce = format!("n{nonce}");
                let date = now - Duration::from_secs(age);
                if window.check(&nonce, date, now).is_ok() {
                    proptest::prop_assert!(accepted.insert((nonce.clone(), date)), "{nonce} replayed");
                    window.insert(&nonce, date);
                }
                let fresh = format!("fresh{step}");
                proptest::prop_assert_eq!(window.check(&fresh, now, now), Ok(()));
                window.insert(&fresh, now);
                accepted.insert((fresh, now));
                proptest::prop_assert!(window.len() <= capacity);
            }
        }
    }

    mod round_trip {
        use super::super::*;
        use proptest::prelude::*;
        use tower_aliyun_captcha::client::Endpoint;
        use tower_aliyun_captcha::client::request::{fresh_nonce, signed_request};
        use tower_aliyun_captcha::{CaptchaVerifyParam, Credentials, SceneId, VerifyRequest};

        const SECRET: &str = "round-trip-secret";

        fn keys(sts: bool) -> HashMap<String, KnownKey> {
            let token = sts.then(|| "token+/=".to_owned());
            HashMap::from([(
                "id".to_owned(),
                KnownKey {
                    secret: SECRET.into(),
                    security_token: token,
                    expires: None,
                },
            )])
        }

        /// A request as our client builds it, split into parts and body bytes.
        fn request(param: &str, scene: Option<&str>, sts: bool) -> (Parts, Vec<u8>) {
            let mut credentials = Credentials::new("id", SECRET);
            if sts {
                credentials = credentials.with_security_token("token+/=");
            }
            let mut verify = VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap());
            if let Some(scene) = scene {
                verify = verify.with_scene(SceneId::new(scene).unwrap());
            }
            let endpoint: Endpoint = "https://captcha.cn-shanghai.aliyuncs.com".parse().unwrap();
            let date = protocol::format_date(time::OffsetDateTime::now_utc());
            let request =
                signed_request(&endpoint, &credentials, &verify, &date, &fresh_nonce()).unwrap();
            let (parts, body) = request.into_parts();
            (parts, body.to_vec())
        }

        fn check(parts: &Parts, body: &[u8], sts: bool) -> Result<(), GatewayError> {
            let mut nonces = NonceWindow::default();
            authenticate(
                parts,
                body,
                &keys(sts),
                false,
                SystemTime::now(),
                &mut nonces,
            )
            .map(|_| ())
        }

        fn param_strategy() -> impl Strategy<Value = String> {
            "\\PC{1,200}".prop_filter("not blank", |s| !s.trim().is_empty())
        }

        fn scene_strategy() -> impl Strategy<Value = Option<String>> {
            proptest::option::of("[^\\p{Cc}]{1,40}")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn signed_requests_verify(param in param_strategy(), scene in scene_strategy(), sts: bool) {
                let (parts, body) = request(&param, scene.as_deref(), sts);
                prop_assert_eq!(check(&parts, &body, sts), Ok(()));
            }

            #[test]
            fn any_changed_body_byte_fails(param in param_strategy(), index: prop::sample::Index, flip in 1u8..=255) {
                let (parts, mut body) = request(&param, None, false);
                let at = index.index(body.len());
                body[at] ^= flip;
                prop_assert!(check(&parts, &body, false).is_err());
            }

            #[test]
            fn any_changed_signed_header_fails(param in param_strategy(), which: prop::sample::Index, extra in "[a-z0-9]{1,8}") {
                let (mut parts, body) = request(&param, Some("scene"), true);
                let signed: Vec<http::HeaderName> = parts
                    .headers
                    .keys()
                    .filter(|name| ![http::header::AUTHORIZATION, http::header::USER_AGENT, http::header::ACCEPT].contains(name))
                    .cloned()
                    .collect();
                let name = which.get(&signed).clone();
                let old = parts.headers[&name].to_str().unwrap().to_owned();
                parts.headers.insert(name, http::HeaderValue::from_str(&format!("{old}{extra}")).unwrap());
                prop_assert!(check(&parts, &body, true).is_err());
            }

            #[test]
            fn another_secret_fails(param in param_strategy(), secret in "[ -~]{1,40}") {
                prop_assume!(secret != SECRET);
                let (parts, body) = request(&param, None, false);
                let mut nonces = NonceWindow::default();
                let mut keys = keys(false);
                keys.get_mut("id").unwrap().secret = secret;
                let result = authenticate(&parts, &body, &keys, false, SystemTime::now(), &mut nonces);
                prop_assert_eq!(result.map(|_| ()).unwrap_err().code, "SignatureDoesNotMatch");
            }

            #[test]
            fn unsigned_headers_may_change(param in param_strategy(), agent in "[ -~]{0,60}") {
                let (mut parts, body) = request(&param, None, false);
                parts.headers.insert(http::header::USER_AGENT, http::HeaderValue::from_str(&agent).unwrap());
                parts.headers.insert("accept", http::HeaderValue::from_static("*/*"));
                prop_assert_eq!(check(&parts, &body, false), Ok(()));
            }
        }
    }
}
