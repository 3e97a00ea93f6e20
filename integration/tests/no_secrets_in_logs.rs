//! Secrets, tokens and params never show in logs, `Debug` output or errors.
//!
//! In a test binary of its own: tracing caches per-callsite interest process-wide, so tests on
//! other threads without a subscriber could otherwise hide this test's spans.

mod common;

use std::sync::{Arc, Mutex};

use aliyun_captcha_emulator::{Emulator, FaultMode, Faults, Mint};
use common::*;
use tower_aliyun_captcha::credentials::{
    CredentialsError, CredentialsUri, ProvideCredentials, RamRoleArn,
};
use tower_aliyun_captcha::{Client, Credentials};

#[tokio::test]
async fn secrets_and_params_never_show_in_logs_debug_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = emulator().await;
    let credentials = Credentials::new(STS_ID, STS_SECRET).with_security_token(STS_TOKEN);
    let client = client_with(emulator.url(), credentials.clone());
    let mut printed = vec![format!("{credentials:?}"), format!("{client:?}")];
    let param = emulator.mint(Mint::pass()).unwrap();
    let verify = request(&param, Some(LOGIN));
    printed.push(format!("{verify:?}"));
    printed.push(format!("{:?}", client.verify(verify).await));
    for faults in [
        Faults::mode(FaultMode::CloseConnection),
        Faults::api_error("SignatureDoesNotMatch"),
    ] {
        emulator.set_faults(faults);
        let error = client.verify(request(&param, None)).await.unwrap_err();
        printed.push(format!("{error:?} {error}"));
    }
    let wrong = client_with(emulator.url(), Credentials::new(KEY_ID, KEY_SECRET));
    printed.push(format!("{:?}", wrong.verify(request(&param, None)).await));

    // Temporary credentials from the emulated STS: what they are, recorded on the way, must
    // show nowhere either.
    const ROLE: &str = "acs:ram::1:role/captcha";
    let sts = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .role(ROLE)
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let issued: Arc<Mutex<Vec<Credentials>>> = Arc::default();
    let role = Arc::new(
        RamRoleArn::new(Credentials::new(KEY_ID, KEY_SECRET), ROLE).sts_endpoint(sts.url()),
    );
    let record = Arc::clone(&issued);
    let recording = move || {
        let (role, record) = (Arc::clone(&role), Arc::clone(&record));
        async move {
            let credentials = role.provide_credentials().await?;
            record.lock().unwrap().push(credentials.clone());
            Ok::<_, CredentialsError>(credentials)
        }
    };
    let client = Client::builder()
        .credentials_provider(recording)
        .endpoint(sts.url())
        .allow_http(true)
        .build()
        .unwrap();
    let sts_param = sts.mint(Mint::pass()).unwrap();
    printed.push(format!(
        "{:?}",
        client.verify(request(&sts_param, Some(LOGIN))).await
    ));
    printed.push(format!("{client:?}"));
    let issued = issued.lock().unwrap().clone();
    assert_eq!(issued.len(), 1);
    let mut secrets: Vec<String> = vec![
        STS_SECRET.into(),
        STS_TOKEN.into(),
        KEY_SECRET.into(),
        param.clone(),
        sts_param.clone(),
    ];
    for credentials in &issued {
        printed.push(format!("{credentials:?}"));
        secrets.push(credentials.access_key_secret().expose().to_owned());
        secrets.push(credentials.security_token().unwrap().expose().to_owned());
    }

    // A credentials URI with a secret in its user part, path and query, failing three ways:
    // nothing listening, a 404, and an answer that is not credentials.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for url in [
        format!("http://uri-user:uri-pass@{closed}/uri-path?token=uri-token"),
        format!("{}/uri-path?token=uri-token", sts.url()),
        format!("{}/emulator/stats?token=uri-token", sts.url()),
    ] {
        let client = Client::builder()
            .credentials_provider(CredentialsUri::new(url.clone()))
            .endpoint(sts.url())
            .allow_http(true)
            .build()
            .unwrap();
        let error = client.verify(request(&sts_param, None)).await.unwrap_err();
        printed.push(format!("{error:?} {error} {client:?}"));
        printed.push(format!("{:?}", CredentialsUri::new(url)));
    }
    secrets.extend(["uri-pass", "uri-path", "uri-token"].map(String::from));

    let logs = captured.text();
    assert!(
        logs.contains("captcha.verify"),
        "the client logs its calls: {logs}"
    );
    printed.push(logs);
    for text in printed {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} leaked in: {text}"
            );
        }
    }
}
