//! Hostile input: arbitrary bytes, headers, queries, JSON and form bodies never panic the
//! layer, the inner service always gets the exact bytes that were sent, and nothing a client
//! sends can alter the signed upstream request or mark itself verified.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt};
use tower_aliyun_captcha::extract::{CaptchaBody, FormField, Header, JsonField, Query};
use tower_aliyun_captcha::layer::Route;
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified};
use tower_aliyun_captcha::{
    CaptchaVerifyParam, Client, Credentials, Error, SceneId, Verification, Verify, VerifyCode,
    VerifyRequest,
};

/// Passes every param, remembering which ones it saw.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn verifier(
        &self,
    ) -> impl Fn(VerifyRequest) -> std::future::Ready<Result<Verification, Error>>
    + Clone
    + Send
    + Sync
    + 'static {
        let seen = Arc::clone(&self.0);
        move |request: VerifyRequest| {
            seen.lock()
                .unwrap()
                .push(request.param().as_str().to_owned());
            std::future::ready(Ok(Verification::pass(VerifyCode::T001, "local")))
        }
    }
}

/// Runs one request through the layer (header, then JSON, form and query extractors) in front
/// of a handler that echoes the body it got. Returns the status and the echoed body.
fn run(request: Request<Full<Bytes>>, recorder: &Recorder) -> (StatusCode, Bytes) {
    let layer = CaptchaLayer::builder(
        recorder.verifier(),
        Route::every_path(SceneId::new("scene").unwrap()),
    )
    .extractor(
        Header::default()
            .or(JsonField::default())
            .or(FormField::default())
            .or(Query::default()),
    )
    .build()
    .unwrap();
    run_through(layer, request)
}

/// Runs one request through a layer with the default extractor.
fn run_default(request: Request<Full<Bytes>>, recorder: &Recorder) -> (StatusCode, Bytes) {
    let layer = CaptchaLayer::new(recorder.verifier(), SceneId::new("scene").unwrap());
    run_through(layer, request)
}

/// Runs one request through `layer` in front of a handler that echoes the body it got.
fn run_through<V: Verify>(
    layer: CaptchaLayer<V>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Bytes) {
    let service = ServiceBuilder::new().layer(layer).service_fn(
        |request: Request<CaptchaBody<Full<Bytes>>>| async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(body)))
        },
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let response = service.oneshot(request).await.unwrap();
            let status = response.status();
            (
                status,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        })
}

fn post(content_type: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::post("/login")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// A param-shaped string: what a real widget sends is base64 or JSON text.
fn param() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/=]{8,64}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048),
                                    content_type in prop_oneof![
                                        Just("application/json"), Just("application/x-www-form-urlencoded"),
                                        Just("text/plain"), Just("application/problem+json")]) {
        let recorder = Recorder::default();
        let (status, echoed) = run(post(content_type, body.clone()), &recorder);
        match status {
            // Passed: the handler saw exactly what was sent.
            StatusCode::OK => prop_assert_eq!(echoed, Bytes::from(body)),
            StatusCode::FORBIDDEN => prop_assert!(recorder.0.lock().unwrap().is_empty()),
            other => prop_assert!(false, "unexpected {}", other),
        }
    }

    #[test]
    fn json_bodies_reach_the_handler_unchanged(p in param(),
                                               extra in proptest::collection::btree_map("[a-zA-Z]{1,8}", "\\PC{0,40}", 0..6),
                                               position in 0usize..7) {
        let mut fields: Vec<String> = extra.iter()
            .filter(|(k, _)| k.as_str() != "captchaVerifyParam")
            .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
            .collect();
        let at = position.min(fields.len());
        fields.insert(at, format!("\"captchaVerifyParam\":{}", serde_json::to_string(&p).unwrap()));
        let body = format!("{{ {} }}", fields.join(" , ")).into_bytes();
        let recorder = Recorder::default();
        let (status, echoed) = run(post("application/json", body.clone()), &recorder);
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(echoed, Bytes::from(body));
        prop_assert_eq!(recorder.0.lock().unwrap().clone(), vec![p]);
    }

    #[test]
    fn form_bodies_reach_the_handler_unchanged(p in param(), noise in "[ -~]{0,80}",
                                               first in any::<bool>()) {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let (noise, p_field) = (format!("a={}&b=%ZZ&&=", encode(&noise)), format!("captchaVerifyParam={}", encode(&p)));
        let body = if first { format!("{p_field}&{noise}") } else { format!("{noise}&{p_field}") }.into_bytes();
        let recorder = Recorder::default();
        let (status, echoed) = run(post("application/x-www-form-urlencoded", body.clone()), &recorder);
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(echoed, Bytes::from(body));
        prop_assert_eq!(recorder.0.lock().unwrap().clone(), vec![p]);
    }

    #[test]
    fn form_bodies_with_duplicates_are_refused_unverified(first in param(), second in param(),
                                                          noise in "[ -~]{0,80}",
                                                          escaped in any::<bool>()) {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        // The second name may be spelled with an escape: it decodes to the same field.
        let name = if escaped { "captcha%56erifyParam" } else { "captchaVerifyParam" };
        let body = format!("a={}&captchaVerifyParam={}&{name}={}&b=%ZZ&&=",
                           encode(&noise), encode(&first), encode(&second)).into_bytes();
        for runner in [run, run_default] {
            let recorder = Recorder::default();
            let (status, _) = runner(post("application/x-www-form-urlencoded", body.clone()), &recorder);
            // Neither copy is sent: which one a server would read is not ours to guess.
            prop_assert_eq!(status, StatusCode::FORBIDDEN);
            prop_assert!(recorder.0.lock().unwrap().is_empty());
        }
    }

    #[test]
    fn json_bodies_with_a_key_of_the_path_twice_are_refused_unverified(
        first in param(), second in param(),
        extra in proptest::collection::btree_map("[a-zA-Z]{1,8}", "\\PC{0,40}", 0..6),
        positions in (0usize..7, 0usize..8),
        nested in any::<bool>(),
    ) {
        let mut fields: Vec<String> = extra.iter()
            .filter(|(k, _)| !["captchaVerifyParam", "captcha", "param"].contains(&k.as_str()))
            .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
            .collect();
        let key = if nested { "param" } else { "captchaVerifyParam" };
        for (p, at) in [(&first, positions.0), (&second, positions.1)] {
            let at = at.min(fields.len());
            fields.insert(at, format!("\"{key}\":{}", serde_json::to_string(p).unwrap()));
        }
        let object = format!("{{ {} }}", fields.join(" , "));
        let (body, extractor) = if nested {
            (format!(r#"{{"captcha": {object}, "x": 1}}"#), JsonField::new("captcha.param"))
        } else {
            (object, JsonField::default())
        };
        let recorder = Recorder::default();
        let (status, _) = run_through(
            CaptchaLayer::builder(recorder.verifier(), Route::every_path(SceneId::new("scene").unwrap()))
                .extractor(extractor)
                .build()
                .unwrap(),
            post("application/json", body.into_bytes()),
        );
        prop_assert_eq!(status, StatusCode::FORBIDDEN);
        prop_assert!(recorder.0.lock().unwrap().is_empty());
    }

    #[test]
    fn arbitrary_header_values_and_queries_never_panic(
        value in proptest::collection::vec(prop_oneof![32u8..=126, 128u8..=255], 0..300),
        query in "([A-Za-z0-9=&;+._~!$'()*,:@/?-]|%[0-9A-Fa-f]{2}|%[G-Z])*",
    ) {
        // Only URIs a server could have parsed reach a service.
        let uri = format!("/login?{query}").parse::<http::Uri>();
        prop_assume!(uri.is_ok());
        let mut request = Request::post(uri.unwrap())
            .body(Full::new(Bytes::from_static(b"body")))
            .unwrap();
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            request.headers_mut().insert("x-captcha-verify-param", value);
        }
        let recorder = Recorder::default();
        let (status, echoed) = run(request, &recorder);
        prop_assert!(status == StatusCode::OK || status == StatusCode::FORBIDDEN, "{}", status);
        if status == StatusCode::OK {
            prop_assert_eq!(echoed, Bytes::from_static(b"body"));
        }
    }
}

#[test]
fn pathological_json_is_refused_not_crashed() {
    // 60,000 levels of nesting, inside the 64 KiB body limit: the parser's depth limit holds.
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        br#"{"captchaVerifyParam": 1e999999}"#.to_vec(),
        br#"{"captchaVerifyParam": 123456789012345678901234567890}"#.to_vec(),
        br#"{"captchaVerifyParam": ["a"]}"#.to_vec(),
        br#"{"captchaVerifyParam": "\ud800"}"#.to_vec(),
        b"\xff\xfe{}".to_vec(),
    ];
    for body in cases {
        let recorder = Recorder::default();
        let (status, _) = run(post("application/json", body), &recorder);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(recorder.0.lock().unwrap().is_empty());
    }
    // Duplicate keys: serde_json keeps the last, other parsers the first; neither is verified.
    for body in [
        &br#"{"captchaVerifyParam":"first","captchaVerifyParam":"second"}"#[..],
        br#"{"captchaVerifyParam":"first","captchaVerifyParam":null}"#,
        br#"{"captchaVerifyParam":"first","captcha\u0056erifyParam":"second"}"#,
    ] {
        for runner in [run, run_default] {
            let recorder = Recorder::default();
            let (status, _) = runner(post("application/json", body.to_vec()), &recorder);
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(recorder.0.lock().unwrap().is_empty());
        }
    }
}

#[test]
fn a_key_given_twice_anywhere_along_a_nested_path_is_refused_unverified() {
    for body in [
        r#"{"captcha": {"param": "eyJhIjoxfQ=="}, "captcha": {"other": 1}}"#,
        r#"{"captcha": 1, "captcha": {"param": "eyJhIjoxfQ=="}}"#,
        r#"{"captcha": {"param": "eyJhIjoxfQ==", "param": "eyJhIjoxfQ=="}}"#,
    ] {
        let recorder = Recorder::default();
        let layer = CaptchaLayer::builder(
            recorder.verifier(),
            Route::every_path(SceneId::new("scene").unwrap()),
        )
        .extractor(JsonField::new("captcha.param"))
        .build()
        .unwrap();
        let (status, _) = run_through(layer, post("application/json", body.into()));
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(recorder.0.lock().unwrap().is_empty(), "{body}");
    }
}

#[test]
fn a_header_given_twice_is_refused_unverified() {
    for runner in [run, run_default] {
        let recorder = Recorder::default();
        let mut request = post("text/plain", b"x".to_vec());
        for value in ["eyJhIjoxfQ==", "eyJiIjoyfQ=="] {
            request
                .headers_mut()
                .append("x-captcha-verify-param", HeaderValue::from_static(value));
        }
        let (status, _) = runner(request, &recorder);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(recorder.0.lock().unwrap().is_empty());
    }
}

#[test]
fn the_default_extractor_hands_on_the_bytes_it_read() {
    let recorder = Recorder::default();
    for (content_type, body) in [
        (
            "application/json",
            &br#"{ "captchaVerifyParam" : "eyJhIjoxfQ==", "n": 1e3, "s": "\u00e9" }"#[..],
        ),
        (
            "application/x-www-form-urlencoded",
            b"x=%E4%B8%AD+&captchaVerifyParam=eyJhIjoxfQ%3D%3D&&=",
        ),
    ] {
        let (status, echoed) = run_default(post(content_type, body.to_vec()), &recorder);
        assert_eq!(
            (status, echoed),
            (StatusCode::OK, Bytes::copy_from_slice(body))
        );
    }
    assert_eq!(recorder.0.lock().unwrap().len(), 2);
}

/// Takes a signed request apart into its form fields.
fn sent_fields(param: &str, scene: &str) -> (Vec<(String, String)>, http::HeaderMap) {
    let client = Client::builder()
        .credentials(Credentials::new("id", "secret"))
        .build()
        .unwrap();
    let request = VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())
        .with_scene(SceneId::new(scene).unwrap());
    let signed = client.signed_request(&request).unwrap();
    let headers = signed.headers().clone();
    let body = signed.into_body();
    (
        form_urlencoded::parse(&body).into_owned().collect(),
        headers,
    )
}

#[test]
fn a_param_cannot_smuggle_fields_or_headers_upstream() {
    for hostile in [
        "x&SceneId=evil",
        "x&CaptchaVerifyParam=second",
        "x\r\nx-acs-action: DeleteEverything\r\n\r\nSceneId=evil",
        "x=y&=&%26%3D",
        "x\nSceneId=evil",
        "+ %2B ;",
    ] {
        let (fields, headers) = sent_fields(hostile, "real-scene");
        assert_eq!(
            fields,
            vec![
                ("CaptchaVerifyParam".to_owned(), hostile.to_owned()),
                ("SceneId".to_owned(), "real-scene".to_owned()),
            ],
            "{hostile:?}"
        );
        assert_eq!(headers["x-acs-action"], "VerifyIntelligentCaptcha");
        // host, user-agent, accept, authorization and six x-acs-* and content-type headers.
        assert_eq!(headers.len(), 10, "no header was added: {headers:?}");
    }
}

proptest! {
    #[test]
    fn any_param_is_sent_as_exactly_one_field(param in "\\PC{1,300}") {
        prop_assume!(!param.trim().is_empty());
        let (fields, _) = sent_fields(&param, "s");
        prop_assert_eq!(fields, vec![("CaptchaVerifyParam".to_owned(), param), ("SceneId".to_owned(), "s".to_owned())]);
    }
}

#[test]
fn nothing_the_client_sends_marks_a_request_verified() {
    // A verdict from an earlier request, put in the extensions by code in front of the layer.
    let recorder = Recorder::default();
    let mut earlier = post("text/plain", b"x".to_vec());
    earlier.headers_mut().insert(
        "x-captcha-verify-param",
        HeaderValue::from_static("eyJhIjoxfQ=="),
    );
    let captured: Arc<Mutex<Option<CaptchaVerified>>> = Arc::default();
    let keep = Arc::clone(&captured);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let layer = CaptchaLayer::new(recorder.verifier(), SceneId::new("scene").unwrap());
    let inner = ServiceBuilder::new().layer(layer).service_fn(
        move |request: Request<CaptchaBody<Full<Bytes>>>| {
            let keep = Arc::clone(&keep);
            async move {
                *keep.lock().unwrap() = request.extensions().get::<CaptchaVerified>().cloned();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }
        },
    );
    let response = runtime.block_on(inner.clone().oneshot(earlier)).unwrap();
    assert_eq!(response.status(), 200);
    let forged = captured
        .lock()
        .unwrap()
        .clone()
        .expect("the first request was verified");

    // Replayed on a request without a param, with headers that look like a verdict.
    let mut replay = post("text/plain", b"y".to_vec());
    replay.extensions_mut().insert(forged);
    replay
        .headers_mut()
        .insert("x-captcha-verified", HeaderValue::from_static("true"));
    replay
        .headers_mut()
        .insert("x-captcha-verify-code", HeaderValue::from_static("T001"));
    let response = runtime.block_on(inner.oneshot(replay)).unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        recorder.0.lock().unwrap().len(),
        1,
        "only the first request was verified"
    );
}
