//! Runs the Captcha 2.0 emulator as a standalone server.
//!
//! ```text
//! cargo run --example emulator -- --listen 127.0.0.1:0 \
//!     --access-key-id ID --access-key-secret SECRET [--security-token TOKEN] \
//!     [--scene ID]… [--test-mode-scene ID[=fail]]… [--encrypted-scene ID=EKEY]…
//! ```
//!
//! Credentials may come from `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`
//! and `ALIBABA_CLOUD_SECURITY_TOKEN` instead. The first line on stdout is
//! `listening on http://HOST:PORT`. Ctrl-C or SIGTERM stops it.

use std::io::Write as _;
use std::process::ExitCode;

use tower_aliyun_captcha::Credentials;
use tower_aliyun_captcha::emulator::{Emulator, TestMode};
use tower_aliyun_captcha::encryption::SceneKey;

const USAGE: &str = "usage: emulator [--listen ADDR] [--access-key-id ID --access-key-secret SECRET \
[--security-token TOKEN]] [--scene ID]... [--test-mode-scene ID[=fail]]... \
[--encrypted-scene ID=EKEY]...";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("emulator: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let mut listen = "127.0.0.1:8787".to_owned();
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut builder = Emulator::builder();
    let mut scenes = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--access-key-id" => id = Some(value()?),
            "--access-key-secret" => secret = Some(value()?),
            "--security-token" => token = Some(value()?),
            "--scene" => {
                builder = builder.scene(value()?);
                scenes += 1;
            }
            "--test-mode-scene" => {
                let spec = value()?;
                builder = match spec.split_once('=') {
                    Some((scene, "fail")) => builder.test_mode_scene(scene, TestMode::Fail),
                    Some((scene, "pass")) => builder.test_mode_scene(scene, TestMode::Pass),
                    Some(_) => {
                        return Err(format!(
                            "--test-mode-scene {spec}: use ID, ID=pass or ID=fail"
                        ));
                    }
                    None => builder.test_mode_scene(spec, TestMode::Pass),
                };
                scenes += 1;
            }
            "--encrypted-scene" => {
                let spec = value()?;
                let (scene, ekey) = spec.split_once('=').ok_or(format!(
                    "--encrypted-scene {spec}: use ID=EKEY (Base64 of 32 bytes)"
                ))?;
                let key = SceneKey::from_base64(ekey)
                    .map_err(|e| format!("--encrypted-scene {scene}: {e}"))?;
                builder = builder.encrypted_scene(scene, key);
                scenes += 1;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let credentials = match (id, secret) {
        (Some(id), Some(secret)) => {
            let credentials = Credentials::new(id, secret);
            match token {
                Some(token) => credentials.with_security_token(token),
                None => credentials,
            }
        }
        (None, None) => Credentials::from_env().map_err(|e| e.to_string())?,
        _ => return Err("give both --access-key-id and --access-key-secret".into()),
    };
    if scenes == 0 {
        builder = builder.scene("emulator-scene");
    }
    let emulator = builder
        .credentials(&credentials)
        .start(listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;

    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", emulator.url());
    let _ = stdout.flush();
    eprintln!(
        "emulator: access key id {}; mint a param with: curl -s -X POST {}/emulator/params -d '{{}}'",
        credentials.access_key_id(),
        emulator.url()
    );

    shutdown_signal().await;
    emulator.shutdown().await;
    eprintln!("emulator: stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
