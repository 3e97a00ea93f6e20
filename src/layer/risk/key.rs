//! What the risk signals are counted under: fixed-size digests of (signal, route, window,
//! subject), so that a store holds no account name or address in clear, and an entry takes the
//! same room whatever the request sent (a megabyte of user name is 16 bytes here).
//!
//! - **Accounts** are compared in Unicode's compatibility form, without case, surrounding
//!   white space, combining marks, controls or invisible characters (see `fold`). An app whose names are case-sensitive counts `Alice` and
//!   `alice` together: a victim is asked for the captcha a little sooner, never later, and an
//!   attacker cannot spread guesses over spellings an app may read as one name.
//! - **Addresses**: IPv4 as is (IPv4-mapped IPv6 too); **IPv6 by its /64**, the prefix one
//!   subscriber is given. Counting single IPv6 addresses would hand an attacker 2^64 fresh
//!   counters.
//! - **The route's global count** has one key per scene.
//!
//! Digests are HMAC-SHA256 under a key, truncated to 128 bits. Instances that share a store
//! must share the key; with a key of its own that the store's operator does not hold, the
//! store's contents cannot be matched against a list of user names (with a key known to all,
//! such as an empty one, they can: pseudonyms, not anonymity).

use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::window::Window;

/// The three signals a request is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Signal {
    Account,
    Ip,
    Global,
}

impl Signal {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Redis keys and errors.
    /// A short name, for store keys and labels.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Ip => "ip",
            Self::Global => "global",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Account => 1,
            Self::Ip => 2,
            Self::Global => 3,
        }
    }
}

/// One counter a store keeps: which signal, whose (a digest), over which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tally {
    pub(crate) signal: Signal,
    pub(crate) digest: [u8; 16],
    pub(crate) window: Window,
}

impl Tally {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Redis keys and errors.
    /// The digest in lower-case hex, for stores whose keys are text.
    pub(crate) fn hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// The counters one request touches: its account's and its address's when known, and always
/// its route's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) account: Option<Tally>,
    pub(crate) ip: Option<Tally>,
    pub(crate) global: Tally,
}

impl Keys {
    /// Every counter of the request: account, address, route, those present.
    pub(crate) fn tallies(&self) -> impl Iterator<Item = &Tally> {
        self.account
            .iter()
            .chain(self.ip.iter())
            .chain([&self.global])
    }

    /// The longest window among them.
    pub(crate) fn longest_window(&self) -> Window {
        self.tallies()
            .map(|t| t.window)
            .max_by_key(|w| w.secs())
            .unwrap_or(self.global.window)
    }
}

/// The windows of the three signals (from the thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    pub(crate) account: Window,
    pub(crate) ip: Window,
    pub(crate) global: Window,
}

/// The characters an account name is counted by, so that spellings an app (or its database's
/// collation) may read as one name share one count: in Unicode's compatibility decomposition
/// (fullwidth, circled, mathematical and superscript letters as plain ones), lower-cased, with
/// the letters collations take for others spelt as those (`ß` as `ss`, `æ` as `ae`, `ı` and
/// `ø` as `i` and `o`, …), and without white space anywhere, combining marks, controls or
/// invisible characters. Folding more only asks for the captcha sooner: `ann smith` and
/// `annsmith` share a count.
fn fold(name: &str) -> impl Iterator<Item = char> + '_ {
    name.nfkd()
        .flat_map(char::to_lowercase)
        // Lower case may decompose again (`İ` is `i` and a dot above).
        .nfkd()
        .filter(|&c| {
            !c.is_whitespace() && !c.is_control() && !is_combining_mark(c) && !is_ignorable(c)
        })
        .flat_map(|c| {
            let (first, second) = match c {
                'ß' => ('s', Some('s')),
                'æ' => ('a', Some('e')),
                'œ' => ('o', Some('e')),
                'þ' => ('t', Some('h')),
                'ı' => ('i', None),
                'ø' => ('o', None),
                'ł' | 'ŀ' => ('l', None),
                'đ' | 'ð' => ('d', None),
                'ħ' => ('h', None),
                'ŧ' => ('t', None),
                'ς' => ('σ', None),
                c => (c, None),
            };
            std::iter::once(first).chain(second)
        })
}

/// Unicode's default-ignorable characters: drawn as nothing (zero-width spaces and joiners,
/// direction marks, variation selectors, Hangul fillers, tags).
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Turns a request's scene, account and address into [`Keys`].
#[derive(Clone)]
pub(crate) struct KeyHasher {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

impl KeyHasher {
    /// Digests under `key`: instances sharing a store must use the same key. Any length (HMAC
    /// hashes a long key down); 32 random bytes are plenty.
    pub(crate) fn with_key(key: &[u8]) -> Self {
        let mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        Self { mac }
    }

    /// Digests under a key of this process alone, for a store no other process reads (the
    /// in-memory one).
    pub(crate) fn random() -> Self {
        // Version 4 UUIDs are 122 bits from the operating system's random source.
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(a.as_bytes());
        key[16..].copy_from_slice(b.as_bytes());
        let hasher = Self::with_key(&key);
        zeroize::Zeroize::zeroize(&mut key);
        hasher
    }

    /// The counters of a request on the route of `scene`.
    pub(crate) fn keys(
        &self,
        scene: &str,
        account: Option<&str>,
        ip: Option<IpAddr>,
        windows: Windows,
    ) -> Keys {
        Keys {
            account: account.map(|name| self.account(scene, name, windows.account)),
            ip: ip.map(|ip| self.ip(scene, ip, windows.ip)),
            global: self.tally(Signal::Global, scene, windows.global, |_| {}),
        }
    }

    fn account(&self, scene: &str, name: &str, window: Window) -> Tally {
        self.tally(Signal::Account, scene, window, |mac| {
            // Folded a character at a time: no copy of a name of any length.
            let mut buf = [0u8; 4];
            for c in fold(name) {
                mac.update(c.encode_utf8(&mut buf).as_bytes());
            }
        })
    }

    fn ip(&self, scene: &str, ip: IpAddr, window: Window) -> Tally {
        self.tally(Signal::Ip, scene, window, |mac| match prefix(ip) {
            IpAddr::V4(v4) => {
                mac.update(&[4]);
                mac.update(&v4.octets());
            }
            IpAddr::V6(v6) => {
                mac.update(&[6]);
                mac.update(&v6.octets());
            }
        })
    }

    fn tally(
        &self,
        signal: Signal,
        scene: &str,
        window: Window,
        subject: impl FnOnce(&mut Hmac<Sha256>),
    ) -> Tally {
        let mut mac = self.mac.clone();
        // Fixed-size fields first and the scene length-prefixed: no two inputs read alike.
        mac.update(&[signal.tag()]);
        mac.update(&window.secs().to_be_bytes());
        mac.update(&(scene.len() as u64).to_be_bytes());
        mac.update(scene.as_bytes());
        subject(&mut mac);
        let full = mac.finalize().into_bytes();
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&full[..16]);
        Tally {
            signal,
            digest,
            window,
        }
    }
}

/// The address a client is counted under: IPv4 (mapped or not) as is, IPv6 by its /64.
pub(crate) fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Windows {
        Windows {
            account: Window::from_secs(900).unwrap(),
            ip: Window::from_secs(900).unwrap(),
            global: Window::from_secs(60).unwrap(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn spellings_of_one_subject_share_a_counter_and_others_do_not() {
        let h = KeyHasher::with_key(b"k");
        let keys = |scene, account, address: &str| {
            h.keys(scene, Some(account), Some(ip(address)), windows())
        };
        let alice = keys("login", "alice", "192.0.2.1");
        // One account, however it is spelt.
        for other in [
            "Alice",
            "  ALICE\t",
            "alice ",
            "\u{FF41}lice",
            "ali\u{200B}ce",
            "a\u{0301}lice",
            "alice\0",
            "\u{FEFF}alice",
            // Compatibility letters: circled, mathematical bold, superscript.
            "\u{24D0}lice",
            "\u{1D41A}lice",
            "\u{1D43}lice",
            "\u{24B6}\u{24DB}\u{24D8}\u{24D2}\u{24D4}",
            "al\u{0130}ce",
            "alic\u{E0065}e",
            "ali\u{3164}ce",
        ] {
            assert_eq!(
                keys("login", other, "192.0.2.1").account,
                alice.account,
                "{other:?}"
            );
        }
        // White space anywhere, even behind an invisible character.
        for other in [
            "ali ce",
            "alice \u{200B}",
            "\u{FEFF}  alice",
            "alice\u{00A0}",
        ] {
            assert_eq!(
                keys("login", other, "192.0.2.1").account,
                alice.account,
                "{other:?}"
            );
        }
        // Letters collations take for others.
        let same = |a: &str, b: &str| {
            assert_eq!(
                h.keys("login", Some(a), None, windows()).account,
                h.keys("login", Some(b), None, windows()).account,
                "{a:?} {b:?}"
            );
        };
        same("STRASSE", "stra\u{00DF}e");
        same("michael", "m\u{0131}chael");
        same("michaeL", "m\u{0131}ch\u{00C6}l");
        same("bjorn", "Bj\u{00F8}rn");
        same("lodz", "\u{0141}\u{00F3}d\u{017A}");
        assert_ne!(keys("login", "alice2", "192.0.2.1").account, alice.account);
        assert_ne!(keys("signup", "alice", "192.0.2.1").account, alice.account);
        // One IPv6 /64; the mapped IPv4 address is the IPv4 address.
        let v6 = keys("login", "a", "2001:db8:1:2:aaaa::1");
        assert_eq!(keys("login", "a", "2001:db8:1:2:ffff::9").ip, v6.ip);
        assert_ne!(keys("login", "a", "2001:db8:1:3::1").ip, v6.ip);
        assert_eq!(keys("login", "a", "::ffff:192.0.2.1").ip, alice.ip);
        assert_ne!(keys("login", "a", "192.0.2.2").ip, alice.ip);
        // The route's counter is the route's, whoever asks.
        assert_eq!(keys("login", "bob", "198.51.100.7").global, alice.global);
        assert_ne!(keys("signup", "alice", "192.0.2.1").global, alice.global);
        // The signals never share a counter, nor do windows, nor keys.
        let name_like_ip = h.keys("login", Some("192.0.2.1"), Some(ip("192.0.2.1")), windows());
        assert_ne!(
            name_like_ip.account.unwrap().digest,
            name_like_ip.ip.unwrap().digest
        );
        let mut longer = windows();
        longer.account = Window::from_secs(1800).unwrap();
        assert_ne!(
            h.keys("login", Some("alice"), None, longer).account,
            alice.account
        );
        let other_key = KeyHasher::with_key(b"other");
        assert_ne!(
            other_key
                .keys("login", Some("alice"), None, windows())
                .account,
            alice.account
        );
    }

    #[test]
    fn absent_subjects_have_no_counter_and_nothing_leaks_in_debug() {
        let h = KeyHasher::random();
        let keys = h.keys("login", None, None, windows());
        assert_eq!(keys.tallies().count(), 1);
        assert_eq!(keys.longest_window().secs(), 60);
        let all = h.keys(
            "login",
            Some("secret-user"),
            Some(ip("192.0.2.1")),
            windows(),
        );
        assert_eq!(all.tallies().count(), 3);
        assert_eq!(all.longest_window().secs(), 900);
        let shown = format!("{h:?} {all:?}");
        assert!(
            !shown.contains("secret-user") && !shown.contains("192.0.2.1"),
            "{shown}"
        );
        // Any length of name, empty included, without a panic.
        let long = "x".repeat(1 << 20);
        let _ = h.keys("login", Some(&long), None, windows());
        let _ = h.keys("", Some(""), None, windows());
    }
}
