//! The ACS3-HMAC-SHA256 request signature (Alibaba Cloud's "V3" signature), pure and I/O-free.
//!
//! The same code signs our client's requests and verifies requests in the emulator, so there is
//! exactly one implementation of the canonical request.
//!
//! Public for the emulator crate, which checks what the client signs; not an API of its own
//! (hidden from the documentation). Its unit tests and the signing vectors cover it; for this
//! crate's own request, [`Client::signed_request`](crate::Client::signed_request) gives the
//! whole signed `http::Request`.
//!
//! ```text
//! CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//!                    SignedHeaders \n HashedPayload
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
//! Signature        = hex(hmac_sha256(AccessKeySecret, StringToSign))
//! Authorization    = "ACS3-HMAC-SHA256 Credential=" id ",SignedHeaders=" names ",Signature=" sig
//! ```
//!
//! ```
//! use tower_aliyun_captcha::sign::{self, CanonicalRequest};
//!
//! let body = sign::form_encode(&[("CaptchaVerifyParam", "eyJ4IjoxfQ==")]);
//! let payload_hash = sign::hash_payload(body.as_bytes());
//! let canonical = CanonicalRequest::new(
//!     "POST",
//!     "/",
//!     &[],
//!     &[
//!         ("host", "captcha.cn-shanghai.aliyuncs.com"),
//!         ("x-acs-action", "VerifyIntelligentCaptcha"),
//!         ("x-acs-content-sha256", &payload_hash),
//!     ],
//!     &payload_hash,
//! );
//! let signature = canonical.signature(b"my-secret");
//! let authorization = sign::authorization("my-key-id", canonical.signed_headers(), &signature);
//! assert!(authorization.starts_with(
//!     "ACS3-HMAC-SHA256 Credential=my-key-id,SignedHeaders=host;x-acs-action;x-acs-content-sha256,"
//! ));
//! assert!(sign::verify_signature(b"my-secret", &canonical.string_to_sign(), &signature));
//! ```

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub use crate::encoding::form_encode;
use crate::encoding::{push_hex, push_path, push_rfc3986};

/// The signature algorithm's name, the first word of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex SHA-256 of `payload`: the `x-acs-content-sha256` header and `HashedPayload`.
pub fn hash_payload(payload: &[u8]) -> String {
    payload_digest(payload).as_str().to_owned()
}

/// [`hash_payload`] without an allocation.
pub fn payload_digest(payload: &[u8]) -> HexDigest {
    HexDigest::of(&Sha256::digest(payload))
}

/// A SHA-256 digest or HMAC-SHA256 signature in lower-case hex, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexDigest([u8; 64]);

impl HexDigest {
    fn of(bytes: &[u8]) -> Self {
        const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX_LOWER[usize::from(byte >> 4)];
            pair[1] = HEX_LOWER[usize::from(byte & 0x0f)];
        }
        Self(out)
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A canonical request, the text that the signature covers.
///
/// Header names are lower-cased and sorted, values trimmed; a header given more than once has
/// its values sorted and joined with `,`. Every header passed in is signed.
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    text: String,
    /// Where the `SignedHeaders` line sits inside `text`, so it is not stored twice.
    signed_headers: std::ops::Range<usize>,
}

impl CanonicalRequest {
    /// Builds the canonical request from its parts. `headers` are the headers to sign, in any
    /// order and case; `hashed_payload` is [`hash_payload`] of the body.
    pub fn new(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        hashed_payload: &str,
    ) -> Self {
        let mut text = String::with_capacity(
            64 + path.len()
                + hashed_payload.len()
                + query
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2)
                    .sum::<usize>()
                + headers
                    .iter()
                    .map(|(k, v)| 2 * k.len() + v.len() + 3)
                    .sum::<usize>(),
        );
        text.push_str(method);
        text.push('\n');
        if path.is_empty() {
            text.push('/');
        } else {
            push_path(&mut text, path);
        }
        text.push('\n');

        let mut sorted_query: Vec<&(&str, &str)> = query.iter().collect();
        sorted_query.sort_unstable();
        for (index, (key, value)) in sorted_query.into_iter().enumerate() {
            if index > 0 {
                text.push('&');
            }
            push_rfc3986(&mut text, key);
            text.push('=');
            push_rfc3986(&mut text, value);
        }
        text.push('\n');

        // Usually a handful of headers, already in lower case: sorted on the stack.
        let start;
        if headers.len() <= STACK_HEADERS
            && headers
                .iter()
                .all(|(name, _)| !name.bytes().any(|b| b.is_ascii_uppercase()))
        {
            let mut sorted = [("", ""); STACK_HEADERS];
            for (slot, &(name, value)) in sorted.iter_mut().zip(headers) {
                *slot = (name, value.trim());
            }
            let sorted = &mut sorted[..headers.len()];
            sorted.sort_unstable();
            start = push_headers(&mut text, sorted.iter().map(|&(name, value)| (name, value)));
        } else {
            let mut sorted_headers: Vec<(Cow<'_, str>, &str)> = headers
                .iter()
                .map(|&(name, value)| (lower_case(name), value.trim()))
                .collect();
            sorted_headers.sort_unstable();
            start = push_headers(
                &mut text,
                sorted_headers
                    .iter()
                    .map(|(name, value)| (name.as_ref(), *value)),
            );
        }
        let end = text.len();
        text.push('\n');
        text.push_str(hashed_payload);

        Self {
            text,
            signed_headers: start..end,
        }
    }

    /// The canonical request's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The `SignedHeaders` value: lower-case header names, sorted, joined with `;`.
    pub fn signed_headers(&self) -> &str {
        &self.text[self.signed_headers.clone()]
    }

    /// `ACS3-HMAC-SHA256\n` followed by the hex SHA-256 of the canonical request.
    pub fn string_to_sign(&self) -> String {
        let mut out = String::with_capacity(ALGORITHM.len() + 1 + 64);
        out.push_str(ALGORITHM);
        out.push('\n');
        push_hex(&mut out, &Sha256::digest(self.text.as_bytes()));
        out
    }

    /// The HMAC of the string to sign, fed to it piece by piece (no string is built).
    fn mac(&self, secret: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(ALGORITHM.as_bytes());
        mac.update(b"\n");
        mac.update(
            HexDigest::of(&Sha256::digest(self.text.as_bytes()))
                .as_str()
                .as_bytes(),
        );
        mac
    }

    /// The hex signature of this request under `secret`.
    pub fn signature(&self, secret: &[u8]) -> String {
        self.signature_digest(secret).as_str().to_owned()
    }

    /// [`signature`](Self::signature) without an allocation.
    pub fn signature_digest(&self, secret: &[u8]) -> HexDigest {
        HexDigest::of(&self.mac(secret).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is this request's signature under `secret`: as
    /// [`verify_signature`] of [`string_to_sign`](Self::string_to_sign), in constant time,
    /// without building the string.
    pub fn verify(&self, secret: &[u8], signature: &str) -> bool {
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(signature, &mut expected).is_err() {
            return false;
        }
        self.mac(secret).verify_slice(&expected).is_ok()
    }
}

/// How many headers a canonical request sorts without allocating.
const STACK_HEADERS: usize = 16;

/// Appends the canonical headers and the signed header names, from `(name, value)` pairs sorted
/// by name and then value, names in lower case and values trimmed; returns where the signed
/// header names start. A repeated header has its values joined on one line.
fn push_headers<'a>(
    text: &mut String,
    sorted: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> usize {
    let mut previous: Option<&str> = None;
    for (name, value) in sorted.clone() {
        if previous == Some(name) {
            text.push(',');
        } else {
            if previous.is_some() {
                text.push('\n');
            }
            text.push_str(name);
            text.push(':');
        }
        text.push_str(value);
        previous = Some(name);
    }
    if previous.is_some() {
        text.push('\n');
    }
    text.push('\n');

    let start = text.len();
    let mut previous: Option<&str> = None;
    for (name, _) in sorted {
        if previous == Some(name) {
            continue;
        }
        if previous.is_some() {
            text.push(';');
        }
        text.push_str(name);
        previous = Some(name);
    }
    start
}

impl fmt::Debug for CanonicalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CanonicalRequest").field(&self.text).finish()
    }
}

fn lower_case(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn mac(secret: &[u8], string_to_sign: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// The lower-case hex HMAC-SHA256 of `string_to_sign` under `secret`.
pub fn sign_string(secret: &[u8], string_to_sign: &str) -> String {
    let mut out = String::with_capacity(64);
    push_hex(
        &mut out,
        &mac(secret, string_to_sign).finalize().into_bytes(),
    );
    out
}

/// Whether `signature` (hex) is the signature of `string_to_sign` under `secret`.
///
/// The comparison takes the same time wherever the first differing byte is, so a server that
/// uses it does not leak how much of a forged signature was right.
pub fn verify_signature(secret: &[u8], string_to_sign: &str, signature: &str) -> bool {
    let mut expected = [0u8; 32];
    if hex::decode_to_slice(signature, &mut expected).is_err() {
        return false;
    }
    mac(secret, string_to_sign).verify_slice(&expected).is_ok()
}

/// The `Authorization` header value.
pub fn authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    let mut out = String::with_capacity(
        ALGORITHM.len() + 40 + access_key_id.len() + signed_headers.len() + signature.len(),
    );
    out.push_str(ALGORITHM);
    out.push_str(" Credential=");
    out.push_str(access_key_id);
    out.push_str(",SignedHeaders=");
    out.push_str(signed_headers);
    out.push_str(",Signature=");
    out.push_str(signature);
    out
}

/// An `Authorization` header taken apart, as a server reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The `Credential` part: the AccessKey id.
    pub access_key_id: &'a str,
    /// The `SignedHeaders` part, as sent (names joined with `;`).
    pub signed_headers: &'a str,
    /// The `Signature` part (hex).
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
    pub fn parse(value: &'a str) -> Result<Self, MalformedAuthorization> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(MalformedAuthorization(
                "it does not start with `ACS3-HMAC-SHA256 `",
            ))?;
        let (mut access_key_id, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or(MalformedAuthorization("a part is not `key=value`"))?;
            let slot = match key {
                "Credential" => &mut access_key_id,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => return Err(MalformedAuthorization("it has an unknown part")),
            };
            if slot.replace(value).is_some() {
                return Err(MalformedAuthorization("a part is repeated"));
            }
        }
        match (access_key_id, signed_headers, signature) {
            (Some(access_key_id), Some(signed_headers), Some(signature))
                if !access_key_id.is_empty() && !signature.is_empty() =>
            {
                Ok(Self {
                    access_key_id,
                    signed_headers,
                    signature,
                })
            }
            _ => Err(MalformedAuthorization(
                "Credential, SignedHeaders and Signature are all required",
            )),
        }
    }

    /// The signed header names, in the order sent.
    pub fn signed_headers(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.signed_headers
            .split(';')
            .filter(|name| !name.is_empty())
    }
}

/// An `Authorization` header that is not in the ACS3-HMAC-SHA256 form; says what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthorization(&'static str);

impl fmt::Display for MalformedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed Authorization header: {}", self.0)
    }
}

impl std::error::Error for MalformedAuthorization {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined_sorted() {
        let canonical = CanonicalRequest::new(
            "POST",
            "/",
            &[],
            &[("x-b", "2"), ("X-A", "z"), ("x-a", "y")],
            "h",
        );
        assert_eq!(
            canonical.as_str(),
            "POST\n/\n\nx-a:y,z\nx-b:2\n\nx-a;x-b\nh"
        );
        assert_eq!(canonical.signed_headers(), "x-a;x-b");
    }

    #[test]
    fn malformed_authorizations_are_rejected() {
        for value in [
            "",
            "ACS3-HMAC-SHA256",
            "HMAC-SHA1 Credential=a,SignedHeaders=host,Signature=b",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=c",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=c",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=c,Extra=d",
            "ACS3-HMAC-SHA256 Credential=a;SignedHeaders=host;Signature=c",
        ] {
            assert!(
                Authorization::parse(value).is_err(),
                "{value:?} was accepted"
            );
        }
    }
}
