//! What the emulated service knows and remembers, and the rules for reaching it: every lock is
//! taken here, one at a time, and never held across an await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use http::request::Parts;

use super::auth::{self, Api, GatewayError, KeyStore, KnownKey, NonceWindow};
use super::mint::{Mint, MintError};
use super::params::{self, DecodedParam, ParamStore};
use super::stats::{self, Counters};
use super::sts::StsConfig;
use super::{Clock, Faults, TestMode};
use crate::encryption::SceneKey;
use crate::{SceneId, VerifyCode};

/// The most issued credentials remembered at once; past it the ones that expire first go.
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
}

pub(crate) struct State {
    config: Config,
    /// Temporary credentials the credential services issued, accepted until they expire.
    issued: Mutex<HashMap<String, KnownKey>>,
    /// Session tokens the metadata service gave, oldest first.
    imds_tokens: Mutex<Vec<String>>,
    nonces: Mutex<NonceWindow>,
    params: Mutex<ParamStore>,
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
            config,
            issued: Mutex::default(),
            imds_tokens: Mutex::default(),
            nonces: Mutex::default(),
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
        nonces.insert(authenticated.nonce, now);
        Ok(authenticated.api)
    }

    /// Records that a param arrived; says whether one with its certify id came before.
    pub(crate) fn arrive(&self, certify_id: &str) -> bool {
        lock(&self.params).arrive(certify_id)
    }

    /// The verdict for a decoded param of a live scene (and uses it up).
    pub(crate) fn verdict(&self, param: &DecodedParam, now: SystemTime) -> VerifyCode {
        lock(&self.params).verdict(param, now)
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
        // A scene in encryption mode: the widget was started without a valid grant, so its
        // param fails whatever the person did.
        if let Some(key) = self.config.scene_keys.get(&scene) {
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
        lock(&self.params).insert(certify_id, verdict, self.now());
        stats::bump(&self.counters.params_minted);
        Ok(param)
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
    fn key(&self, id: &str) -> Option<KnownKey> {
        self.0
            .config
            .keys
            .key(id)
            .or_else(|| lock(&self.0.issued).get(id).cloned())
    }
}
