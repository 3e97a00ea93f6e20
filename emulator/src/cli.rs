//! The emulator's command line, shared by the `aliyun-captcha-emulator` binary and the
//! `emulator` example.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::{Emulator, EmulatorBuilder, TestMode};
use clap::Parser;
use tower_aliyun_captcha::Credentials;
use tower_aliyun_captcha::encryption::SceneKey;

/// The AccessKey the emulator accepts when given none: for development only, documented in the
/// README, and never valid at Alibaba Cloud.
const DEV_ACCESS_KEY_ID: &str = "emulator-access-key-id";
const DEV_ACCESS_KEY_SECRET: &str = "emulator-access-key-secret";
/// The variables `Credentials::from_env` reads the AccessKey from, as Alibaba Cloud's SDKs do.
const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// The scene the emulator knows when given none.
const DEV_SCENE: &str = "emulator-scene";

/// A local emulator of Alibaba Cloud Captcha 2.0's VerifyIntelligentCaptcha API: it checks
/// ACS3-HMAC-SHA256 signatures, mints single-use params, answers every verdict code, and
/// injects faults on request.
///
/// With no arguments it serves http://127.0.0.1:8787 with development credentials
/// (emulator-access-key-id / emulator-access-key-secret) and one scene, emulator-scene. The
/// first line on stdout is `listening on http://HOST:PORT`.
#[derive(Parser, Debug)]
#[command(name = "aliyun-captcha-emulator", version)]
struct Args {
    /// Address to listen on. Use 0.0.0.0:PORT to reach it from a phone or another container
    /// (its API then answers the address they use; a container's name for it needs
    /// --allow-host), and port 0 for any free port.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    listen: String,

    /// The AccessKey id to accept (default: ALIBABA_CLOUD_ACCESS_KEY_ID, else the development
    /// key).
    #[arg(long, value_name = "ID", requires = "access_key_secret")]
    access_key_id: Option<String>,

    /// The AccessKey secret to accept (default: ALIBABA_CLOUD_ACCESS_KEY_SECRET, else the
    /// development secret).
    #[arg(long, value_name = "SECRET", requires = "access_key_id")]
    access_key_secret: Option<String>,

    /// Makes the key an STS key that must come with this security token.
    #[arg(long, value_name = "TOKEN", requires = "access_key_id")]
    security_token: Option<String>,

    /// A scene id to know (repeatable; the first is the default for minted params).
    #[arg(long = "scene", value_name = "ID")]
    scenes: Vec<String>,

    /// A scene in test mode: every param gets T005 (ID or ID=pass) or F004 (ID=fail).
    #[arg(long = "test-mode-scene", value_name = "ID[=pass|fail]", value_parser = test_mode_scene)]
    test_mode_scenes: Vec<(String, TestMode)>,

    /// A scene in V3 encryption mode, with its encrypt key (EKEY: Base64 of 32 bytes).
    #[arg(long = "encrypted-scene", value_name = "ID=EKEY", value_parser = encrypted_scene)]
    encrypted_scenes: Vec<(String, SceneKey)>,

    /// A RAM role STS may assume (AssumeRole, AssumeRoleWithOIDC); repeatable.
    #[arg(long = "role", value_name = "ARN")]
    roles: Vec<String>,

    /// An OIDC provider and the token it accepts for AssumeRoleWithOIDC.
    #[arg(long = "oidc-provider", value_name = "ARN=TOKEN", value_parser = pair)]
    oidc_providers: Vec<(String, String)>,

    /// Serve an ECS metadata service with this RAM role attached.
    #[arg(long, value_name = "ROLE")]
    instance_role: Option<String>,

    /// The longest life of issued temporary credentials, in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    credentials_lifetime: Option<u64>,

    /// An origin (http://HOST:PORT, as the address bar shows it) whose pages may call the
    /// emulator's API (/emulator/params, faults, stats, credentials) from the browser, as the
    /// stand-in widget does; repeatable. Other pages are refused.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,

    /// Another name (HOST, or HOST:PORT) the emulator's API answers for, besides its address
    /// and localhost: the name another container or a proxy reaches it by; repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
}

fn test_mode_scene(spec: &str) -> Result<(String, TestMode), String> {
    match spec.split_once('=') {
        None => Ok((spec.to_owned(), TestMode::Pass)),
        Some((scene, "pass")) => Ok((scene.to_owned(), TestMode::Pass)),
        Some((scene, "fail")) => Ok((scene.to_owned(), TestMode::Fail)),
        Some(_) => Err("use ID, ID=pass or ID=fail".to_owned()),
    }
}

fn encrypted_scene(spec: &str) -> Result<(String, SceneKey), String> {
    let (scene, ekey) = spec
        .split_once('=')
        .ok_or("use ID=EKEY (EKEY: Base64 of 32 bytes)")?;
    let key = SceneKey::from_base64(ekey).map_err(|e| e.to_string())?;
    Ok((scene.to_owned(), key))
}

fn pair(spec: &str) -> Result<(String, String), String> {
    spec.split_once('=')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| "use ARN=TOKEN".to_owned())
}

/// Where the accepted key came from: what may be printed about it.
enum KeySource {
    Development,
    CommandLine,
    Environment,
}

/// Runs the program: parses the command line, serves until stopped.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("aliyun-captcha-emulator: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("aliyun-captcha-emulator: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (credentials, source) = match (&args.access_key_id, &args.access_key_secret) {
        (Some(id), Some(secret)) => {
            let credentials = Credentials::new(id, secret);
            let credentials = match &args.security_token {
                Some(token) => credentials.with_security_token(token),
                None => credentials,
            };
            (credentials, KeySource::CommandLine)
        }
        _ => match Credentials::from_env() {
            Ok(credentials) => (credentials, KeySource::Environment),
            Err(_) => (
                Credentials::new(DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET),
                KeySource::Development,
            ),
        },
    };
    let mut builder: EmulatorBuilder = Emulator::builder().credentials(&credentials);
    let mut scenes: Vec<String> = Vec::new();
    for scene in &args.scenes {
        builder = builder.scene(scene);
        scenes.push(scene.clone());
    }
    for (scene, mode) in &args.test_mode_scenes {
        builder = builder.test_mode_scene(scene, *mode);
        scenes.push(format!("{scene} (test mode: {mode:?})"));
    }
    for (scene, key) in &args.encrypted_scenes {
        builder = builder.encrypted_scene(scene, key.clone());
        scenes.push(format!("{scene} (encryption mode)"));
    }
    if scenes.is_empty() {
        builder = builder.scene(DEV_SCENE);
        scenes.push(DEV_SCENE.to_owned());
    }
    for role in &args.roles {
        builder = builder.role(role);
    }
    for (provider, token) in &args.oidc_providers {
        builder = builder.oidc_provider(provider, token);
    }
    if let Some(role) = &args.instance_role {
        builder = builder.instance_role(role);
    }
    if let Some(seconds) = args.credentials_lifetime {
        builder = builder.credentials_lifetime(Duration::from_secs(seconds));
    }
    for origin in &args.allow_origins {
        builder = builder.allow_origin(origin);
    }
    for host in &args.allow_hosts {
        builder = builder.allow_host(host);
    }
    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // The listener is bound: what fails now is the configuration.
    let emulator = builder.serve(listener).map_err(|e| e.to_string())?;

    let stop = shutdown_signal();
    let url = emulator.url();
    let secret = match source {
        KeySource::Development => DEV_ACCESS_KEY_SECRET.to_owned(),
        KeySource::CommandLine => "(as given with --access-key-secret)".to_owned(),
        KeySource::Environment => format!("(from {ENV_ACCESS_KEY_SECRET})"),
    };
    let id_note = match source {
        KeySource::Environment => format!(" (from {ENV_ACCESS_KEY_ID})"),
        _ => String::new(),
    };
    let mut out = std::io::stdout().lock();
    let lines = [
        format!("listening on {url}"),
        format!(
            "endpoint:       {url}  (ClientBuilder::endpoint, or ALIBABA_CLOUD_CAPTCHA_ENDPOINT)"
        ),
        format!("access key id:  {}{id_note}", credentials.access_key_id()),
        format!("access secret:  {secret}"),
        format!("scenes:         {}", scenes.join(", ")),
        format!(
            "widget script:  {url}/emulator/captcha.js  (in place of Alibaba's AliyunCaptcha.js)"
        ),
        format!("mint a param:   curl -s -X POST {url}/emulator/params -d '{{}}'"),
        format!("faults, stats:  {url}/emulator/faults, {url}/emulator/stats"),
        format!(
            "pages allowed:  {}  (--allow-origin ORIGIN to let a page's widget call the API)",
            if args.allow_origins.is_empty() {
                "none".to_owned()
            } else {
                args.allow_origins.join(", ")
            }
        ),
    ];
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    if !emulator.addr().ip().is_loopback() {
        eprintln!(
            "aliyun-captcha-emulator: warning: listening on {}, the emulator's API \
             (/emulator/params, /emulator/faults, /emulator/stats, /emulator/credentials) is \
             reachable from the network: anyone who can reach this address can mint passing \
             params and switch faults on. Listen on 127.0.0.1 unless you need it.",
            emulator.addr()
        );
    }

    stop.await;
    emulator.shutdown().await;
    eprintln!("aliyun-captcha-emulator: stopped");
    Ok(())
}

/// Listens for Ctrl-C and SIGTERM from the call on, not from the first poll: called before the
/// first line is printed, so that a supervisor that signals as soon as it reads it gets a clean
/// stop rather than the default death.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut terminate, mut interrupt)) = signals {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
