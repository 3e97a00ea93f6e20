//! HTTPS: certificates are verified by default, a private CA can be trusted explicitly, and
//! HTTP/2 is negotiated by ALPN.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;
use tower_aliyun_captcha::client::Tls;
use tower_aliyun_captcha::error::TransportErrorKind;
use tower_aliyun_captcha::{
    CaptchaVerifyParam, Client, Credentials, Error, VerifyCode, VerifyRequest,
};

const ANSWER: &str = r#"{"RequestId":"tls","Code":"Success","Success":true,"Result":{"VerifyResult":true,"VerifyCode":"T001"}}"#;

/// A TLS server for `localhost` answering every request with a pass; reports whether any
/// request came over HTTP/2.
async fn tls_server() -> (u16, CertificateDer<'static>, Arc<AtomicBool>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    // ring's provider is deprecated (no post-quantum key exchange); the client uses it too.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let saw_http2 = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&saw_http2);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (acceptor, flag) = (acceptor.clone(), Arc::clone(&flag));
            tokio::spawn(async move {
                // A refused handshake is the point of one of the tests.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request: Request<Incoming>| {
                    if request.version() == http::Version::HTTP_2 {
                        flag.store(true, Ordering::SeqCst);
                    }
                    async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                            ANSWER.as_bytes(),
                        ))))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, cert, saw_http2)
}

fn request() -> VerifyRequest {
    VerifyRequest::new(CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap())
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_before_anything_is_sent() {
    let (port, _cert, _) = tls_server().await;
    let client = Client::builder()
        .credentials(Credentials::new("id", "secret"))
        .endpoint(format!("https://localhost:{port}"))
        .build()
        .unwrap();
    match client.verify(request()).await {
        Err(Error::Transport(error)) => {
            assert_eq!(error.kind(), TransportErrorKind::Tls, "{error}");
            assert!(!error.may_have_reached_server());
        }
        other => panic!("an untrusted certificate was accepted: {other:?}"),
    }
}

#[tokio::test]
async fn a_private_ca_can_be_trusted_and_http2_is_negotiated() {
    let (port, cert, saw_http2) = tls_server().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = Client::builder()
        .credentials(Credentials::new("id", "secret"))
        .endpoint(format!("https://localhost:{port}"))
        .tls(Tls::roots(roots))
        .build()
        .unwrap();
    let verdict = client.verify(request()).await.unwrap();
    assert_eq!(verdict.code(), &VerifyCode::T001);
    assert!(
        saw_http2.load(Ordering::SeqCst),
        "ALPN should have chosen HTTP/2"
    );
}
