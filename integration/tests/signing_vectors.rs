//! Every case in `tests/vectors/` reproduced byte for byte by the signer.

// The loader alone: this test needs none of the emulator fixtures in `common`.
#[path = "../../tests/common/vectors.rs"]
mod vectors;

use serde_json::Value;
use tower_aliyun_captcha::sign::{self, CanonicalRequest};

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

#[test]
fn alibaba_documentation_example() {
    let case = vectors::doc_example();
    let input = &case["input"];
    let query: Vec<(&str, &str)> = input["query"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let headers: Vec<(&str, &str)> = input["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let body = str_of(input, "body");
    let canonical = CanonicalRequest::new(
        str_of(input, "method"),
        str_of(input, "path"),
        &query,
        &headers,
        &sign::hash_payload(body.as_bytes()),
    );
    assert_eq!(canonical.signed_headers(), str_of(&case, "signed_headers"));
    assert_eq!(
        canonical.string_to_sign(),
        format!(
            "ACS3-HMAC-SHA256\n{}",
            str_of(&case, "hashed_canonical_request")
        )
    );
    assert_eq!(
        canonical.signature(str_of(input, "access_key_secret").as_bytes()),
        str_of(&case, "signature")
    );
}

#[test]
fn requests_sent_by_the_official_python_sdk() {
    for case in &vectors::official_sdk_requests() {
        let name = str_of(case, "name");
        let input = &case["input"];
        let wire = &case["wire"];
        let signed: Vec<&str> = case["signed_headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let headers: Vec<(&str, &str)> = wire["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_str().unwrap(), pair[1].as_str().unwrap()))
            .filter(|(name, _)| signed.contains(name))
            .collect();

        // The body: the SDK's form encoding of the inputs.
        let mut fields = vec![("CaptchaVerifyParam", str_of(input, "captcha_verify_param"))];
        if let Some(scene) = input["scene_id"].as_str() {
            fields.push(("SceneId", scene));
        }
        let body = sign::form_encode(&fields);
        assert_eq!(body, str_of(wire, "body"), "{name}: body");
        let payload_hash = sign::hash_payload(body.as_bytes());
        let sent_hash = headers
            .iter()
            .find(|(n, _)| *n == "x-acs-content-sha256")
            .unwrap()
            .1;
        assert_eq!(payload_hash, sent_hash, "{name}: x-acs-content-sha256");

        let canonical = CanonicalRequest::new(
            str_of(wire, "method"),
            str_of(wire, "path"),
            &[],
            &headers,
            &payload_hash,
        );
        assert_eq!(
            canonical.as_str(),
            str_of(case, "canonical_request"),
            "{name}"
        );
        assert_eq!(canonical.signed_headers(), signed.join(";"), "{name}");
        assert_eq!(
            canonical.string_to_sign(),
            str_of(case, "string_to_sign"),
            "{name}"
        );
        let signature = canonical.signature(str_of(input, "access_key_secret").as_bytes());
        assert_eq!(signature, str_of(case, "signature"), "{name}");
        let authorization = sign::authorization(
            str_of(input, "access_key_id"),
            canonical.signed_headers(),
            &signature,
        );
        assert_eq!(authorization, str_of(case, "authorization"), "{name}");
        let sent = headers.iter().find(|(n, _)| *n == "authorization");
        assert!(sent.is_none(), "{name}: authorization is never signed");
        let sent_authorization = wire["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == "authorization")
            .unwrap()[1]
            .as_str()
            .unwrap();
        assert_eq!(
            authorization, sent_authorization,
            "{name}: wire authorization"
        );
    }
}

#[test]
fn requests_of_a_minimal_v3_client() {
    for case in &vectors::minimal_client_requests() {
        let name = str_of(case, "name");
        let input = &case["inputs"];
        let headers: Vec<(&str, &str)> = case["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let mut fields = vec![("CaptchaVerifyParam", str_of(input, "captcha_verify_param"))];
        if let Some(scene) = input["scene_id"].as_str() {
            fields.push(("SceneId", scene));
        }
        let body = sign::form_encode(&fields);
        assert_eq!(body, str_of(case, "body"), "{name}: body");
        let payload_hash = sign::hash_payload(body.as_bytes());
        assert_eq!(
            payload_hash,
            str_of(case, "body_sha256"),
            "{name}: body hash"
        );

        let canonical = CanonicalRequest::new("POST", "/", &[], &headers, &payload_hash);
        assert_eq!(
            canonical.as_str(),
            str_of(case, "canonical_request"),
            "{name}"
        );
        assert_eq!(
            canonical.signed_headers(),
            str_of(case, "signed_headers"),
            "{name}"
        );
        assert_eq!(
            canonical.string_to_sign(),
            str_of(case, "string_to_sign"),
            "{name}"
        );
        let signature = canonical.signature(str_of(input, "access_key_secret").as_bytes());
        assert_eq!(signature, str_of(case, "signature"), "{name}");
        assert!(sign::verify_signature(
            str_of(input, "access_key_secret").as_bytes(),
            &canonical.string_to_sign(),
            &signature
        ));
        assert_eq!(
            sign::authorization(
                str_of(input, "access_key_id"),
                canonical.signed_headers(),
                &signature
            ),
            str_of(case, "authorization"),
            "{name}"
        );
    }
}
