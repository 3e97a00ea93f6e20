//! The emulator over real sockets: the gateway's checks in order, every verdict, faults, stats.

mod common;

use std::time::{Duration, SystemTime};

use aliyun_captcha_emulator::{Emulator, FaultMode, Faults, Mint, ParamFormat};
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use serde_json::{Value, json};
use tower_aliyun_captcha::SceneId;
use tower_aliyun_captcha::VerifyCode;

fn code(body: &Value) -> &str {
    body["Code"].as_str().unwrap_or_default()
}

fn verdict(body: &Value) -> (bool, &str) {
    (
        body["Result"]["VerifyResult"].as_bool().unwrap(),
        body["Result"]["VerifyCode"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn a_correctly_signed_request_gets_a_verdict() {
    let emulator = emulator().await;
    let param = emulator.mint(Mint::pass()).unwrap();
    let (status, body) = RawRequest::new(&emulator, &param, Some(LOGIN))
        .send(&emulator)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Success"], true);
    assert_eq!(verdict(&body), (true, "T001"));
    assert!(body["RequestId"].as_str().unwrap().len() >= 32);
}

#[tokio::test]
async fn every_required_header_is_checked_first() {
    let emulator = emulator().await;
    for name in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        // Even with a bad version, a missing header is what the gateway reports first.
        let request = RawRequest::new(&emulator, "p", None)
            .set("x-acs-version", "1999-01-01")
            .remove(name);
        let (status, body) = request.send(&emulator).await;
        if name == "host" {
            // hyper always sends a host header on HTTP/1.1; it cannot be removed.
            continue;
        }
        assert_eq!(
            (status, code(&body)),
            (400, "MissingParameter"),
            "{name}: {body}"
        );
        assert!(body["Message"].as_str().unwrap().contains(name));
        for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
            assert!(body[field].is_string(), "{field} missing in {body}");
        }
    }
    let (status, body) = RawRequest::new(&emulator, "p", None)
        .send_with(&emulator, Some(String::new()))
        .await;
    assert_eq!((status, code(&body)), (400, "MissingParameter"), "{body}");
}

#[tokio::test]
async fn unknown_action_or_version_are_answered_like_the_gateway() {
    let emulator = emulator().await;
    for (name, value, expected) in [
        (
            "x-acs-action",
            "DescribeInstances",
            (404, "InvalidAction.NotFound"),
        ),
        ("x-acs-version", "2018-01-12", (400, "InvalidVersion")),
    ] {
        let (status, body) = RawRequest::new(&emulator, "p", None)
            .set(name, value)
            .send(&emulator)
            .await;
        assert_eq!((status, code(&body)), expected, "{body}");
    }
}

/// Every answer carries its request id in `x-acs-request-id`, the same as the body's; a
/// verdict carries the param's `CertifyId`.
#[tokio::test]
async fn answers_carry_the_request_id_header_and_the_certify_id() {
    let emulator = emulator().await;
    let param = emulator
        .mint(aliyun_captcha_emulator::Mint::pass())
        .unwrap();
    let (status, headers, body) = RawRequest::new(&emulator, &param, Some(LOGIN))
        .send_full(&emulator)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers["x-acs-request-id"],
        body["RequestId"].as_str().unwrap()
    );
    assert!(
        !body["Result"]["CertifyId"].as_str().unwrap().is_empty(),
        "{body}"
    );
    let (status, headers, body) = RawRequest::new(&emulator, "p", None)
        .set("x-acs-version", "2019-01-01")
        .send_full(&emulator)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        headers["x-acs-request-id"],
        body["RequestId"].as_str().unwrap()
    );
    // The client keeps both.
    let param = emulator
        .mint(aliyun_captcha_emulator::Mint::pass())
        .unwrap();
    let verdict = client_for(&emulator)
        .verify(request(&param, None))
        .await
        .unwrap();
    assert!(verdict.certify_id().is_some());
}

#[tokio::test]
async fn dates_outside_fifteen_minutes_or_malformed_are_expired() {
    let clock = TestClock::default();
    let emulator = emulator_with_clock(clock.clone()).await;
    for date in ["2024-05-01T08:30:00Z", "2024-05-01T08:30:00", "yesterday"] {
        let (status, body) = RawRequest::new(&emulator, "p", None)
            .set("x-acs-date", date)
            .send(&emulator)
            .await;
        assert_eq!(
            (status, code(&body)),
            (400, "InvalidTimeStamp.Expired"),
            "{date}: {body}"
        );
    }
    // The emulator's clock 16 minutes ahead: a request made now is too old.
    clock.advance(Duration::from_secs(16 * 60));
    let param = emulator.mint(Mint::pass()).unwrap();
    let (status, body) = RawRequest::new(&emulator, &param, None)
        .send(&emulator)
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "InvalidTimeStamp.Expired"),
        "{body}"
    );
}

#[tokio::test]
async fn a_nonce_is_accepted_once() {
    let emulator = emulator().await;
    let first = RawRequest::new(&emulator, &emulator.mint(Mint::pass()).unwrap(), None);
    let nonce = first
        .headers
        .iter()
        .find(|(n, _)| n == "x-acs-signature-nonce")
        .unwrap()
        .1
        .clone();
    assert_eq!(first.send(&emulator).await.0, 200);
    let (status, body) = RawRequest::new(&emulator, &emulator.mint(Mint::pass()).unwrap(), None)
        .set("x-acs-signature-nonce", &nonce)
        .send(&emulator)
        .await;
    assert_eq!((status, code(&body)), (400, "SignatureNonceUsed"), "{body}");
}

#[tokio::test]
async fn the_body_hash_must_match_the_body() {
    let emulator = emulator().await;
    let mut request = RawRequest::new(&emulator, "param", None);
    request.body.push_str("&extra=1");
    let (status, body) = request.send(&emulator).await;
    assert_eq!((status, code(&body)), (400, "InvalidParameter"), "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("x-acs-content-sha256")
    );
}

#[tokio::test]
async fn host_and_every_acs_header_must_be_signed() {
    let emulator = emulator().await;
    for name in ["host", "x-acs-date", "x-acs-signature-nonce"] {
        let mut request = RawRequest::new(&emulator, "p", None);
        request.unsigned.push(name.into());
        let (status, body) = request.send(&emulator).await;
        assert_eq!(
            (status, code(&body)),
            (400, "IncompleteSignature"),
            "{name}: {body}"
        );
        assert!(body["Message"].as_str().unwrap().contains(name));
    }
    // An x-acs-* header added after signing is caught too.
    let mut request = RawRequest::new(&emulator, "p", None);
    request
        .after_signing
        .push(("x-acs-extra".into(), "1".into()));
    let (status, body) = request.send(&emulator).await;
    assert_eq!(
        (status, code(&body)),
        (400, "IncompleteSignature"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_access_key_is_not_found() {
    let emulator = emulator().await;
    let mut request = RawRequest::new(&emulator, "p", None);
    request.key_id = "LTAIunknown".into();
    let (status, body) = request.send(&emulator).await;
    assert_eq!(
        (status, code(&body)),
        (404, "InvalidAccessKeyId.NotFound"),
        "{body}"
    );
}

#[tokio::test]
async fn sts_keys_need_their_token() {
    let emulator = emulator().await;
    let sts = |emulator: &Emulator, token: Option<&str>| {
        let mut request = RawRequest::new(emulator, &emulator.mint(Mint::pass()).unwrap(), None);
        request.key_id = STS_ID.into();
        request.secret = STS_SECRET.into();
        match token {
            Some(token) => request.set("x-acs-security-token", token),
            None => request,
        }
    };
    let (status, body) = sts(&emulator, None).send(&emulator).await;
    assert_eq!((status, code(&body)), (400, "MissingParameter"), "{body}");
    let (status, body) = sts(&emulator, Some("wrong-token")).send(&emulator).await;
    assert_eq!(
        (status, code(&body)),
        (400, "InvalidSecurityToken.MismatchWithAccessKey"),
        "{body}"
    );
    let (status, body) = sts(&emulator, Some(STS_TOKEN)).send(&emulator).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(verdict(&body), (true, "T001"));
}

#[tokio::test]
async fn a_wrong_secret_does_not_match_but_unsigned_headers_may_change() {
    let emulator = emulator().await;
    let mut request = RawRequest::new(&emulator, "p", None);
    request.secret = "not-the-secret".into();
    let (status, body) = request.send(&emulator).await;
    assert_eq!(
        (status, code(&body)),
        (400, "SignatureDoesNotMatch"),
        "{body}"
    );

    let mut request = RawRequest::new(&emulator, &emulator.mint(Mint::pass()).unwrap(), None);
    request
        .after_signing
        .push(("user-agent".into(), "changed/1.0".into()));
    request.after_signing.push(("accept".into(), "*/*".into()));
    let (status, body) = request.send(&emulator).await;
    assert_eq!(status, 200, "{body}");

    // A signed header changed after signing breaks the signature.
    let request = RawRequest::new(&emulator, "p", None);
    let authorization = request.authorization();
    let (status, body) = request
        .set(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .send_with(&emulator, Some(authorization))
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "SignatureDoesNotMatch"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_authorization_is_incomplete() {
    let emulator = emulator().await;
    let (status, body) = RawRequest::new(&emulator, "p", None)
        .send_with(&emulator, Some("HMAC-SHA1 Signature=abc".into()))
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "IncompleteSignature"),
        "{body}"
    );
}

/// Every request the official Python SDK sent (`official-sdk-requests.json`) is accepted, with
/// the emulator's clock at the request's date.
#[tokio::test]
async fn accepts_the_official_sdk_requests() {
    for case in &common::vectors::official_sdk_requests() {
        let input = &case["input"];
        let date = input["date"].as_str().unwrap();
        let at: SystemTime = time::OffsetDateTime::parse(
            date,
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        .unwrap()
        .into();
        let mut builder = Emulator::builder().scene("1ezx8pyn").clock(move || at);
        let (id, secret) = (
            input["access_key_id"].as_str().unwrap(),
            input["access_key_secret"].as_str().unwrap(),
        );
        builder = match input["security_token"].as_str() {
            Some(token) => builder.sts_key(id, secret, token),
            None => builder.access_key(id, secret),
        };
        let emulator = builder.start("127.0.0.1:0").await.unwrap();
        let mut request = http::Request::post(format!("{}/", emulator.url()));
        for pair in case["wire"]["headers"].as_array().unwrap() {
            let name = pair[0].as_str().unwrap();
            if name != "content-length" {
                request = request.header(name, pair[1].as_str().unwrap());
            }
        }
        let body = case["wire"]["body"].as_str().unwrap().to_owned();
        let (status, answer) = send(request.body(Full::new(Bytes::from(body))).unwrap()).await;
        assert_eq!(status, 200, "{}: {answer}", case["name"]);
        assert_eq!(answer["Success"], true);
        // These params were never minted here, so the service has no record of them.
        let (passed, code) = verdict(&answer);
        assert!(
            !passed && ["F005", "F013", "F014", "F019"].contains(&code),
            "{code}"
        );
    }
}

async fn verdict_at(
    emulator: &Emulator,
    clock: &TestClock,
    param: &str,
    scene: Option<&str>,
) -> (bool, String) {
    let (status, body) = RawRequest::new(emulator, param, scene)
        .dated(clock.now())
        .send(emulator)
        .await;
    assert_eq!(status, 200, "{body}");
    let (passed, code) = verdict(&body);
    (passed, code.to_owned())
}

#[tokio::test]
async fn every_verdict_code_is_reachable() {
    let clock = TestClock::default();
    let emulator = emulator_with_clock(clock.clone()).await;
    let verdict_of = async |emulator: &Emulator, param: &str, scene: Option<&str>| {
        verdict_at(emulator, &clock, param, scene).await
    };

    // Minted verdicts, each F-code.
    for minted in [
        "F001", "F006", "F009", "F010", "F011", "F015", "F016", "F017", "F020",
    ] {
        let param = emulator
            .mint(Mint::verdict(VerifyCode::from(minted)))
            .unwrap();
        assert_eq!(
            verdict_of(&emulator, &param, Some(LOGIN)).await,
            (false, minted.into())
        );
    }
    // Single use: V3 → F018, V2 → F008.
    let v3 = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(
        verdict_of(&emulator, &v3, Some(LOGIN)).await,
        (true, "T001".into())
    );
    assert_eq!(
        verdict_of(&emulator, &v3, Some(LOGIN)).await,
        (false, "F018".into())
    );
    let v2 = emulator.mint(Mint::pass().format(ParamFormat::V2)).unwrap();
    assert!(v2.starts_with('{'));
    assert_eq!(
        verdict_of(&emulator, &v2, Some(LOGIN)).await,
        (true, "T001".into())
    );
    assert_eq!(
        verdict_of(&emulator, &v2, Some(LOGIN)).await,
        (false, "F008".into())
    );
    // Scene mismatch → F012; unknown scene → F005.
    let param = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(
        verdict_of(&emulator, &param, Some(SIGNUP)).await,
        (false, "F012".into())
    );
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new("nope").unwrap()))
        .unwrap();
    assert_eq!(
        verdict_of(&emulator, &param, None).await,
        (false, "F005".into())
    );
    // Empty, undecodable, incomplete.
    assert_eq!(
        verdict_of(&emulator, "", None).await,
        (false, "F002".into())
    );
    assert_eq!(
        verdict_of(&emulator, "%%%garbage", None).await,
        (false, "F003".into())
    );
    assert_eq!(
        verdict_of(&emulator, r#"{"sceneId":"login-scene"}"#, None).await,
        (false, "F013".into())
    );
    // Test mode scenes.
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new("test-pass").unwrap()))
        .unwrap();
    assert_eq!(
        verdict_of(&emulator, &param, None).await,
        (true, "T005".into())
    );
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new("test-fail").unwrap()))
        .unwrap();
    assert_eq!(
        verdict_of(&emulator, &param, None).await,
        (false, "F004".into())
    );
    // Age: V3 older than 90 s → F019; V2 older than 20 min → F014.
    let v3 = emulator.mint(Mint::pass()).unwrap();
    let v2 = emulator.mint(Mint::pass().format(ParamFormat::V2)).unwrap();
    let v2_fresh = emulator.mint(Mint::pass().format(ParamFormat::V2)).unwrap();
    clock.advance(Duration::from_secs(91));
    assert_eq!(
        verdict_of(&emulator, &v3, None).await,
        (false, "F019".into())
    );
    assert_eq!(
        verdict_of(&emulator, &v2_fresh, None).await,
        (true, "T001".into())
    );
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(
        verdict_of(&emulator, &v2, None).await,
        (false, "F014".into())
    );
    // T005 minted explicitly also passes.
    let param = emulator.mint(Mint::verdict(VerifyCode::T005)).unwrap();
    assert_eq!(
        verdict_of(&emulator, &param, None).await,
        (true, "T005".into())
    );

    let stats = emulator.stats();
    assert_eq!(stats.verdicts["F018"], 1);
    assert_eq!(stats.verdicts["T001"], 3);
}

#[tokio::test]
async fn params_are_minted_over_http() {
    let emulator = emulator().await;
    let (status, body) = post_json(format!("{}/emulator/params", emulator.url()), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let param = body["captchaVerifyParam"].as_str().unwrap();
    let clock = TestClock::default();
    assert_eq!(
        verdict_at(&emulator, &clock, param, Some(LOGIN)).await,
        (true, "T001".into())
    );

    let (_, body) = post_json(
        format!("{}/emulator/params", emulator.url()),
        json!({"scene": SIGNUP, "verdict": "F015", "format": "v2"}),
    )
    .await;
    let param = body["captchaVerifyParam"].as_str().unwrap();
    assert!(param.contains(SIGNUP));
    assert_eq!(
        verdict_at(&emulator, &clock, param, Some(SIGNUP)).await,
        (false, "F015".into())
    );

    let (status, body) = post_json(
        format!("{}/emulator/params", emulator.url()),
        json!({"verdict": "Z999"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn faults_are_switched_over_http_and_counted() {
    let emulator = emulator().await;
    let (status, _) = post_json(
        format!("{}/emulator/faults", emulator.url()),
        json!({"mode": "internal_error"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(emulator.faults().fault_mode(), FaultMode::InternalError);
    let param = emulator.mint(Mint::pass()).unwrap();
    let (status, body) = RawRequest::new(&emulator, &param, None)
        .send(&emulator)
        .await;
    assert_eq!((status, code(&body)), (500, "InternalError"));

    emulator.set_faults(Faults::mode(FaultMode::Unavailable));
    let (status, body) = RawRequest::new(&emulator, &param, None)
        .send(&emulator)
        .await;
    assert_eq!((status, code(&body)), (503, "ServiceUnavailable"));

    emulator.set_faults(Faults::api_error("Forbidden.RAMUserAccessDenied"));
    let (status, body) = RawRequest::new(&emulator, &param, None)
        .send(&emulator)
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "Forbidden.RAMUserAccessDenied")
    );

    let (status, _) = post_json(
        format!("{}/emulator/faults", emulator.url()),
        json!({"mode": "bogus"}),
    )
    .await;
    assert_eq!(status, 400);
    post_json(format!("{}/emulator/faults", emulator.url()), json!({})).await;
    let (status, body) = RawRequest::new(&emulator, &param, None)
        .send(&emulator)
        .await;
    assert_eq!(
        status, 200,
        "a faulted request does not use the param up: {body}"
    );

    let (status, stats) = get_json(format!("{}/emulator/stats", emulator.url())).await;
    assert_eq!(status, 200);
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["faults"], 3);
    assert_eq!(stats["repeated_params"], 3);
    assert!(stats["connections"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let emulator = emulator().await;
    emulator.set_faults(Faults::none().with_latency(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let (status, _) = RawRequest::new(&emulator, "p", None).send(&emulator).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let emulator = emulator().await;
    let param = emulator.mint(Mint::pass()).unwrap();
    let raw = RawRequest::new(&emulator, &param, None);
    let authorization = raw.authorization();
    let mut builder = http::Request::post(format!("{}/", emulator.url()));
    for (name, value) in raw.headers.iter().filter(|(n, _)| n != "host") {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .header("authorization", authorization)
        .body(Full::new(Bytes::from(raw.body)))
        .unwrap();
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

/// A raw HTTP/1.1 exchange, so that a test sets `Host` and `Origin` as a browser or a DNS
/// rebinding attack would: status, lowercase header names and values, JSON body.
async fn exchange(
    emulator: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(emulator.addr())
        .await
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (
        status,
        headers,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const MINT_BODY: &str = r#"{"verdict": "T001"}"#;
const EVERYONE_PASSES: &str =
    r#"{"mode": "result", "result": {"VerifyResult": true, "VerifyCode": "T001"}}"#;

#[tokio::test]
async fn the_stand_in_widget_script_is_served_to_every_page() {
    let emulator = emulator().await;
    for host in [emulator.addr().to_string(), "evil.example".to_owned()] {
        let (status, headers, _) = exchange(
            &emulator,
            "GET",
            "/emulator/captcha.js",
            &[("host", host.as_str()), ("origin", "http://evil.example")],
            "",
        )
        .await;
        assert_eq!(status, 200, "{host}");
        assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
        assert!(
            header(&headers, "content-type")
                .unwrap()
                .starts_with("application/javascript")
        );
    }
    let request = http::Request::get(format!("{}/emulator/captcha.js", emulator.url()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let response = client.request(request).await.unwrap();
    let script = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&script).contains("window.initAliyunCaptcha = function (options)")
    );
    // The service path itself is not opened to browsers, as the real one is not.
    let preflight = http::Request::builder()
        .method(http::Method::OPTIONS)
        .uri(format!("{}/", emulator.url()))
        .header("origin", "http://127.0.0.1:3000")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(preflight).await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// DNS rebinding: a hostile name resolved to the emulator reaches it with that name in `Host`.
/// Its API refuses to mint or to switch a fault on, and nothing changes.
#[tokio::test]
async fn the_api_refuses_requests_addressed_to_another_host() {
    let emulator = emulator().await;
    let port = emulator.addr().port();
    let rebound = format!("rebind.evil.example:{port}");
    for (method, path, body) in [
        ("POST", "/emulator/params", MINT_BODY),
        ("POST", "/emulator/faults", EVERYONE_PASSES),
        ("GET", "/emulator/stats", ""),
        ("GET", "/emulator/faults", ""),
    ] {
        for host in [rebound.as_str(), "localhost:1", ""] {
            let (status, headers, answer) =
                exchange(&emulator, method, path, &[("host", host)], body).await;
            assert_eq!(status, 421, "{method} {path} for {host:?}: {answer}");
            assert_eq!(code(&answer), "UnknownHost");
            assert!(answer["Message"].as_str().unwrap().contains("--allow-host"));
            assert!(answer.get("captchaVerifyParam").is_none());
            assert!(header(&headers, "access-control-allow-origin").is_none());
        }
    }
    assert_eq!(emulator.faults(), Faults::none());
    assert_eq!(emulator.stats().params_minted, 0);

    // Its own address and localhost on its port are served.
    for host in [emulator.addr().to_string(), format!("localhost:{port}")] {
        let (status, _, answer) = exchange(
            &emulator,
            "POST",
            "/emulator/params",
            &[("host", &host)],
            MINT_BODY,
        )
        .await;
        assert_eq!(status, 200, "{host}: {answer}");
        assert!(answer["captchaVerifyParam"].is_string());
    }
}

/// A page of another origin may not mint or switch faults: a browser sends a simple
/// cross-origin POST even when the page cannot read the answer, so the request is refused, not
/// only left without CORS headers.
#[tokio::test]
async fn the_api_refuses_pages_it_was_not_told_about() {
    let emulator = emulator().await;
    let host = emulator.addr().to_string();
    for (method, path, body) in [
        ("POST", "/emulator/params", MINT_BODY),
        ("POST", "/emulator/faults", EVERYONE_PASSES),
        ("GET", "/emulator/stats", ""),
        ("OPTIONS", "/emulator/params", ""),
    ] {
        for origin in ["http://evil.example", "null", "http://127.0.0.1:3000"] {
            let (status, headers, answer) = exchange(
                &emulator,
                method,
                path,
                &[
                    ("host", &host),
                    ("origin", origin),
                    ("content-type", "text/plain"),
                ],
                body,
            )
            .await;
            assert_eq!(status, 403, "{method} {path} from {origin}: {answer}");
            assert_eq!(code(&answer), "OriginNotAllowed");
            assert!(
                answer["Message"]
                    .as_str()
                    .unwrap()
                    .contains("--allow-origin")
            );
            assert!(header(&headers, "access-control-allow-origin").is_none());
        }
    }
    assert_eq!(emulator.faults(), Faults::none());
    assert_eq!(emulator.stats().params_minted, 0);
    // Without an Origin (curl, a test, a back end) the same request is served, without CORS
    // headers.
    let (status, headers, answer) = exchange(
        &emulator,
        "POST",
        "/emulator/params",
        &[("host", &host)],
        MINT_BODY,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(header(&headers, "access-control-allow-origin").is_none());
}

/// Pages of the origins it was told about, before it started or while it runs, get CORS
/// headers for their own origin, and their params verify.
#[tokio::test]
async fn allowed_origins_get_cors_headers_for_themselves() {
    let emulator = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .allow_origin("http://localhost:3000")
        .start("127.0.0.1:0")
        .await
        .unwrap();
    emulator.allow_origin("http://127.0.0.1:3000/").unwrap();
    assert!(emulator.allow_origin("127.0.0.1:3000").is_err());
    let host = emulator.addr().to_string();
    for origin in ["http://localhost:3000", "http://127.0.0.1:3000"] {
        // The widget's request: a text/plain POST, no preflight.
        let (status, headers, answer) = exchange(
            &emulator,
            "POST",
            "/emulator/params",
            &[
                ("host", &host),
                ("origin", origin),
                ("content-type", "text/plain"),
            ],
            &json!({"scene": LOGIN}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{origin}: {answer}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(origin)
        );
        assert_eq!(header(&headers, "vary"), Some("origin"));
        let param = answer["captchaVerifyParam"].as_str().unwrap();
        let verdict = client_for(&emulator)
            .verify(request(param, Some(LOGIN)))
            .await
            .unwrap();
        assert!(verdict.passed());
        // A preflight (a JSON POST, say) is answered for them too.
        let (status, headers, _) = exchange(
            &emulator,
            "OPTIONS",
            "/emulator/faults",
            &[
                ("host", &host),
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
        )
        .await;
        assert_eq!(status, 204);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(origin)
        );
        assert!(
            header(&headers, "access-control-allow-methods")
                .unwrap()
                .contains("POST")
        );
    }
    // Another port of the same host is another origin.
    let (status, _, _) = exchange(
        &emulator,
        "POST",
        "/emulator/params",
        &[("host", &host), ("origin", "http://localhost:3001")],
        MINT_BODY,
    )
    .await;
    assert_eq!(status, 403);
}

/// A name given with `allow_host` (another container's name for it) reaches the API; an origin
/// or host that is not one stops the emulator from starting.
#[tokio::test]
async fn allowed_hosts_reach_the_api_and_bad_names_fail_the_start() {
    let emulator = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .allow_host("captcha-emulator")
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let (status, _, answer) = exchange(
        &emulator,
        "POST",
        "/emulator/params",
        &[("host", "captcha-emulator:8787")],
        MINT_BODY,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, _) = exchange(
        &emulator,
        "POST",
        "/emulator/params",
        &[("host", "other-name:8787")],
        MINT_BODY,
    )
    .await;
    assert_eq!(status, 421);
    for builder in [
        Emulator::builder().allow_origin("http://localhost:3000/login"),
        Emulator::builder().allow_host("a/b"),
    ] {
        let error = builder.start("127.0.0.1:0").await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    }
}

/// `UserCertifyId`: the page's own certify id comes back as the verdict's `CertifyId`, so that
/// a back end can match the two; one not in Alibaba's format is refused at minting.
#[tokio::test]
async fn a_user_certify_id_comes_back_as_the_certify_id() {
    let emulator = emulator().await;
    let (status, body) = post_json(
        format!("{}/emulator/params", emulator.url()),
        json!({"scene": LOGIN, "userCertifyId": "tx5ytbc_7G47iByes3"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let param = body["captchaVerifyParam"].as_str().unwrap();
    let (status, answer) = RawRequest::new(&emulator, param, Some(LOGIN))
        .send(&emulator)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Result"]["CertifyId"], "tx5ytbc_7G47iByes3");
    // The client hands it over, and a V2 param carries one too.
    let param = emulator
        .mint(
            Mint::pass()
                .format(ParamFormat::V2)
                .user_certify_id("tx5ytbc_0123456789"),
        )
        .unwrap();
    let verdict = client_for(&emulator)
        .verify(request(&param, Some(LOGIN)))
        .await
        .unwrap();
    assert!(verdict.passed());
    assert_eq!(verdict.certify_id(), Some("tx5ytbc_0123456789"));
    // Without one, the challenge's own id, which is not the page's.
    let param = emulator.mint(Mint::pass()).unwrap();
    let verdict = client_for(&emulator)
        .verify(request(&param, Some(LOGIN)))
        .await
        .unwrap();
    assert!(!verdict.certify_id().unwrap().contains('_'));

    for bad in ["7G47iByes3", "tx5ytbc_short", "tx5ytbc_7G47iBye$3"] {
        let (status, body) = post_json(
            format!("{}/emulator/params", emulator.url()),
            json!({"userCertifyId": bad}),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["Message"]
                .as_str()
                .unwrap()
                .contains("IllegalCertifyId")
        );
    }
}

/// A scene in encryption mode: params minted over HTTP with the page's `encryptedSceneId`
/// pass; without one, with a forged one, or with another scene's, they fail with F022.
#[tokio::test]
async fn encryption_mode_scenes_need_a_valid_encrypted_scene_id() {
    use tower_aliyun_captcha::encryption::SceneKey;
    let key = SceneKey::from_bytes([42; 32]);
    let emulator = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .encrypted_scene("secure", key.clone())
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let client = client_for(&emulator);
    let secure = tower_aliyun_captcha::SceneId::new("secure").unwrap();
    let granted = key
        .encrypted_scene_id(&secure, Duration::from_secs(300))
        .unwrap();
    let other = key
        .encrypted_scene_id(
            &tower_aliyun_captcha::SceneId::new(LOGIN).unwrap(),
            Duration::from_secs(300),
        )
        .unwrap();
    let foreign = SceneKey::from_bytes([7; 32])
        .encrypted_scene_id(&secure, Duration::from_secs(300))
        .unwrap();
    for (token, expected) in [
        (Some(granted.as_str()), "T001"),
        (None, "F022"),
        (Some(other.as_str()), "F022"),
        (Some(foreign.as_str()), "F022"),
        (Some("bm90IGEgdG9rZW4="), "F022"),
    ] {
        let mut mint = json!({"scene": "secure"});
        if let Some(token) = token {
            mint["encryptedSceneId"] = token.into();
        }
        let (status, body) = post_json(format!("{}/emulator/params", emulator.url()), mint).await;
        assert_eq!(status, 200, "{body}");
        let param = body["captchaVerifyParam"].as_str().unwrap();
        let verdict = client.verify(request(param, Some("secure"))).await.unwrap();
        assert_eq!(verdict.code().as_str(), expected, "{token:?}");
    }
    // Encryption mode is V3's: a V2 param needs no EncryptedSceneId, and ignores a bad one.
    for token in [None, Some("bm90IGEgdG9rZW4=")] {
        let mut mint = json!({"scene": "secure", "format": "v2"});
        if let Some(token) = token {
            mint["encryptedSceneId"] = token.into();
        }
        let (_, body) = post_json(format!("{}/emulator/params", emulator.url()), mint).await;
        let param = body["captchaVerifyParam"].as_str().unwrap();
        let verdict = client.verify(request(param, Some("secure"))).await.unwrap();
        assert_eq!(verdict.code().as_str(), "T001", "V2 with {token:?}");
    }
}

/// A param edited after it was made fails (its signature would not hold at Alibaba's), and is
/// not used up: the untouched param still passes in its own scene. Edited: its scene; its
/// token forged (a review's finding: the emulator checked the certify id only); rewritten in
/// V2's format, whose records live 20 minutes, after the 90 seconds of a V3 challenge.
#[tokio::test]
async fn a_param_edited_in_any_way_fails() {
    use base64::Engine as _;
    let clock = TestClock::default();
    let emulator = emulator_with_clock(clock.clone()).await;
    let param = emulator.mint(Mint::pass()).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let fields: Value = serde_json::from_slice(&engine.decode(&param).unwrap()).unwrap();
    assert_eq!(fields["sceneId"], LOGIN);
    let mut other_scene = fields.clone();
    other_scene["sceneId"] = json!(SIGNUP);
    let edited = engine.encode(other_scene.to_string());
    assert_eq!(
        verdict_at(&emulator, &clock, &edited, Some(SIGNUP)).await,
        (false, "F003".into())
    );
    let forged = engine.encode(
        json!({"certifyId": fields["certifyId"], "sceneId": LOGIN, "securityToken": "forged"})
            .to_string(),
    );
    assert_eq!(
        verdict_at(&emulator, &clock, &forged, Some(LOGIN)).await,
        (false, "F003".into())
    );
    assert_eq!(
        verdict_at(&emulator, &clock, &param, Some(LOGIN)).await,
        (true, "T001".into())
    );

    let expiring = emulator.mint(Mint::pass()).unwrap();
    let fields: Value = serde_json::from_slice(&engine.decode(&expiring).unwrap()).unwrap();
    clock.advance(Duration::from_secs(91));
    let as_v2 = json!({"sceneId": LOGIN, "certifyId": fields["certifyId"]}).to_string();
    assert_eq!(
        verdict_at(&emulator, &clock, &as_v2, Some(LOGIN)).await,
        (false, "F003".into())
    );
    assert_eq!(
        verdict_at(&emulator, &clock, &expiring, Some(LOGIN)).await,
        (false, "F019".into())
    );
}
