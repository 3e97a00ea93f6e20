//! Shared by the extractor targets: runs an extractor over a body and checks that the request
//! comes back with exactly the same bytes.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tower_aliyun_captcha::extract::{BodyLimits, CaptchaBody, ParamSource};

pub fn check(extractor: impl Into<ParamSource>, content_type: &str, data: &[u8]) {
    let extractor = extractor.into();
    RUNTIME.with(|runtime| runtime.block_on(async {
        let body = Bytes::copy_from_slice(data);
        let request = Request::post("/")
            .header("content-type", content_type)
            .body(CaptchaBody::new(Full::new(body.clone())))
            .expect("a valid request");
        let (request, _param) = extractor.extract_alone(request, BodyLimits::DEFAULT).await;
        let replayed = request.into_body().collect().await.expect("infallible").to_bytes();
        if data.len() <= BodyLimits::DEFAULT.max_bytes {
            assert_eq!(replayed, body, "the body handed on differs from the one received");
        }
    }));
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
}
