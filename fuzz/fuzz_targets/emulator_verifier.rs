#![no_main]
//! The emulator's request checks (headers, date, nonce, body hash, SignedHeaders, AccessKey,
//! signature) and param decoding. Each input starts from a correctly signed request, which
//! the fuzzer then edits, so that every check is reached. Never a panic.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

#[derive(Arbitrary, Debug)]
enum Edit<'a> {
    SetHeader(u8, &'a [u8]),
    RemoveHeader(u8),
    AddHeader(&'a [u8], &'a [u8]),
    Body(&'a [u8]),
    Method(&'a [u8]),
    Path(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    param: &'a str,
    scene: &'a str,
    edits: Vec<Edit<'a>>,
}

fuzz_target!(|input: Input<'_>| {
    let Ok(param) = CaptchaVerifyParam::new(input.param) else { return };
    let mut request = VerifyRequest::new(param);
    if let Ok(scene) = SceneId::new(input.scene) {
        request = request.with_scene(scene);
    }
    let client = Client::builder()
        .credentials(Credentials::new("fuzz-id", "fuzz-secret"))
        .endpoint("http://127.0.0.1:9")
        .allow_http(true)
        .build()
        .expect("a client");
    let Ok(signed) = client.signed_request(&request) else { return };
    let (parts, body) = signed.into_parts();

    let mut method = parts.method.as_str().as_bytes().to_vec();
    let mut path = b"/".to_vec();
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let mut body = body.to_vec();
    for edit in input.edits {
        match edit {
            Edit::SetHeader(index, value) if !headers.is_empty() => {
                let index = usize::from(index) % headers.len();
                headers[index].1 = value.to_vec();
            }
            Edit::RemoveHeader(index) if !headers.is_empty() => {
                headers.remove(usize::from(index) % headers.len());
            }
            Edit::AddHeader(name, value) => headers.push((name.to_vec(), value.to_vec())),
            Edit::Body(new) => body = new.to_vec(),
            Edit::Method(new) => method = new.to_vec(),
            Edit::Path(new) => path = new.to_vec(),
            _ => {}
        }
    }
    let headers: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    aliyun_captcha_emulator::fuzz_authenticate(&method, &path, &headers, &body);
});

