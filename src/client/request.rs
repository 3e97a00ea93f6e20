//! The signed `VerifyIntelligentCaptcha` request (and any V3-style form call, for STS), built
//! without I/O.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};

use super::Endpoint;
use crate::credentials::Credentials;
use crate::protocol::{self, header};
use crate::sign::{self, CanonicalRequest};
use crate::verify::VerifyRequest;

pub(crate) const USER_AGENT_VALUE: &str =
    concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// A fresh random nonce: 32 hex digits, like the official SDKs'.
pub fn fresh_nonce() -> String {
    fresh_nonce_text().as_str().to_owned()
}

/// [`fresh_nonce`] without an allocation.
pub(crate) fn fresh_nonce_text() -> NonceText {
    let mut out = [0u8; 32];
    uuid::Uuid::new_v4().simple().encode_lower(&mut out);
    NonceText(out)
}

/// A nonce, held inline.
pub(crate) struct NonceText([u8; 32]);

impl NonceText {
    pub(crate) fn as_str(&self) -> &str {
        // uuid writes hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Builds the request the official SDKs send, every header but `user-agent` signed.
pub fn signed_request(
    endpoint: &Endpoint,
    credentials: &Credentials,
    request: &VerifyRequest,
    date: &str,
    nonce: &str,
) -> Result<Request<Bytes>, http::Error> {
    let param = ("CaptchaVerifyParam", request.param().as_str());
    let with_scene;
    let fields: &[(&str, &str)] = match request.scene() {
        Some(scene) => {
            with_scene = [param, ("SceneId", scene.as_str())];
            &with_scene
        }
        None => std::slice::from_ref(&param),
    };
    let call = Call {
        action: protocol::ACTION,
        version: protocol::VERSION,
        fields,
        date,
        nonce,
    };
    form_request(endpoint, Some(credentials), &call)
}

/// One call of an Alibaba Cloud API in the V3 style: action and version in headers, the
/// parameters in a form body.
pub(crate) struct Call<'a> {
    pub(crate) action: &'a str,
    pub(crate) version: &'a str,
    pub(crate) fields: &'a [(&'a str, &'a str)],
    pub(crate) date: &'a str,
    pub(crate) nonce: &'a str,
}

/// The request for `call`, signed with ACS3-HMAC-SHA256 when `credentials` are given (an
/// anonymous call, such as STS's `AssumeRoleWithOIDC`, has no `Authorization`).
///
/// The body and every header value made for this request share one buffer: one allocation
/// for all of them, and one for the header map.
pub(crate) fn form_request(
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
    call: &Call<'_>,
) -> Result<Request<Bytes>, http::Error> {
    let token = credentials.and_then(|c| c.security_token().map(|t| (c, t.expose())));
    let authorization_len = credentials.map_or(0, |c| {
        sign::ALGORITHM.len()
            + " Credential=,SignedHeaders=,Signature=".len()
            + c.access_key_id().len()
            + SIGNED_NAMES_LEN
            + 64
    });
    let mut buffer = String::with_capacity(
        crate::encoding::form_encoded_len_bound(call.fields)
            + call.date.len()
            + call.nonce.len()
            + 64
            + authorization_len
            + token.map_or(0, |(c, t)| c.access_key_id().len() + t.len()),
    );
    crate::encoding::push_form(&mut buffer, call.fields);
    let body = 0..buffer.len();
    let payload_hash = sign::payload_digest(buffer.as_bytes());
    let date = push(&mut buffer, call.date);
    let nonce = push(&mut buffer, call.nonce);
    let hash = push(&mut buffer, payload_hash.as_str());

    let mut signed = [("", ""); 9];
    let base = [
        (header::HOST, endpoint.host()),
        (header::ACTION, call.action),
        (header::VERSION, call.version),
        (header::DATE, call.date),
        (header::NONCE, call.nonce),
        (header::CONTENT_SHA256, payload_hash.as_str()),
        (header::CONTENT_TYPE, protocol::FORM),
    ];
    signed[..base.len()].copy_from_slice(&base);
    let mut count = base.len();
    if let Some((credentials, token)) = token {
        signed[count] = (header::ACCESS_KEY_ID, credentials.access_key_id());
        signed[count + 1] = (header::SECURITY_TOKEN, token);
        count += 2;
    }
    let signed = &signed[..count];

    let authorization = credentials.map(|credentials| {
        let canonical = CanonicalRequest::new("POST", "/", &[], signed, payload_hash.as_str());
        let signature =
            canonical.signature_digest(credentials.access_key_secret().expose().as_bytes());
        let start = buffer.len();
        buffer.push_str(sign::ALGORITHM);
        buffer.push_str(" Credential=");
        buffer.push_str(credentials.access_key_id());
        buffer.push_str(",SignedHeaders=");
        buffer.push_str(canonical.signed_headers());
        buffer.push_str(",Signature=");
        buffer.push_str(signature.as_str());
        start..buffer.len()
    });
    let sts = token.map(|(credentials, token)| {
        (
            push(&mut buffer, credentials.access_key_id()),
            push(&mut buffer, token),
        )
    });

    let shared = Bytes::from(buffer.into_bytes());
    let value = |range: std::ops::Range<usize>| HeaderValue::from_maybe_shared(shared.slice(range));
    let mut headers = HeaderMap::with_capacity(12);
    // The order the official SDKs' requests have had since the first version of this crate.
    headers.insert(HOST, endpoint.host_header().clone());
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    // Unsigned, like the user agent: the signature stays the minimal client's.
    headers.insert(ACCEPT, HeaderValue::from_static(protocol::ACCEPT));
    if let Some(authorization) = authorization {
        headers.insert(AUTHORIZATION, value(authorization)?);
    }
    headers.insert(name(header::ACTION), static_or_copied(call.action)?);
    headers.insert(name(header::VERSION), static_or_copied(call.version)?);
    headers.insert(name(header::DATE), value(date)?);
    headers.insert(name(header::NONCE), value(nonce)?);
    headers.insert(name(header::CONTENT_SHA256), value(hash)?);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(protocol::FORM),
    );
    if let Some((id, token)) = sts {
        headers.insert(name(header::ACCESS_KEY_ID), value(id)?);
        headers.insert(name(header::SECURITY_TOKEN), value(token)?);
    }

    let mut request = Request::new(shared.slice(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = endpoint.uri().clone();
    *request.headers_mut() = headers;
    Ok(request)
}

/// The length of the longest `SignedHeaders` value (with STS credentials).
const SIGNED_NAMES_LEN: usize = "content-type;host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version".len();

/// Appends `text` to `buffer`; where it went.
fn push(buffer: &mut String, text: &str) -> std::ops::Range<usize> {
    let start = buffer.len();
    buffer.push_str(text);
    start..buffer.len()
}

/// A signed header's name: all are lower-case literals.
fn name(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// The value of a constant: actions and versions are `'static` in practice, but a call takes
/// any `&str`.
fn static_or_copied(value: &str) -> Result<HeaderValue, http::Error> {
    for known in [
        protocol::ACTION,
        protocol::VERSION,
        protocol::STS_VERSION,
        protocol::STS_ASSUME_ROLE,
        protocol::STS_ASSUME_ROLE_WITH_OIDC,
    ] {
        if value == known {
            return Ok(HeaderValue::from_static(known));
        }
    }
    Ok(HeaderValue::from_str(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors as vectors;
    use crate::{CaptchaVerifyParam, SceneId};
    use serde_json::Value;

    fn build(input: &Value, host: &str) -> Request<Bytes> {
        let mut credentials = Credentials::new(
            input["access_key_id"].as_str().unwrap(),
            input["access_key_secret"].as_str().unwrap(),
        );
        if let Some(token) = input["security_token"].as_str() {
            credentials = credentials.with_security_token(token);
        }
        let mut request = VerifyRequest::new(
            CaptchaVerifyParam::new(input["captcha_verify_param"].as_str().unwrap()).unwrap(),
        );
        if let Some(scene) = input["scene_id"].as_str() {
            request = request.with_scene(SceneId::new(scene).unwrap());
        }
        let endpoint: Endpoint = format!("https://{host}").parse().unwrap();
        signed_request(
            &endpoint,
            &credentials,
            &request,
            input["date"].as_str().unwrap(),
            input["nonce"].as_str().unwrap(),
        )
        .unwrap()
    }

    async fn body_of(request: Request<Bytes>) -> String {
        String::from_utf8(request.into_body().to_vec()).unwrap()
    }

    /// The minimal-client vectors, byte for byte: headers, body and Authorization.
    #[tokio::test]
    async fn reproduces_the_minimal_client_vectors() {
        for case in &vectors::minimal_client_requests() {
            let name = case["name"].as_str().unwrap();
            let input = &case["inputs"];
            let request = build(input, input["host"].as_str().unwrap());
            let headers = request.headers().clone();
            let expected = case["headers"].as_object().unwrap();
            for (header, value) in expected {
                assert_eq!(
                    headers[header.as_str()],
                    value.as_str().unwrap(),
                    "{name}: {header}"
                );
            }
            if input["security_token"].is_null() {
                assert_eq!(
                    headers[AUTHORIZATION],
                    case["authorization"].as_str().unwrap(),
                    "{name}"
                );
            } else {
                // Like the official SDKs, our client also signs `x-acs-accesskey-id` with STS
                // credentials; the minimal vector leaves it out, so only the headers differ.
                assert_eq!(
                    headers["x-acs-accesskey-id"],
                    input["access_key_id"].as_str().unwrap()
                );
                assert!(
                    headers[AUTHORIZATION]
                        .to_str()
                        .unwrap()
                        .contains("x-acs-accesskey-id;x-acs-action"),
                    "{name}"
                );
            }
            assert_eq!(headers[USER_AGENT], USER_AGENT_VALUE);
            assert_eq!(
                body_of(request).await,
                case["body"].as_str().unwrap(),
                "{name}"
            );
        }
    }

    /// The official SDK's STS request: the same headers signed with the same values give the
    /// same signature, once the SDK-only headers (accept, user-agent, …) are left aside.
    #[tokio::test]
    async fn sts_requests_carry_what_the_official_sdk_sends() {
        for case in &vectors::official_sdk_requests() {
            let input = &case["input"];
            let wire = &case["wire"];
            let host = wire["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == "host")
                .unwrap()[1]
                .as_str()
                .unwrap();
            let request = build(input, host);
            for pair in wire["headers"].as_array().unwrap() {
                let name = pair[0].as_str().unwrap();
                let ours = request.headers().get(name);
                let sdk_only = matches!(
                    name,
                    "accept"
                        | "accept-encoding"
                        | "user-agent"
                        | "x-acs-credentials-provider"
                        | "authorization"
                        | "content-length"
                );
                if !sdk_only {
                    assert_eq!(ours.unwrap(), pair[1].as_str().unwrap(), "{name}");
                }
            }
            assert_eq!(body_of(request).await, wire["body"].as_str().unwrap());
        }
    }

    #[test]
    fn nonces_are_fresh() {
        assert_ne!(fresh_nonce(), fresh_nonce());
        assert_eq!(fresh_nonce().len(), 32);
    }
}
