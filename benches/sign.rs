//! Signing one VerifyIntelligentCaptcha request through the client's own path
//! (`Client::signed_request`: form body, payload hash, date, nonce, canonical request,
//! HMAC, headers): a typical 300-byte V3 param, with a scene.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

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
    let request = VerifyRequest::new(CaptchaVerifyParam::new(typical_param()).unwrap())
        .with_scene(SceneId::new("1ezx8pyn").unwrap());
    let plain = Client::builder()
        .credentials(Credentials::new(
            "LTAI5tExampleAccessKeyId",
            "ExampleAccessKeySecret0123456789",
        ))
        .build()
        .unwrap();
    c.bench_function("sign_verify_request", |b| {
        b.iter(|| black_box(plain.signed_request(black_box(&request)).unwrap()))
    });
    let sts = Client::builder()
        .credentials(
            Credentials::new("STS.ExampleAccessKeyId", "ExampleAccessKeySecret0123456789")
                .with_security_token("CAIS".repeat(100)),
        )
        .build()
        .unwrap();
    c.bench_function("sign_verify_request_sts", |b| {
        b.iter(|| black_box(sts.signed_request(black_box(&request)).unwrap()))
    });
}

criterion_group!(benches, signing);
criterion_main!(benches);
