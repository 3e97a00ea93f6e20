//! What the emulated service knows and remembers, and the rules for reaching it: every lock is
//! taken here, one at a time, and never held across an await.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use http::request::Parts;

use super::access::{self, AllowedHost, Origin, Refusal};
use super::auth::{self, Api, GatewayError, KeyStore, KnownKey, NonceWindow};
use super::mint::{Mint, MintError};
use super::params::{self, DecodedParam, ParamFormat, ParamStore};
use super::stats::{self, Counters};
use super::{Clock, Faults, TestMode};
use tower_aliyun_captcha::encryption::SceneKey;
use tower_aliyun_captcha::{SceneId, VerifyCode};

/// The most issued credentials remembered at once (a few hundred bytes each); past it the ones
/// that expire first are forgotten, and a client still holding them is refused as with an
/// unknown key until it fetches new ones. Memory stays bounded; nothing is let in.
const MAX_ISSUED: usize = 4096;
/// The most metadata-service session tokens remembered; past it the oldest go.
const MAX_IMDS_TOKENS: usize = 1024;

/// How a configured scene answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SceneKind {
    /// By the verdict each param was minted with.
    Live,
    /// Every param the same way.
    Test(TestMode),
}

/// Everything the builder configured, fixed once the emulator runs.
pub(crate) struct Config {
    pub(crate) keys: HashMap<String, KnownKey>,
    pub(crate) scenes: Vec<(SceneId, SceneKind)>,
    pub(crate) scene_keys: HashMap<SceneId, SceneKey>,
    pub(crate) sts: StsConfig,
    pub(crate) clock: Clock,
    /// The address it listens on: its API answers requests for it.
    pub(crate) listen: SocketAddr,
    /// Other names its API answers for.
    pub(crate) hosts: Vec<AllowedHost>,
    /// The pages that may call its API from the start.
    pub(crate) origins: Vec<Origin>,
    /// The most nonces remembered (`auth::MAX_NONCES` but in tests).
    pub(crate) nonce_capacity: usize,
}

pub(crate) struct State {
    config: Config,
    /// Temporary credentials the credential services issued, accepted until they expire.
    issued: Mutex<HashMap<String, KnownKey>>,
    /// Session tokens the metadata service gave, oldest first.
    imds_tokens: Mutex<Vec<String>>,
    nonces: Mutex<NonceWindow>,
    params: Mutex<ParamStore>,
    /// The pages that may call the emulator's API; more may be allowed while it runs.
    origins: Mutex<Vec<Origin>>,
    faults: Mutex<Faults>,
    pub(crate) counters: Counters,
}

/// A poisoned lock still holds consistent data here (each critical section is one update).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            nonces: Mutex::new(NonceWindow::with_capacity(config.nonce_capacity)),
            origins: Mutex::new(config.origins.clone()),
            config,
            issued: Mutex::default(),
            imds_tokens: Mutex::default(),
            params: Mutex::default(),
            faults: Mutex::default(),
            counters: Counters::default(),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        (self.config.clock)()
    }

    pub(crate) fn sts(&self) -> &StsConfig {
        &self.config.sts
    }

    /// How scene `id` answers, if it is configured.
    pub(crate) fn scene(&self, id: &str) -> Option<SceneKind> {
        self.config
            .scenes
            .iter()
            .find(|(scene, _)| scene.as_str() == id)
            .map(|(_, kind)| *kind)
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// The gateway's checks, in its order; a request that passes uses up its nonce.
    pub(crate) fn authenticate(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Api, GatewayError> {
        let mut nonces = lock(&self.nonces);
        let keys = Keys(self);
        let authenticated = auth::authenticate(
            parts,
            body,
            &keys,
            self.sts().sts_enabled(),
            now,
            &mut nonces,
        )?;
        nonces.insert(authenticated.nonce, authenticated.date);
        Ok(authenticated.api)
    }

    /// Whether a request that arrived on `local` may use the emulator's API; the origin to
    /// allow in CORS headers when it comes from an allowed page.
    pub(crate) fn admit(
        &self,
        parts: &Parts,
        local: SocketAddr,
    ) -> Result<Option<HeaderValue>, Refusal> {
        let origins = lock(&self.origins);
        let site = access::Site {
            listen: self.config.listen,
            local,
            hosts: &self.config.hosts,
            origins: &origins,
        };
        access::admit(parts, &site)
    }

    /// Lets pages from `origin` call the emulator's API.
    pub(crate) fn allow_origin(&self, origin: Origin) {
        let mut origins = lock(&self.origins);
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }

    /// Records that a param arrived; says whether one with its certify id came before.
    pub(crate) fn arrive(&self, certify_id: &str) -> bool {
        lock(&self.params).arrive(certify_id)
    }

    pub(crate) fn mint(&self, mint: Mint) -> Result<String, MintError> {
        let scene = match mint.scene() {
            Some(scene) => scene.clone(),
            None => self
                .config
                .scenes
                .first()
                .map(|(id, _)| id.clone())
                .ok_or(MintError::NoScene)?,
        };
        let mut verdict = mint.code().clone();
        if let VerifyCode::Unknown(code) = verdict {
            return Err(MintError::UnknownVerdict(code));
        }
        if let Some(id) = mint.certify_id()
            && !super::mint::is_user_certify_id(id)
        {
            return Err(MintError::InvalidCertifyId(id.to_owned()));
        }
        // A scene in encryption mode: the widget was started without a valid grant, so its
        // param fails whatever the person did. Encryption mode is V3's: a V2 widget sends no
        // EncryptedSceneId, and its params are not checked for one.
        if mint.param_format() == ParamFormat::V3
            && let Some(key) = self.config.scene_keys.get(&scene)
        {
            let now = self
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let granted = mint
                .encrypted_scene_id_token()
                .and_then(|token| key.decrypt(token))
                .is_some_and(|grant| grant.grants(scene.as_str(), now));
            if !granted {
                verdict = VerifyCode::F022;
            }
        }
        let certify_id = uuid::Uuid::new_v4().simple().to_string();
        let param = params::encode(mint.param_format(), scene.as_str(), &certify_id);
        let user_certify_id = mint.certify_id().map(str::to_owned);
        lock(&self.params).insert(certify_id, &param, verdict, user_certify_id, self.now());
        stats::bump(&self.counters.params_minted);
        Ok(param)
    }

    /// The page's `UserCertifyId`, when it gave one: what a verdict on `param` reports as its
    /// `CertifyId` instead of the param's own.
    pub(crate) fn user_certify_id(&self, param: &DecodedParam) -> Option<String> {
        lock(&self.params).reported_certify_id(&param.certify_id)
    }

    /// The verdict for a decoded param of a live scene (and uses it up), and
    /// [`user_certify_id`](Self::user_certify_id), under one lock.
    pub(crate) fn verdict_and_user_certify_id(
        &self,
        param: &DecodedParam,
        now: SystemTime,
    ) -> (VerifyCode, Option<String>) {
        let mut params = lock(&self.params);
        let user_certify_id = params.reported_certify_id(&param.certify_id);
        (params.verdict(param, now), user_certify_id)
    }

    /// Remembers credentials the emulator issued, forgetting what expired a while ago, and
    /// the soonest to expire when the store is full.
    pub(crate) fn remember_issued(&self, id: String, key: KnownKey) {
        let now = self.now();
        let mut store = lock(&self.issued);
        store.retain(|_, key| {
            key.expires
                .is_none_or(|e| e + Duration::from_secs(60) > now)
        });
        if store.len() >= MAX_ISSUED
            && let Some(first) = store
                .iter()
                .min_by_key(|(_, key)| key.expires)
                .map(|(id, _)| id.clone())
        {
            store.remove(&first);
        }
        store.insert(id, key);
        stats::bump(&self.counters.credentials_issued);
    }

    /// A fresh metadata-service session token.
    pub(crate) fn new_imds_token(&self) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut tokens = lock(&self.imds_tokens);
        if tokens.len() >= MAX_IMDS_TOKENS {
            tokens.remove(0);
        }
        tokens.push(token.clone());
        token
    }

    pub(crate) fn knows_imds_token(&self, token: &str) -> bool {
        lock(&self.imds_tokens).iter().any(|known| known == token)
    }
}

/// The static keys, then the issued ones.
struct Keys<'a>(&'a State);

impl KeyStore for Keys<'_> {
    fn key(&self, id: &str) -> Option<std::borrow::Cow<'_, KnownKey>> {
        self.0.config.keys.key(id).or_else(|| {
            lock(&self.0.issued)
                .get(id)
                .cloned()
                .map(std::borrow::Cow::Owned)
        })
    }
}

/// What the emulator's credential services are configured with.
#[derive(Debug, Clone, Default)]
pub(crate) struct StsConfig {
    /// Role ARNs that `AssumeRole` and `AssumeRoleWithOIDC` may assume.
    pub(crate) roles: Vec<String>,
    /// OIDC provider ARNs and the token each accepts.
    pub(crate) oidc: HashMap<String, String>,
    /// The ECS instance's role, for the metadata service.
    pub(crate) instance_role: Option<String>,
    /// The longest life of issued credentials, whatever was asked.
    pub(crate) max_lifetime: Option<Duration>,
    /// Whether the metadata service refuses requests that carry a session token (and so
    /// answers those without one), switched at run time by tests.
    pub(crate) metadata_refuses_tokens: Switch,
}

/// A flag that can be switched while the emulator runs; a copy starts with the value copied.
#[derive(Debug, Default)]
pub(crate) struct Switch(AtomicBool);

impl Switch {
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

impl Clone for Switch {
    fn clone(&self) -> Self {
        Self(AtomicBool::new(self.is_on()))
    }
}

impl StsConfig {
    pub(crate) fn sts_enabled(&self) -> bool {
        !self.roles.is_empty()
    }

    pub(crate) fn any(&self) -> bool {
        self.sts_enabled() || self.instance_role.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    use super::*;
    use crate::{Emulator, Mint};
    use tower_aliyun_captcha::client::Endpoint;
    use tower_aliyun_captcha::client::request::signed_request;
    use tower_aliyun_captcha::protocol;
    use tower_aliyun_captcha::{CaptchaVerifyParam, Credentials, VerifyRequest};

    fn config() -> Config {
        Config {
            keys: HashMap::new(),
            scenes: Vec::new(),
            scene_keys: HashMap::new(),
            sts: StsConfig::default(),
            clock: Arc::new(SystemTime::now),
            listen: "127.0.0.1:1".parse().unwrap(),
            hosts: Vec::new(),
            origins: Vec::new(),
            nonce_capacity: 16,
        }
    }

    #[test]
    fn the_issued_key_store_keeps_to_its_cap_forgetting_the_soonest_to_expire() {
        let state = State::new(config());
        let now = state.now();
        let key = |expires_in: u64| KnownKey {
            secret: "s".into(),
            security_token: Some("t".into()),
            expires: Some(now + Duration::from_secs(expires_in)),
        };
        // The first key issued lives longest; each later one a second less.
        let total = MAX_ISSUED + 10;
        for n in 0..total {
            state.remember_issued(format!("STS.{n}"), key(100_000 - n as u64));
        }
        let store = lock(&state.issued);
        assert_eq!(store.len(), MAX_ISSUED);
        // The ten soonest to expire (the last issued but one at each step) are gone; the
        // longest-lived and the newest are kept.
        assert!(store.contains_key("STS.0"));
        assert!(store.contains_key(&format!("STS.{}", total - 1)));
        let forgotten = (0..total)
            .filter(|n| !store.contains_key(&format!("STS.{n}")))
            .count();
        assert_eq!(forgotten, 10);
        drop(store);
        assert_eq!(state.counters.snapshot().credentials_issued, total as u64);
    }

    /// Over a socket: a nonce store of four keeps answering a stream of requests past its cap,
    /// refuses the replay of a request whose nonce it forgot (as stale) or remembers (as used),
    /// and any new request dated before what it forgot.
    #[tokio::test]
    async fn a_capped_nonce_store_keeps_answering_and_never_accepts_a_replay() {
        const SECRET: &str = "nonce-cap-secret";
        let now = SystemTime::now();
        let emulator = Emulator::builder()
            .access_key("nonce-cap-id", SECRET)
            .scene("s")
            .clock(move || now)
            .nonce_capacity(4)
            .start("127.0.0.1:0")
            .await
            .unwrap();
        let endpoint: Endpoint = emulator.url().parse().unwrap();
        let credentials = Credentials::new("nonce-cap-id", SECRET);
        let http: HttpClient<HttpConnector, Full<Bytes>> =
            HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
        // A request signed `age` seconds before the emulator's clock, with `nonce`.
        let signed = |age: u64, nonce: &str| {
            let param = emulator.mint(Mint::pass()).unwrap();
            let request = VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap());
            let date = protocol::format_date((now - Duration::from_secs(age)).into());
            signed_request(&endpoint, &credentials, &request, &date, nonce).unwrap()
        };
        let send = async |request: &http::Request<Bytes>| {
            let response = http.request(request.clone().map(Full::new)).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            body["Result"]["VerifyCode"]
                .as_str()
                .or(body["Code"].as_str())
                .unwrap_or_default()
                .to_owned()
        };

        // Twelve requests, a second apart in their dates: three times the cap, all answered.
        let mut sent = Vec::new();
        for n in 0..12 {
            let request = signed(120 - n, &format!("nonce-{n}"));
            assert_eq!(send(&request).await, "T001", "request {n}");
            sent.push(request);
        }
        // The first was forgotten: its replay is stale, not accepted (its param would be
        // F018 anyway; the gateway refuses before the service sees it).
        assert_eq!(send(&sent[0]).await, "InvalidTimeStamp.Expired");
        // The last is remembered: its replay is a used nonce.
        assert_eq!(send(&sent[11]).await, "SignatureNonceUsed");
        // A new request dated before what was forgotten might be a replay: refused.
        assert_eq!(
            send(&signed(115, "new-but-old")).await,
            "InvalidTimeStamp.Expired"
        );
        // One signed now is answered.
        assert_eq!(send(&signed(0, "new")).await, "T001");
        assert_eq!(lock(&emulator.state.nonces).len(), 4);
        assert_eq!(emulator.stats().verdicts["T001"], 13);
    }
}
