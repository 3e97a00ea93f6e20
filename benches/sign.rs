//! Signing one VerifyIntelligentCaptcha request: a typical 300-byte V3 param, with a scene.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tower_aliyun_captcha::sign::{self, CanonicalRequest};

fn typical_param() -> String {
    // A V3 param is base64 of a small JSON object, about 300 bytes.
    let mut param =
        "eyJjZXJ0aWZ5SWQiOiJhYmMxMjMiLCJzY2VuZUlkIjoiMWV6eDhweW4iLCJpc1NpZ24iOnRydWUs".to_owned();
    while param.len() < 296 {
        param.push_str("InNlY3VyaXR5VG9rZW4iOiJ4");
    }
    param.truncate(296);
    param.push_str("fQ==");
    param
}

fn signing(c: &mut Criterion) {
    let param = typical_param();
    c.bench_function("sign_verify_request", |b| {
        b.iter(|| {
            let body = sign::form_encode(&[
                ("CaptchaVerifyParam", black_box(&param)),
                ("SceneId", "1ezx8pyn"),
            ]);
            let payload_hash = sign::hash_payload(body.as_bytes());
            let canonical = CanonicalRequest::new(
                "POST",
                "/",
                &[],
                &[
                    ("host", "captcha.cn-shanghai.aliyuncs.com"),
                    ("x-acs-action", "VerifyIntelligentCaptcha"),
                    ("x-acs-version", "2023-03-05"),
                    ("x-acs-date", "2026-11-24T10:00:00Z"),
                    ("x-acs-signature-nonce", "0f3c2a9e8b7d4c1a9e2b3c4d5e6f7a8b"),
                    ("x-acs-content-sha256", &payload_hash),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                &payload_hash,
            );
            let signature = canonical.signature(b"ExampleAccessKeySecret0123456789");
            black_box(sign::authorization(
                "LTAI5tExampleAccessKeyId",
                canonical.signed_headers(),
                &signature,
            ))
        })
    });
}

criterion_group!(benches, signing);
criterion_main!(benches);
