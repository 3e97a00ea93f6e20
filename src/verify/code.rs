//! `VerifyCode`: the table of codes the service answers, with their meanings.

use std::fmt;
use std::str::FromStr;

macro_rules! verify_codes {
    ($($code:ident => $meaning:literal,)*) => {
        /// `Result.VerifyCode`: why a param passed (`T…`) or failed (`F…`).
        ///
        /// ```
        /// use tower_aliyun_captcha::VerifyCode;
        ///
        /// let code: VerifyCode = "F018".parse().unwrap();
        /// assert_eq!(code, VerifyCode::F018);
        /// assert!(!code.is_pass());
        /// assert_eq!(code.as_str(), "F018");
        /// assert_eq!(VerifyCode::from("X999"), VerifyCode::Unknown("X999".into()));
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum VerifyCode {
            $(#[doc = $meaning] $code,)*
            /// A code this version of the crate does not know.
            Unknown(String),
        }

        impl VerifyCode {
            /// Every code this version of the crate knows, in the API document's order.
            pub const KNOWN: &'static [VerifyCode] = &[$(Self::$code,)*];

            /// The code as Alibaba writes it, e.g. `"T001"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$code => stringify!($code),)*
                    Self::Unknown(code) => code,
                }
            }

            /// What the code means, for developers and logs.
            pub fn meaning(&self) -> &'static str {
                match self {
                    $(Self::$code => $meaning,)*
                    Self::Unknown(_) => "A verification code not known to this crate.",
                }
            }
        }

        impl From<&str> for VerifyCode {
            fn from(code: &str) -> Self {
                match code {
                    $(stringify!($code) => Self::$code,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

verify_codes! {
    T001 => "Passed server-side verification.",
    T005 => "Passed: the scene is in test mode, which passes every param.",
    T006 => "Passed: a whitelist policy in the console let it through.",
    F001 => "Blocked by the risk policy as a likely attack.",
    F002 => "The param is empty.",
    F003 => "The param is not in a valid format.",
    F004 => "Failed: the scene is in test mode, which fails every param.",
    F005 => "The scene id inside the param is not valid.",
    F006 => "The scene id inside the param does not belong to this account.",
    F008 => "The param was already verified once; each param is single-use.",
    F009 => "A virtual machine, emulator or simulated browser was detected.",
    F010 => "Too many requests from this IP address.",
    F011 => "Too many requests from this device.",
    F012 => "The server's SceneId does not match the scene the front end used.",
    F013 => "The param lacks required fields.",
    F014 => "No initialization record: it expired after 20 minutes, or never existed.",
    F015 => "The person did not complete the challenge (e.g. the slider was misplaced).",
    F016 => "Failed the URL check of a custom policy.",
    F017 => "Abnormal protocol or parameters; likely an attack.",
    F018 => "The V3 param was already used.",
    F019 => "The V3 param is over 90 seconds old, or no challenge preceded it.",
    F020 => "The V3 param does not match the scene or the user.",
    F022 => "The V3 encryption-mode check failed: EncryptedSceneId is missing, not valid or expired.",
    F024 => "Automation simulating clicks or slides was detected.",
}

impl VerifyCode {
    /// Whether the code is a pass (`T…`).
    pub fn is_pass(&self) -> bool {
        self.as_str().starts_with('T')
    }

    /// What the code says about the setup rather than the person: its kind (for aggregating
    /// warnings) and the fix. A scene that does not exist or belongs to another account or
    /// page, test mode, encryption mode. `None` for a person's (or a bot's) failure.
    pub(crate) fn setup_problem(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::T005 => (
                "test_mode",
                "the scene is in test mode (T005 passes every param): switch it to production \
                 in the Captcha 2.0 console, or allow_test_mode(true) outside production",
            ),
            Self::F004 => (
                "test_mode",
                "the scene is in test mode (F004 fails every param): switch it to production \
                 in the Captcha 2.0 console",
            ),
            Self::F005 => (
                "scene_unknown",
                "the page's SceneId does not exist: copy the scene id from the Captcha 2.0 \
                 console into the page",
            ),
            Self::F006 => (
                "scene_of_another_account",
                "the page's scene belongs to another Alibaba Cloud account than the server's \
                 AccessKey: use one account's scene and key",
            ),
            Self::F012 | Self::F020 => (
                "scene_mismatch",
                "the param was made for another scene than this route verifies: give the page \
                 and the route the same SceneId (a login page's param sent to the signup route \
                 does this too)",
            ),
            Self::F022 => (
                "encryption_mode",
                "the scene is in encryption mode and the page sent no valid EncryptedSceneId: \
                 give the page a fresh one from SceneKey::encrypted_scene_id, or turn encryption \
                 mode off in the console",
            ),
            _ => return None,
        })
    }
}

impl FromStr for VerifyCode {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s))
    }
}

impl fmt::Display for VerifyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in [
            "T001", "T005", "T006", "F001", "F002", "F003", "F004", "F005", "F006", "F008", "F009",
            "F010", "F011", "F012", "F013", "F014", "F015", "F016", "F017", "F018", "F019", "F020",
            "F022", "F024",
        ] {
            let parsed = VerifyCode::from(code);
            assert!(
                !matches!(parsed, VerifyCode::Unknown(_)),
                "{code} is unknown"
            );
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.is_pass(), code.starts_with('T'));
            assert!(!parsed.meaning().is_empty());
        }
        assert_eq!(VerifyCode::from("F007"), VerifyCode::Unknown("F007".into()));
    }
}
