//! The examples' verifier: Alibaba Cloud when the default credentials chain finds credentials,
//! otherwise (or with `--emulate`) an emulator started in process.
#![allow(dead_code)] // Shared by the examples, each of which uses part of it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use aliyun_captcha_emulator::Emulator;
use tower_aliyun_captcha::client::Region;
use tower_aliyun_captcha::credentials::{DefaultChain, ProvideCredentials};
use tower_aliyun_captcha::encryption::SceneKey;
use tower_aliyun_captcha::{Client, Credentials, SceneId};

/// Where verifications go.
pub struct Backend {
    pub client: Client,
    /// Set when emulating; keep it alive as long as the client is used.
    pub emulator: Option<Emulator>,
    /// The region the page's widget must use: the client's.
    pub region: Region,
    /// The account's encrypt key, for scenes in V3 encryption mode: generated when emulating
    /// some, else from `CAPTCHA_EKEY`.
    pub scene_key: Option<SceneKey>,
    /// The scenes the page must start with an `EncryptedSceneId`: the emulated ones asked
    /// for, or every scene when `CAPTCHA_EKEY` is set.
    pub encrypted: Vec<SceneId>,
}

impl Backend {
    /// An `EncryptedSceneId` for `scene`, valid for `lifetime`, if it is in encryption mode.
    pub fn encrypted_scene_id(
        &self,
        scene: &SceneId,
        lifetime: std::time::Duration,
    ) -> Option<String> {
        let key = self.scene_key.as_ref()?;
        if !self.encrypted.contains(scene) {
            return None;
        }
        key.encrypted_scene_id(scene, lifetime).ok()
    }
}

/// What every example takes on its command line.
pub struct Args {
    pub listen: String,
    /// Emulate even with credentials at hand.
    pub emulate: bool,
    /// Whether to emulate: asked to, or no credentials in the default chain.
    emulating: bool,
}

impl Args {
    /// `--listen ADDR` (else `default`) and `--emulate`; without `--emulate`, asks the default
    /// credentials chain (environment, RRSA, CLI profile, credentials file, ECS role, URI)
    /// whether there is anything to verify with.
    pub async fn parse(default: &str) -> Result<Self, String> {
        Self::parse_with(default, "--listen ADDR, --emulate", |_, _| Ok(false)).await
    }

    /// [`parse`](Self::parse), and the example's own flags: `extra` is given every other
    /// argument, with the rest of them to take a value from, and says whether it took it.
    /// `usage` lists every flag, for `--help` (printed, then the process exits) and errors.
    pub async fn parse_with(
        default: &str,
        usage: &str,
        mut extra: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> Result<bool, String>,
    ) -> Result<Self, String> {
        let mut parsed = Self {
            listen: default.to_owned(),
            emulate: false,
            emulating: true,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--listen" => parsed.listen = args.next().ok_or("--listen needs an address")?,
                "--emulate" => parsed.emulate = true,
                "--help" | "-h" => {
                    say(format_args!("options: {usage}"));
                    std::process::exit(0);
                }
                other => {
                    if !extra(other, &mut args)? {
                        return Err(format!("unknown argument {other:?} (use {usage})"));
                    }
                }
            }
        }
        if !parsed.emulate {
            parsed.emulating = DefaultChain::new().provide_credentials().await.is_err();
        }
        Ok(parsed)
    }

    /// Whether the example emulates: asked to, or no credentials in the default chain.
    pub fn emulating(&self) -> bool {
        self.emulating
    }

    /// A scene id from `variable`, or `default` (always when emulating).
    pub fn scene(&self, variable: &str, default: &str) -> SceneId {
        let id = match std::env::var(variable) {
            Ok(id) if !self.emulating() => id,
            _ => default.to_owned(),
        };
        SceneId::new(id).expect("scene ids are valid")
    }

    /// The real service (region from `CAPTCHA_REGION`, default cn-shanghai), or an emulator
    /// knowing `scenes` (the first is its default; those also in `encrypted` in encryption
    /// mode) with freshly generated credentials; checked with one verification before anything
    /// listens, so that a wrong key, permission, region or clock stops the example with advice
    /// instead of refusing every person.
    pub async fn start(
        &self,
        scenes: &[&SceneId],
        encrypted: &[&SceneId],
    ) -> Result<Backend, String> {
        let backend = self.connect(scenes, encrypted).await?;
        backend.client.check().await.map_err(|error| {
            format!(
                "the captcha service check failed: {error}; {}",
                error.advice()
            )
        })?;
        Ok(backend)
    }

    async fn connect(
        &self,
        scenes: &[&SceneId],
        encrypted: &[&SceneId],
    ) -> Result<Backend, String> {
        if !self.emulating() {
            let region: Region = std::env::var("CAPTCHA_REGION")
                .unwrap_or_else(|_| "cn-shanghai".into())
                .parse()
                .map_err(|e| format!("{e}"))?;
            let scene_key = match std::env::var("CAPTCHA_EKEY") {
                Ok(ekey) => {
                    Some(SceneKey::from_base64(&ekey).map_err(|e| format!("CAPTCHA_EKEY: {e}"))?)
                }
                Err(_) => None,
            };
            let client = Client::builder()
                .credentials_provider(DefaultChain::new())
                .region(region)
                .build()
                .map_err(|e| e.to_string())?;
            return Ok(Backend {
                client,
                emulator: None,
                region,
                scene_key,
                encrypted: scenes.iter().map(|&s| s.clone()).collect(),
            });
        }
        let credentials = Credentials::new(
            format!(
                "LTAIemu{}",
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            ),
            uuid::Uuid::new_v4().simple().to_string(),
        );
        let scene_key = if !encrypted.is_empty() {
            let ekey = SceneKey::generate().map_err(|e| e.to_string())?;
            Some(SceneKey::from_base64(&ekey).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let mut builder = Emulator::builder().credentials(&credentials);
        for scene in scenes {
            builder = match &scene_key {
                Some(key) if encrypted.contains(scene) => {
                    builder.encrypted_scene(scene.as_str(), key.clone())
                }
                _ => builder.scene(scene.as_str()),
            };
        }
        let emulator = builder
            .start("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot start the emulator: {e}"))?;
        let client = Client::builder()
            .credentials(credentials)
            .endpoint(emulator.url())
            .allow_http(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Backend {
            client,
            emulator: Some(emulator),
            region: Region::CnShanghai,
            scene_key,
            encrypted: encrypted.iter().map(|&s| s.clone()).collect(),
        })
    }
}

/// The exit status of an example: errors go to stderr, prefixed with the example's name.
pub fn exit(name: &str, outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints a line for the person running the example. A closed stdout (`… | head -2`, or a
/// test that stopped reading) is no reason for a server to stop, so write errors are ignored.
pub fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout();
    let _ = stdout.write_fmt(format_args!("{line}\n"));
    let _ = stdout.flush();
}

impl Backend {
    /// Binds `listen`, lets the app's pages call the emulator's API when emulating, and prints
    /// the contract lines: `listening on http://HOST:PORT` first, then `emulator on
    /// http://HOST:PORT` when emulating; flushed.
    pub async fn bind(
        &self,
        listen: &str,
    ) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(emulator) = &self.emulator {
            // The page's stand-in widget mints params from the emulator, another origin: the
            // emulator answers only the pages it is told about.
            for origin in page_origins(addr) {
                emulator.allow_origin(&origin).map_err(|e| e.to_string())?;
            }
        }
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on http://{addr}");
        if let Some(emulator) = &self.emulator {
            let _ = writeln!(stdout, "emulator on {}", emulator.url());
        }
        let _ = stdout.flush();
        Ok((listener, addr))
    }
}

/// The origins the app's pages are seen from: its address, and `localhost` (and `127.0.0.1`
/// when it listens on every interface) when this machine's browser can reach it so.
fn page_origins(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut origins = Vec::new();
    if !addr.ip().is_unspecified() {
        origins.push(format!("http://{addr}"));
    }
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        origins.push(format!("http://localhost:{port}"));
    }
    if addr.ip().is_unspecified() {
        origins.push(format!("http://127.0.0.1:{port}"));
    }
    origins
}
