//! The client's CPU work without I/O: building, signing and encoding a request; parsing an
//! answer.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tower_aliyun_captcha::client::parse_response;
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

fn client(c: &mut Criterion) {
    let client = Client::builder()
        .credentials(Credentials::new(
            "LTAI5tExampleAccessKeyId",
            "ExampleAccessKeySecret0123456789",
        ))
        .build()
        .unwrap();
    let param = CaptchaVerifyParam::new(format!("{}==", "eyJjZXJ0aWZ5SWQiOi".repeat(16))).unwrap();
    let request = VerifyRequest::new(param).with_scene(SceneId::new("1ezx8pyn").unwrap());
    c.bench_function("build_sign_encode_request", |b| {
        b.iter(|| black_box(client.signed_request(black_box(&request)).unwrap()))
    });

    let answer = br#"{"RequestId":"3F290236-0C1E-4A5B-9F6E-54F31BD999FF","Message":"success","Code":"Success","Success":true,"Result":{"VerifyResult":true,"VerifyCode":"T001"}}"#;
    c.bench_function("parse_response", |b| {
        b.iter(|| black_box(parse_response(200, black_box(answer)).unwrap()))
    });
}

criterion_group!(benches, client);
criterion_main!(benches);
