//! The signed `VerifyIntelligentCaptcha` request (and any V3-style form call, for STS), built
//! without I/O.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request};

use super::Endpoint;
use crate::credentials::Credentials;
use crate::protocol::{self, header};
use crate::sign::{self, CanonicalRequest};
use crate::verify::VerifyRequest;

pub(crate) const USER_AGENT_VALUE: &str =
    concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// A fresh random nonce: 32 hex digits, like the official SDKs'.
pub fn fresh_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Builds the request the official SDKs send, every header but `user-agent` signed.
pub fn signed_request(
    endpoint: &Endpoint,
    credentials: &Credentials,
    request: &VerifyRequest,
    date: &str,
    nonce: &str,
) -> Result<Request<Bytes>, http::Error> {
    let mut fields = Vec::with_capacity(2);
    fields.push(("CaptchaVerifyParam", request.param().as_str()));
    if let Some(scene) = request.scene() {
        fields.push(("SceneId", scene.as_str()));
    }
    let call = Call {
        action: protocol::ACTION,
        version: protocol::VERSION,
        fields: &fields,
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
pub(crate) fn form_request(
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
    call: &Call<'_>,
) -> Result<Request<Bytes>, http::Error> {
    let body = sign::form_encode(call.fields);
    let payload_hash = sign::hash_payload(body.as_bytes());

    let mut signed: Vec<(&'static str, &str)> = Vec::with_capacity(9);
    signed.extend([
        (header::HOST, endpoint.host()),
        (header::ACTION, call.action),
        (header::VERSION, call.version),
        (header::DATE, call.date),
        (header::NONCE, call.nonce),
        (header::CONTENT_SHA256, &payload_hash),
        (header::CONTENT_TYPE, protocol::FORM),
    ]);
    if let Some(credentials) = credentials
        && let Some(token) = credentials.security_token()
    {
        signed.push((header::ACCESS_KEY_ID, credentials.access_key_id()));
        signed.push((header::SECURITY_TOKEN, token.expose()));
    }

    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(endpoint.uri().clone())
        .header(HOST, endpoint.host_header().clone())
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        // Unsigned, like the user agent: the signature stays the minimal client's.
        .header(ACCEPT, HeaderValue::from_static(protocol::ACCEPT));
    if let Some(credentials) = credentials {
        let canonical = CanonicalRequest::new("POST", "/", &[], &signed, &payload_hash);
        let signature = canonical.signature(credentials.access_key_secret().expose().as_bytes());
        let authorization = sign::authorization(
            credentials.access_key_id(),
            canonical.signed_headers(),
            &signature,
        );
        builder = builder.header(AUTHORIZATION, authorization);
    }
    // `host` went in above; the rest of the signed headers follow, all lower-case literals.
    for (name, value) in &signed[1..] {
        builder = builder.header(HeaderName::from_static(name), *value);
    }
    builder.body(Bytes::from(body))
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
