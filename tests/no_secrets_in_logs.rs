//! Secrets, tokens and params never show in logs, `Debug` output or errors.
//!
//! In a test binary of its own: tracing caches per-callsite interest process-wide, so tests on
//! other threads without a subscriber could otherwise hide this test's spans.

mod common;

use common::*;
use tower_aliyun_captcha::Credentials;
use tower_aliyun_captcha::emulator::{FaultMode, Faults, Mint};

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

    let logs = captured.text();
    assert!(
        logs.contains("captcha.verify"),
        "the client logs its calls: {logs}"
    );
    printed.push(logs);
    for text in printed {
        for secret in [STS_SECRET, STS_TOKEN, KEY_SECRET, param.as_str()] {
            assert!(!text.contains(secret), "{secret:?} leaked in: {text}");
        }
    }
}
