//! V3 encryption mode: the `EncryptedSceneId` a server gives its page, so that only pages it
//! served can start a captcha of an encrypted scene.
//!
//! With encryption mode switched on for a scene in the Captcha 2.0 console, the widget must be
//! initialised with `EncryptedSceneId` as well as `SceneId`, and verifications whose
//! `EncryptedSceneId` is missing, forged or expired fail with F022. The server makes it from
//! the scene id, the time and a lifetime, encrypted with the account's encrypt key (the
//! "ekey" on the console's overview page):
//! Base64(IV ‖ AES-256-CBC-PKCS#7(`sceneId&timestamp&expireTime`)), a fresh random 16-byte IV
//! each time, the timestamp in Unix seconds, the lifetime 1 to 86,400 seconds.
//! [`SceneKey`] makes one.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

use crate::SceneId;

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// The longest lifetime of an `EncryptedSceneId` the service accepts.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(86_400);

const IV_LEN: usize = 16;

/// An account's encrypt key (ekey): 32 bytes, given by the console in Base64. Its `Debug`
/// output hides it.
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::encryption::SceneKey;
///
/// // From the console, e.g. through an environment variable; this one is an example.
/// let key = SceneKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
/// let scene = SceneId::new("1ezx8pyn")?;
/// let for_the_page = key.encrypted_scene_id(&scene, Duration::from_secs(3600))?;
/// // Put it in the page's `initAliyunCaptcha({SceneId, EncryptedSceneId, …})`.
/// // A fresh one for every page served: each has a random IV.
/// assert_ne!(for_the_page, key.encrypted_scene_id(&scene, Duration::from_secs(3600))?);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SceneKey([u8; 32]);

impl SceneKey {
    /// The key as the console shows it: Base64 of 32 bytes.
    pub fn from_base64(ekey: &str) -> Result<Self, EncryptionError> {
        let bytes = BASE64
            .decode(ekey.trim())
            .map_err(|_| EncryptionError::Key)?;
        bytes.try_into().map(Self).map_err(|_| EncryptionError::Key)
    }

    /// The key's 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// A fresh random key, as Base64 (for tests and the emulator; production keys come from
    /// the console).
    pub fn generate() -> Result<String, EncryptionError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| EncryptionError::Random)?;
        Ok(BASE64.encode(key))
    }

    /// An `EncryptedSceneId` for `scene`, valid for `lifetime` (1 s to 24 hours) from
    /// now.
    pub fn encrypted_scene_id(
        &self,
        scene: &SceneId,
        lifetime: Duration,
    ) -> Result<String, EncryptionError> {
        if lifetime < Duration::from_secs(1) || lifetime > MAX_LIFETIME {
            return Err(EncryptionError::Lifetime);
        }
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).map_err(|_| EncryptionError::Random)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| EncryptionError::Clock)?;
        Ok(self.encrypt(scene.as_str(), now.as_secs(), lifetime.as_secs(), iv))
    }

    /// The `EncryptedSceneId` for these exact inputs.
    pub(crate) fn encrypt(
        &self,
        scene: &str,
        timestamp: u64,
        lifetime: u64,
        iv: [u8; 16],
    ) -> String {
        let plaintext = format!("{scene}&{timestamp}&{lifetime}");
        let ciphertext = Encryptor::new(&self.0.into(), &iv.into())
            .encrypt_padded_vec::<Pkcs7>(plaintext.as_bytes());
        let mut token = Vec::with_capacity(IV_LEN + ciphertext.len());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        BASE64.encode(token)
    }

    /// What an `EncryptedSceneId` holds, if this key made it: what Alibaba's service checks,
    /// for the emulator crate. Not an API of its own.
    #[doc(hidden)]
    pub fn decrypt(&self, token: &str) -> Option<SceneGrant> {
        let bytes = BASE64.decode(token.trim()).ok()?;
        if bytes.len() <= IV_LEN {
            return None;
        }
        let (iv, ciphertext) = bytes.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().ok()?;
        let plaintext = Decryptor::new(&self.0.into(), &iv.into())
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
            .ok()?;
        let text = String::from_utf8(plaintext).ok()?;
        let mut parts = text.rsplitn(3, '&');
        let lifetime = parts.next()?.parse().ok()?;
        let timestamp = parts.next()?.parse().ok()?;
        let scene = parts.next()?.to_owned();
        Some(SceneGrant {
            scene,
            timestamp,
            lifetime,
        })
    }
}

impl fmt::Debug for SceneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SceneKey(<redacted>)")
    }
}

/// What a decrypted `EncryptedSceneId` says (for the emulator crate).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneGrant {
    /// The scene granted.
    pub scene: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// Seconds.
    pub lifetime: u64,
}

impl SceneGrant {
    /// Whether it grants `scene` at `now` (Unix seconds): made no later than now (the service
    /// refuses timestamps from the future), within the documented lifetime, not expired.
    pub fn grants(&self, scene: &str, now: u64) -> bool {
        self.scene == scene
            && self.timestamp <= now
            && (1..=MAX_LIFETIME.as_secs()).contains(&self.lifetime)
            && now <= self.timestamp.saturating_add(self.lifetime)
    }
}

/// Why an `EncryptedSceneId` could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptionError {
    /// The key is not Base64 of 32 bytes.
    Key,
    /// The lifetime is not between 1 and 86,400 seconds.
    Lifetime,
    /// The operating system's random source failed.
    Random,
    /// The clock is before 1970.
    Clock,
}

impl fmt::Display for EncryptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => {
                "the encrypt key (ekey) must be Base64 of 32 bytes, as the console shows it"
            }
            Self::Lifetime => "the lifetime of an EncryptedSceneId is 1 to 86400 seconds",
            Self::Random => "the operating system's random source failed",
            Self::Clock => "the system clock is before 1970",
        })
    }
}

impl std::error::Error for EncryptionError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors as vectors;

    /// Cases computed independently with Python's `cryptography` (see the vectors' README).
    #[test]
    fn reproduces_the_independent_vectors() {
        let doc = vectors::encrypted_scene_ids();
        let key = SceneKey::from_base64(doc["ekey"].as_str().unwrap()).unwrap();
        let iv: [u8; 16] = hex::decode(doc["iv_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        for case in doc["cases"].as_array().unwrap() {
            let scene = case["scene_id"].as_str().unwrap();
            let (timestamp, lifetime) = (
                case["timestamp"].as_u64().unwrap(),
                case["expire_time"].as_u64().unwrap(),
            );
            let token = key.encrypt(scene, timestamp, lifetime, iv);
            assert_eq!(
                token,
                case["encrypted_scene_id"].as_str().unwrap(),
                "{scene}"
            );
            let grant = key.decrypt(&token).unwrap();
            assert_eq!(
                grant,
                SceneGrant {
                    scene: scene.to_owned(),
                    timestamp,
                    lifetime
                }
            );
        }
    }

    #[test]
    fn a_fresh_id_round_trips_and_expires() {
        let key = SceneKey::from_base64(&SceneKey::generate().unwrap()).unwrap();
        let scene = SceneId::new("scene&with&ampersands").unwrap();
        let token = key
            .encrypted_scene_id(&scene, Duration::from_secs(60))
            .unwrap();
        let grant = key.decrypt(&token).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(grant.grants(scene.as_str(), now));
        assert!(grant.grants(scene.as_str(), now + 59));
        assert!(!grant.grants(scene.as_str(), now + 120), "expired");
        assert!(!grant.grants("other", now), "another scene");
        assert!(
            !grant.grants(scene.as_str(), grant.timestamp - 1),
            "from the future"
        );
        // Another key, a flipped byte, garbage: nothing.
        let other = SceneKey::from_bytes([9; 32]);
        assert!(
            other
                .decrypt(&token)
                .is_none_or(|g| !g.grants(scene.as_str(), now))
        );
        let mut bytes = BASE64.decode(&token).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(
            key.decrypt(&BASE64.encode(bytes))
                .is_none_or(|g| !g.grants(scene.as_str(), now))
        );
        assert!(key.decrypt("").is_none());
        assert!(key.decrypt("%%%").is_none());
        // Two ids for the same inputs differ: the IV is fresh each time.
        assert_ne!(
            token,
            key.encrypted_scene_id(&scene, Duration::from_secs(60))
                .unwrap()
        );
    }
}
