//! Params as Alibaba's front-end widget makes them, and the verdict the service gives them.
//!
//! A V3 param is base64 of a JSON object; a V2 param is the JSON object itself. Both carry the
//! `sceneId` and a `certifyId` that names the challenge; the emulator remembers every param it
//! minted by its certify id, with the verdict it was minted for, when, and whether it was used.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use tower_aliyun_captcha::VerifyCode;

/// How long a V3 param stays valid after the challenge.
pub(crate) const V3_LIFETIME: Duration = Duration::from_secs(90);
/// How long a V2 initialization record is kept.
pub(crate) const V2_LIFETIME: Duration = Duration::from_secs(20 * 60);
/// The most minted params remembered at once (a few hundred bytes each): a long load test
/// that mints faster than params expire keeps its memory bounded. Past it the older half is
/// forgotten, and a forgotten param is answered as expired, as the service answers a record
/// it no longer has: never a pass.
const MAX_PARAMS: usize = 200_000;

/// The wire format of a param.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamFormat {
    /// The V3 architecture: base64 of a JSON object (the default).
    #[default]
    V3,
    /// The V2 architecture: a JSON object.
    V2,
}

impl ParamFormat {
    fn lifetime(self) -> Duration {
        match self {
            Self::V3 => V3_LIFETIME,
            Self::V2 => V2_LIFETIME,
        }
    }

    /// The code for a param used a second time.
    fn reused(self) -> VerifyCode {
        match self {
            Self::V3 => VerifyCode::F018,
            Self::V2 => VerifyCode::F008,
        }
    }

    /// The code for a param past its lifetime, or one the service never issued.
    fn expired(self) -> VerifyCode {
        match self {
            Self::V3 => VerifyCode::F019,
            Self::V2 => VerifyCode::F014,
        }
    }
}

/// The fields the emulator reads from a decoded param.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParamFields {
    scene_id: Option<String>,
    certify_id: Option<String>,
}

/// A param taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedParam {
    pub(crate) format: ParamFormat,
    pub(crate) scene_id: String,
    pub(crate) certify_id: String,
    /// What stands for its signature (see [`signature`]).
    signature: u64,
}

/// What stands for a real param's signature: a hash of its exact text under a key random to
/// this process. The service signs what the widget sends, so a param edited in any way (its
/// scene, its token, rewritten in the other format) fails its check.
fn signature(text: &str) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one(text)
}

/// Decodes a param, or says which code the service answers for it (F002, F003, F013).
pub(crate) fn decode(param: &str) -> Result<DecodedParam, VerifyCode> {
    let param = param.trim();
    if param.is_empty() {
        return Err(VerifyCode::F002);
    }
    // A param is a few hundred bytes: decoded on the stack when it fits.
    let mut on_stack = [0u8; 1024];
    let on_heap;
    let (format, json): (_, &[u8]) = if param.starts_with('{') {
        (ParamFormat::V2, param.as_bytes())
    } else if base64::decoded_len_estimate(param.len()) <= on_stack.len() {
        let len = BASE64
            .decode_slice(param, &mut on_stack)
            .map_err(|_| VerifyCode::F003)?;
        (ParamFormat::V3, &on_stack[..len])
    } else {
        on_heap = BASE64.decode(param).map_err(|_| VerifyCode::F003)?;
        (ParamFormat::V3, &on_heap)
    };
    let fields: ParamFields = serde_json::from_slice(json).map_err(|_| VerifyCode::F003)?;
    match (fields.scene_id, fields.certify_id) {
        (Some(scene_id), Some(certify_id)) if !scene_id.is_empty() && !certify_id.is_empty() => {
            Ok(DecodedParam {
                format,
                scene_id,
                certify_id,
                signature: signature(param),
            })
        }
        _ => Err(VerifyCode::F013),
    }
}

/// Builds the text of a param for `certify_id`.
pub(crate) fn encode(format: ParamFormat, scene_id: &str, certify_id: &str) -> String {
    // Pad the token so a param has the few-hundred-byte size of a real one.
    let security_token = format!("{certify_id}{certify_id}{certify_id}{certify_id}");
    match format {
        ParamFormat::V3 => {
            let json = serde_json::json!({
                "certifyId": certify_id,
                "sceneId": scene_id,
                "isSign": true,
                "securityToken": security_token,
            });
            BASE64.encode(json.to_string())
        }
        ParamFormat::V2 => serde_json::json!({
            "sceneId": scene_id,
            "certifyId": certify_id,
            "deviceToken": BASE64.encode(format!("WEB#{certify_id}")),
            "data": BASE64.encode(security_token),
        })
        .to_string(),
    }
}

/// A param the emulator issued.
#[derive(Debug)]
struct Minted {
    /// Its text's [`signature`]: a param edited after it was made fails its check.
    signature: u64,
    verdict: VerifyCode,
    /// The page's `UserCertifyId`, which the verdict reports instead of the param's own id.
    user_certify_id: Option<String>,
    minted_at: SystemTime,
    used: bool,
    /// How many verification requests carried it, faulted or not.
    arrivals: u32,
}

/// Every param issued and not yet forgotten.
#[derive(Debug, Default)]
pub(crate) struct ParamStore {
    minted: HashMap<String, Minted>,
    /// A smaller cap than `MAX_PARAMS`, to reach it in tests.
    #[cfg(test)]
    capacity: Option<usize>,
}

impl ParamStore {
    /// Records a new param's challenge: `text` is the param as minted.
    pub(crate) fn insert(
        &mut self,
        certify_id: String,
        text: &str,
        verdict: VerifyCode,
        user_certify_id: Option<String>,
        now: SystemTime,
    ) {
        self.forget_older_than(now, V2_LIFETIME);
        if self.minted.len() >= self.capacity() {
            self.forget_older_half();
        }
        self.minted.insert(
            certify_id,
            Minted {
                signature: signature(text),
                verdict,
                user_certify_id,
                minted_at: now,
                used: false,
                arrivals: 0,
            },
        );
    }

    /// The `CertifyId` a verdict on the param reports: the page's own, when it gave one.
    pub(crate) fn reported_certify_id(&self, certify_id: &str) -> Option<String> {
        self.minted
            .get(certify_id)
            .and_then(|minted| minted.user_certify_id.clone())
    }

    /// Counts a request carrying the param; true when it was seen before.
    pub(crate) fn arrive(&mut self, certify_id: &str) -> bool {
        match self.minted.get_mut(certify_id) {
            Some(minted) => {
                minted.arrivals += 1;
                minted.arrivals > 1
            }
            None => false,
        }
    }

    /// The verdict for a decoded param; uses the param up.
    pub(crate) fn verdict(&mut self, param: &DecodedParam, now: SystemTime) -> VerifyCode {
        let Some(minted) = self.minted.get_mut(&param.certify_id) else {
            return param.format.expired();
        };
        if minted.signature != param.signature {
            // Edited after it was made (its scene, its token, its format): its signature does
            // not hold. Not used up.
            return VerifyCode::F003;
        }
        if minted.used {
            return param.format.reused();
        }
        minted.used = true;
        let age = now.duration_since(minted.minted_at).unwrap_or_default();
        if age > param.format.lifetime() {
            return param.format.expired();
        }
        minted.verdict.clone()
    }

    fn capacity(&self) -> usize {
        #[cfg(test)]
        if let Some(capacity) = self.capacity {
            return capacity;
        }
        MAX_PARAMS
    }

    /// Forgets the params minted before the median: O(n), once every n/2 mints.
    fn forget_older_half(&mut self) {
        let mut times: Vec<SystemTime> = self.minted.values().map(|m| m.minted_at).collect();
        let middle = times.len() / 2;
        let (_, &mut median, _) = times.select_nth_unstable(middle);
        self.minted.retain(|_, minted| minted.minted_at > median);
    }

    fn forget_older_than(&mut self, now: SystemTime, lifetime: Duration) {
        // Sweep only now and then: a full pass on every mint would cost O(n) each time.
        if self.minted.len() % 1024 == 1023 {
            self.minted.retain(|_, minted| {
                now.duration_since(minted.minted_at).unwrap_or_default() <= lifetime * 2
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_at_most_its_capacity_and_forgets_the_oldest() {
        let mut store = ParamStore {
            capacity: Some(100),
            ..ParamStore::default()
        };
        let start = SystemTime::now();
        let text = |cid: &str| encode(ParamFormat::V3, "scene1", cid);
        for i in 0..1000u64 {
            let at = start + Duration::from_millis(i);
            let cid = format!("cid{i}");
            store.insert(cid.clone(), &text(&cid), VerifyCode::T001, None, at);
            assert!(
                store.minted.len() <= 100,
                "{} after {i}",
                store.minted.len()
            );
        }
        let now = start + Duration::from_secs(1);
        let decoded = |cid: &str| decode(&text(cid)).unwrap();
        // The newest still pass; a forgotten one is expired, never a pass.
        assert_eq!(store.verdict(&decoded("cid999"), now), VerifyCode::T001);
        assert_eq!(store.verdict(&decoded("cid0"), now), VerifyCode::F019);
    }

    #[test]
    fn both_formats_round_trip() {
        for format in [ParamFormat::V3, ParamFormat::V2] {
            let text = encode(format, "scene1", "cid");
            let decoded = decode(&text).unwrap();
            assert_eq!(decoded.format, format);
            assert_eq!(decoded.scene_id, "scene1");
            assert_eq!(decoded.certify_id, "cid");
        }
    }

    #[test]
    fn undecodable_params_get_their_codes() {
        assert_eq!(decode(""), Err(VerifyCode::F002));
        assert_eq!(decode("!!not base64!!"), Err(VerifyCode::F003));
        assert_eq!(decode("{not json"), Err(VerifyCode::F003));
        assert_eq!(decode(&BASE64.encode("[1,2]")), Err(VerifyCode::F003));
        assert_eq!(decode(r#"{"sceneId":"s"}"#), Err(VerifyCode::F013));
        // Too long for the stack: decoded on the heap, the same way.
        let long = BASE64.encode(format!(
            r#"{{"sceneId":"s","certifyId":"c","pad":"{}"}}"#,
            "x".repeat(2000)
        ));
        assert_eq!(decode(&long).unwrap().certify_id, "c");
        assert_eq!(decode(&format!("{long}!")), Err(VerifyCode::F003));
    }

    #[test]
    fn a_param_is_single_use_and_expires() {
        let mut store = ParamStore::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v3 = |id: &str| encode(ParamFormat::V3, "s", id);
        store.insert("a".into(), &v3("a"), VerifyCode::T001, None, start);
        store.insert("b".into(), &v3("b"), VerifyCode::T001, None, start);
        let verdict =
            |store: &mut ParamStore, id: &str, at| store.verdict(&decode(&v3(id)).unwrap(), at);
        assert_eq!(verdict(&mut store, "a", start), VerifyCode::T001);
        assert_eq!(verdict(&mut store, "a", start), VerifyCode::F018);
        let late = start + V3_LIFETIME + Duration::from_secs(1);
        assert_eq!(verdict(&mut store, "b", late), VerifyCode::F019);
        assert_eq!(verdict(&mut store, "never", start), VerifyCode::F019);
    }

    #[test]
    fn a_param_edited_in_any_way_fails_and_is_not_used_up() {
        let mut store = ParamStore::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let minted = encode(ParamFormat::V3, "login", "a");
        store.insert("a".into(), &minted, VerifyCode::T001, None, start);
        let forged_token = BASE64.encode(
            serde_json::json!({"certifyId": "a", "sceneId": "login", "securityToken": "forged"})
                .to_string(),
        );
        for edited in [
            encode(ParamFormat::V3, "signup", "a"),
            forged_token,
            // Rewritten as V2, whose records live 20 minutes: a V3 challenge lives 90 s.
            encode(ParamFormat::V2, "login", "a"),
        ] {
            let decoded = decode(&edited).unwrap();
            assert_eq!(store.verdict(&decoded, start), VerifyCode::F003, "{edited}");
        }
        // Surrounding white space is no edit (the service trims it).
        let late = start + V3_LIFETIME + Duration::from_secs(1);
        let padded = decode(&format!(" {minted}\n")).unwrap();
        assert_eq!(store.verdict(&padded, late), VerifyCode::F019);
    }
}
