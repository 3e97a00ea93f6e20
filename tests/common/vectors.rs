//! The signing vectors of `tests/vectors/` (provenance in its README), compiled in so that no
//! test reads a file at run time. The one loader: the integration tests reach it through
//! `common`, the client's unit tests include this file by path.
#![allow(dead_code)]

use serde_json::Value;

fn parse(name: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("tests/vectors/{name} is not JSON: {e}"))
}

fn cases(name: &str, text: &str) -> Vec<Value> {
    match parse(name, text) {
        Value::Array(cases) if !cases.is_empty() => cases,
        _ => panic!("tests/vectors/{name} holds no cases"),
    }
}

/// The worked example of Alibaba's V3 signature document.
pub fn doc_example() -> Value {
    parse(
        "acs3-doc-example.json",
        include_str!("../vectors/acs3-doc-example.json"),
    )
}

/// What the official Python SDK sent for `VerifyIntelligentCaptcha`.
pub fn official_sdk_requests() -> Vec<Value> {
    cases(
        "official-sdk-requests.json",
        include_str!("../vectors/official-sdk-requests.json"),
    )
}

/// The request a client following the V3 document sends.
pub fn minimal_client_requests() -> Vec<Value> {
    cases(
        "minimal-client-requests.json",
        include_str!("../vectors/minimal-client-requests.json"),
    )
}

/// `EncryptedSceneId`s of V3 encryption mode, with a fixed key and IV.
pub fn encrypted_scene_ids() -> Value {
    parse(
        "encrypted-scene-id.json",
        include_str!("../vectors/encrypted-scene-id.json"),
    )
}
