//! Outbound proxies, with a `CONNECT` proxy on the loopback: an explicit proxy (with and
//! without credentials), proxies from environment-style variables with `NO_PROXY` and the
//! loopback exemption, and a proxy that refuses the tunnel (a configuration error, never an
//! outage).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aliyun_captcha_emulator::Mint;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_aliyun_captcha::client::{BuildError, ClientBuilder, Proxy};
use tower_aliyun_captcha::error::{ErrorClass, TransportErrorKind};
use tower_aliyun_captcha::{Error, VerifyCode};

/// A host name only the test proxy knows: it sends it to `target`.
const PROXIED_HOST: &str = "captcha.proxied.test";

/// One `CONNECT`: its target and its `Proxy-Authorization`.
type Asked = (String, Option<String>);

/// What the proxy was asked.
#[derive(Clone, Default)]
struct Tunnels(Arc<Mutex<Vec<Asked>>>);

/// A `CONNECT` proxy that tunnels to `target` whatever host was named, and refuses with 407
/// when `password` is set and not given.
async fn connect_proxy(
    target: SocketAddr,
    required: Option<&'static str>,
) -> (SocketAddr, Tunnels) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Tunnels::default();
    let seen = tunnels.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let mut lines = head.lines();
                let request = lines.next().unwrap_or_default().to_owned();
                let auth = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
                    .map(|(_, value)| value.trim().to_owned());
                let connect_to = request
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or_default()
                    .to_owned();
                seen.0.lock().unwrap().push((connect_to, auth.clone()));
                if required.is_some_and(|expected| auth.as_deref() != Some(expected)) {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, tunnels)
}

#[tokio::test]
async fn an_explicit_proxy_tunnels_every_verification() {
    let emulator = emulator().await;
    let (proxy, tunnels) = connect_proxy(emulator.addr(), None).await;
    let client = client_builder(emulator.url())
        .proxy(Proxy::url(format!("http://{proxy}")))
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    let verdict = client.verify(request(&param, Some(LOGIN))).await.unwrap();
    assert_eq!(verdict.code(), &VerifyCode::T001);
    let seen = tunnels.0.lock().unwrap().clone();
    assert_eq!(seen, [(emulator.addr().to_string(), None)]);
}

#[tokio::test]
async fn proxy_credentials_are_sent_and_a_refusal_is_a_configuration_error() {
    let emulator = emulator().await;
    // base64("ann:s3cret")
    let (proxy, tunnels) = connect_proxy(emulator.addr(), Some("Basic YW5uOnMzY3JldA==")).await;
    let with = client_builder(emulator.url())
        .proxy(Proxy::url(format!("http://ann:s3cret@{proxy}")))
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    assert!(with.verify(request(&param, None)).await.unwrap().passed());

    let without = client_builder(emulator.url())
        .proxy(Proxy::url(format!("http://{proxy}")))
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    let error = without.verify(request(&param, None)).await.unwrap_err();
    match &error {
        Error::Transport(transport) => {
            assert_eq!(transport.kind(), TransportErrorKind::Proxy, "{error}");
            assert!(!transport.may_have_reached_server());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::Configuration);
    assert_eq!(
        emulator.stats().requests,
        1,
        "only the authorised tunnel reached the service"
    );
    assert_eq!(tunnels.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn proxies_from_variables_honour_no_proxy_and_skip_the_loopback() {
    let emulator = emulator().await;
    let (proxy, tunnels) = connect_proxy(emulator.addr(), None).await;
    let port = emulator.addr().port();
    let variables = move |no_proxy: Option<&'static str>| {
        move |name: &str| match name {
            "HTTP_PROXY" => Some(format!("http://{proxy}")),
            "NO_PROXY" => no_proxy.map(str::to_owned),
            _ => None,
        }
    };
    // A host only the proxy can resolve: reached through it.
    let proxied = client_builder(format!("http://{PROXIED_HOST}:{port}"))
        .proxy(Proxy::from_lookup(variables(Some(
            "other.test, 10.0.0.0/8",
        ))))
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    assert!(
        proxied
            .verify(request(&param, None))
            .await
            .unwrap()
            .passed()
    );
    assert_eq!(
        tunnels.0.lock().unwrap().clone(),
        [(format!("{PROXIED_HOST}:{port}"), None)]
    );

    // The same host in NO_PROXY: a direct connection, which cannot resolve it.
    let direct = client_builder(format!("http://{PROXIED_HOST}:{port}"))
        .proxy(Proxy::from_lookup(variables(Some(PROXIED_HOST))))
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    let error = direct.verify(request(&param, None)).await.unwrap_err();
    assert!(!error.may_have_reached_server(), "{error}");

    // The loopback (a local emulator) is never proxied by variables.
    let local = client_builder(emulator.url())
        .proxy(Proxy::from_lookup(variables(None)))
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    assert!(local.verify(request(&param, None)).await.unwrap().passed());
    assert_eq!(
        tunnels.0.lock().unwrap().len(),
        1,
        "the loopback went through the proxy"
    );
}

#[test]
fn a_bad_proxy_url_is_refused_and_credentials_are_never_shown() {
    let bad = client_builder("http://127.0.0.1:1".into())
        .proxy(Proxy::url("socks5://127.0.0.1:1080"))
        .build();
    assert!(matches!(bad, Err(BuildError::Proxy(_))));
    let proxy = Proxy::url("http://ann:s3cret@proxy.test:3128");
    assert!(!format!("{proxy:?}").contains("s3cret"));
    let from_env = Proxy::from_lookup(|name| {
        (name == "HTTPS_PROXY").then(|| "http://ann:s3cret@proxy.test:3128".to_owned())
    });
    assert!(!format!("{from_env:?}").contains("s3cret"));
}

#[tokio::test]
async fn an_app_switches_to_the_emulator_with_variables_alone() {
    let emulator = emulator().await;
    let url = emulator.url();
    let client = ClientBuilder::from_lookup(move |name| match name {
        "ALIBABA_CLOUD_ACCESS_KEY_ID" => Some(KEY_ID.into()),
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some(KEY_SECRET.into()),
        "ALIBABA_CLOUD_REGION_ID" => Some("ap-southeast-1".into()),
        "ALIBABA_CLOUD_CAPTCHA_ENDPOINT" => Some(url.clone()),
        _ => None,
    })
    .unwrap()
    .build()
    .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    assert!(client.verify(request(&param, None)).await.unwrap().passed());

    // Plain HTTP elsewhere than the loopback needs an explicit yes.
    let remote = |allow: Option<&'static str>| {
        ClientBuilder::from_lookup(move |name| match name {
            "ALIBABA_CLOUD_ACCESS_KEY_ID" => Some(KEY_ID.into()),
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some(KEY_SECRET.into()),
            "ALIBABA_CLOUD_CAPTCHA_ENDPOINT" => Some("http://emulator.internal:8787".into()),
            "ALIBABA_CLOUD_CAPTCHA_ALLOW_HTTP" => allow.map(str::to_owned),
            _ => None,
        })
        .unwrap()
        .build()
    };
    assert!(matches!(remote(None), Err(BuildError::PlainHttp(_))));
    assert!(remote(Some("true")).is_ok());
    // A region nobody knows is a clear error.
    let unknown = ClientBuilder::from_lookup(|name| match name {
        "ALIBABA_CLOUD_ACCESS_KEY_ID" => Some(KEY_ID.into()),
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some(KEY_SECRET.into()),
        "ALIBABA_CLOUD_REGION_ID" => Some("mars-north-1".into()),
        _ => None,
    });
    assert!(matches!(unknown, Err(BuildError::Region { .. })));
}
