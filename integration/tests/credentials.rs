//! Credential sources over sockets, offline: the emulator plays STS (`AssumeRole`,
//! `AssumeRoleWithOIDC`), an ECS instance's metadata service and a credentials URI, issuing
//! credentials that last two seconds and that it accepts only until they expire. Each source
//! of the default chain, the chain's report when nothing answers, refreshes across several
//! expiries without a failed verification, a dead refresh that ends as a configuration
//! error, the CLI's External mode with commands written by the tests, and the metadata
//! service's fallback to IMDSv1.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::{Emulator, Mint};
use common::*;
use tower_aliyun_captcha::credentials::{
    CredentialsError, CredentialsUri, DefaultChain, EcsRamRole, ExternalProcess, OidcRoleArn,
    ProvideCredentials, RamRoleArn,
};
use tower_aliyun_captcha::error::ErrorClass;
use tower_aliyun_captcha::{Client, Credentials, Error};

const ROLE: &str = "acs:ram::1234567890123456:role/captcha-verifier";
const OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa";
const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.oidc-token-do-not-log";
const LIFETIME: Duration = Duration::from_secs(2);

async fn sts_emulator() -> Emulator {
    Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .sts_key(STS_ID, STS_SECRET, STS_TOKEN)
        .scene(LOGIN)
        .role(ROLE)
        .oidc_provider(OIDC_PROVIDER, OIDC_TOKEN)
        .instance_role("captcha-instance")
        .credentials_lifetime(LIFETIME)
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

fn client(emulator: &Emulator, provider: impl ProvideCredentials) -> Client {
    Client::builder()
        .credentials_provider(provider)
        .endpoint(emulator.url())
        .allow_http(true)
        .build()
        .unwrap()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "captcha-credentials-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A script that can be run as a program.
    #[cfg(unix)]
    fn executable(&self, relative: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.write(relative, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chain over `variables` alone, with the files under `home`, STS and the metadata service
/// at the emulator (or, with `metadata: None`, at a port nothing listens on).
fn chain(
    variables: &[(&str, String)],
    home: &Path,
    emulator: &Emulator,
    metadata: bool,
) -> DefaultChain {
    let variables: HashMap<String, String> = variables
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let metadata = if metadata {
        emulator.url()
    } else {
        "http://127.0.0.1:1".to_owned()
    };
    DefaultChain::builder()
        .lookup(move |name| variables.get(name).cloned())
        .home(home)
        .sts_endpoint(emulator.url())
        .metadata_endpoint(metadata)
        .build()
}

async fn passes(client: &Client, emulator: &Emulator) -> Result<bool, Error> {
    let param = emulator.mint(Mint::pass()).unwrap();
    Ok(client.verify(request(&param, Some(LOGIN))).await?.passed())
}

/// Verifies every 150 ms for `how_long`: every verification must pass.
async fn keep_verifying(client: &Client, emulator: &Emulator, how_long: Duration) -> usize {
    let started = Instant::now();
    let mut verified = 0;
    while started.elapsed() < how_long {
        match passes(client, emulator).await {
            Ok(true) => verified += 1,
            other => panic!("verification {verified} failed: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    verified
}

#[tokio::test]
async fn environment_variables_come_first() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    let chain = chain(
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID.into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET.into()),
            ("ALIBABA_CLOUD_ROLE_ARN", ROLE.into()),
        ],
        &scratch.0,
        &emulator,
        true,
    );
    assert!(passes(&client(&emulator, chain), &emulator).await.unwrap());
    assert_eq!(
        emulator.stats().credentials_issued,
        0,
        "the environment's key was used"
    );
}

#[tokio::test]
async fn an_oidc_role_keeps_passing_across_expiries() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    let token_file = scratch.write("rrsa/token", OIDC_TOKEN);
    let chain = chain(
        &[
            ("ALIBABA_CLOUD_ROLE_ARN", ROLE.into()),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER.into()),
            (
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
        &scratch.0,
        &emulator,
        false,
    );
    let client = client(&emulator, chain);
    let verified = keep_verifying(&client, &emulator, Duration::from_secs(7)).await;
    assert!(verified >= 20, "{verified}");
    let issued = emulator.stats().credentials_issued;
    assert!(
        issued >= 4,
        "credentials were refreshed {issued} times in 7 s of 2 s credentials"
    );
}

#[tokio::test]
async fn a_cli_profile_assumes_its_role() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    scratch.write(
        ".aliyun/config.json",
        &serde_json::json!({
            "current": "default",
            "profiles": [
                {"name": "default", "mode": "AK", "access_key_id": "wrong", "access_key_secret": "wrong"},
                {"name": "deploy", "mode": "RamRoleArn", "access_key_id": KEY_ID,
                 "access_key_secret": KEY_SECRET, "ram_role_arn": ROLE, "ram_session_name": "desk"},
                {"name": "chained", "mode": "ChainableRamRoleArn", "source_profile": "deploy",
                 "ram_role_arn": ROLE},
                {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop",
                 "ram_role_arn": ROLE}
            ]
        })
        .to_string(),
    );
    for profile in ["deploy", "chained"] {
        let chain = chain(
            &[("ALIBABA_CLOUD_PROFILE", profile.into())],
            &scratch.0,
            &emulator,
            false,
        );
        let client = client(&emulator, chain);
        assert!(passes(&client, &emulator).await.unwrap(), "{profile}");
        keep_verifying(&client, &emulator, Duration::from_secs(3)).await;
    }
    // A profile that names itself is refused, and the chain says so.
    let chain = chain(
        &[("ALIBABA_CLOUD_PROFILE", "loop".into())],
        &scratch.0,
        &emulator,
        false,
    );
    let error = client(&emulator, chain).check().await.unwrap_err();
    assert!(
        error.to_string().contains("source_profile chains too deep"),
        "{error}"
    );
}

#[tokio::test]
async fn the_credentials_file_is_read_by_section() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    scratch.write(
        ".alibabacloud/credentials.ini",
        &format!(
            "[default]\ntype = access_key\naccess_key_id = {KEY_ID}\naccess_key_secret = {KEY_SECRET}\n\n\
             [role]\ntype = ram_role_arn\naccess_key_id = {KEY_ID}\naccess_key_secret = {KEY_SECRET}\n\
             role_arn = {ROLE}\nrole_session_name = ini\n"
        ),
    );
    let plain = chain(&[], &scratch.0, &emulator, false);
    assert!(passes(&client(&emulator, plain), &emulator).await.unwrap());
    assert_eq!(emulator.stats().credentials_issued, 0);
    let role = chain(
        &[("ALIBABA_CLOUD_PROFILE", "role".into())],
        &scratch.0,
        &emulator,
        false,
    );
    assert!(passes(&client(&emulator, role), &emulator).await.unwrap());
    assert_eq!(emulator.stats().credentials_issued, 1);
}

#[tokio::test]
async fn an_ecs_instance_role_comes_from_the_metadata_service() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    let chain = chain(&[], &scratch.0, &emulator, true);
    let client = client(&emulator, chain);
    keep_verifying(&client, &emulator, Duration::from_secs(5)).await;
    assert!(emulator.stats().credentials_issued >= 3);

    // Alone, and refusing to ask without a session token: the emulated instance gives one.
    let ecs = EcsRamRole::new()
        .metadata_endpoint(emulator.url())
        .require_session_token();
    assert!(
        passes(&client_for_provider(&emulator, ecs), &emulator)
            .await
            .unwrap()
    );
}

fn client_for_provider(emulator: &Emulator, provider: impl ProvideCredentials) -> Client {
    client(emulator, provider)
}

#[tokio::test]
async fn a_credentials_uri_is_asked_last() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    let chain = chain(
        &[(
            "ALIBABA_CLOUD_CREDENTIALS_URI",
            format!("{}/emulator/credentials", emulator.url()),
        )],
        &scratch.0,
        &emulator,
        false,
    );
    let client = client(&emulator, chain);
    keep_verifying(&client, &emulator, Duration::from_secs(3)).await;
    let alone = CredentialsUri::new(format!("{}/emulator/credentials", emulator.url()));
    assert!(
        passes(&client_for_provider(&emulator, alone), &emulator)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_role_assumed_with_other_credentials() {
    let emulator = sts_emulator().await;
    let role = RamRoleArn::new(Credentials::new(KEY_ID, KEY_SECRET), ROLE)
        .session_name("service")
        .sts_endpoint(emulator.url());
    let client = client(&emulator, role);
    keep_verifying(&client, &emulator, Duration::from_secs(3)).await;
    // A role the account does not have: the error names STS's code, nothing secret.
    let missing = RamRoleArn::new(Credentials::new(KEY_ID, KEY_SECRET), "acs:ram::1:role/none")
        .sts_endpoint(emulator.url());
    let error = client_for_provider(&emulator, missing)
        .check()
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration);
    assert!(error.to_string().contains("EntityNotExist.Role"), "{error}");
    assert!(!error.to_string().contains(KEY_SECRET));
}

#[tokio::test]
async fn when_nothing_answers_every_source_says_why() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    let chain = chain(
        &[("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true".into())],
        &scratch.0,
        &emulator,
        false,
    );
    let error = client(&emulator, chain).check().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration);
    let Error::Credentials(CredentialsError::NotFound(reasons)) = &error else {
        panic!("{error:?}");
    };
    let names: Vec<&str> = reasons.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "environment",
            "oidc_role_arn",
            "cli_profile",
            "credentials_file",
            "ecs_ram_role",
            "credentials_uri"
        ]
    );
    let why: HashMap<&str, String> = reasons
        .iter()
        .map(|(name, why)| (name.as_str(), why.to_string()))
        .collect();
    assert!(
        why["environment"].contains("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        "{why:?}"
    );
    assert!(why["cli_profile"].contains("disabled"), "{why:?}");
    assert!(why["credentials_file"].contains("no "), "{why:?}");
    assert!(why["ecs_ram_role"].contains("metadata service"), "{why:?}");
    assert!(why["credentials_uri"].contains("not set"), "{why:?}");
}

/// The OIDC token goes away after the first fetch: the old credentials are served while they
/// last, then every verification fails as a configuration error (never a pass).
#[tokio::test]
async fn a_dead_refresh_ends_as_a_configuration_error() {
    // Credentials that last four seconds (three to four, as expiries are whole seconds): the
    // refresh starts after half their life.
    let emulator = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .role(ROLE)
        .oidc_provider(OIDC_PROVIDER, OIDC_TOKEN)
        .credentials_lifetime(Duration::from_secs(4))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let scratch = Scratch::new();
    let token_file = scratch.write("rrsa/token", OIDC_TOKEN);
    let rrsa = OidcRoleArn::new(ROLE, OIDC_PROVIDER, &token_file).sts_endpoint(emulator.url());
    let client = client(&emulator, rrsa);
    assert!(passes(&client, &emulator).await.unwrap());
    std::fs::remove_file(&token_file).unwrap();
    // Within the credentials' life, past the refresh point: still passing, while the
    // background refresh fails.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(passes(&client, &emulator).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let error = passes(&client, &emulator).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration, "{error}");
    assert!(
        matches!(&error, Error::Credentials(CredentialsError::Expired(why)) if why.to_string().contains("OIDC token file")),
        "{error:?}"
    );
    assert_eq!(emulator.stats().credentials_issued, 1);
}

/// Why the chain's CLI profile source gave nothing, when `profile` is the one asked for.
async fn cli_profile_failure(emulator: &Emulator, home: &Path, profile: &str) -> String {
    let chain = chain(
        &[("ALIBABA_CLOUD_PROFILE", profile.into())],
        home,
        emulator,
        false,
    );
    let error = client(emulator, chain).check().await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Configuration, "{error}");
    let Error::Credentials(CredentialsError::NotFound(reasons)) = &error else {
        panic!("{error:?}");
    };
    let (_, why) = reasons
        .iter()
        .find(|(source, _)| source == "cli_profile")
        .unwrap();
    why.to_string()
}

/// Profiles of mode External: commands (a script run by bash, with a space in its path, and
/// a Python script run as a program) that print an AccessKey pair and STS credentials with
/// their expiry, which the client refreshes; and commands that fail, print garbage or cannot
/// start, which say so, naming the profile, without a secret.
#[cfg(unix)]
#[tokio::test]
async fn a_cli_profile_of_mode_external_runs_its_command() {
    let emulator = sts_emulator().await;
    let scratch = Scratch::new();
    let ak = scratch.write(
        "my helpers/ak.sh",
        &format!(
            "cat <<'JSON'\n{{\"mode\": \"AK\", \"access_key_id\": \"{KEY_ID}\", \
             \"access_key_secret\": \"{KEY_SECRET}\"}}\nJSON\n"
        ),
    );
    let runs = scratch.0.join("sts runs");
    // Credentials that last three to four seconds: the client must run it again.
    let sts = scratch.executable(
        "my helpers/sts.py",
        &format!(
            "#!/usr/bin/env python3\n\
             import datetime, json, sys\n\
             with open(sys.argv[1], 'a') as runs:\n    runs.write('run\\n')\n\
             now = datetime.datetime.now(datetime.timezone.utc)\n\
             expiration = now + datetime.timedelta(seconds=4)\n\
             print(json.dumps({{'mode': 'StsToken', 'access_key_id': '{STS_ID}', \
             'access_key_secret': '{STS_SECRET}', 'sts_token': '{STS_TOKEN}', \
             'expiration': expiration.strftime('%Y-%m-%dT%H:%M:%SZ')}}))\n"
        ),
    );
    let fails = scratch.write(
        "fails.sh",
        &format!(
            "echo 'helper: {KEY_SECRET}' >&2\n\
             echo '{{\"access_key_secret\": \"{KEY_SECRET}\"'\n\
             exit 3\n"
        ),
    );
    let garbage = scratch.write("garbage.sh", &format!("echo 'Password: {KEY_SECRET}'\n"));
    let profile = |name: &str, command: String| {
        let mut profile = serde_json::json!({"name": name, "mode": "External"});
        profile["process_command"] = command.into();
        profile
    };
    scratch.write(
        ".aliyun/config.json",
        &serde_json::json!({
            "current": "ext-ak",
            "profiles": [
                profile("ext-ak", format!("bash \"{}\"", ak.display())),
                profile("ext-sts", format!("'{}' '{}'", sts.display(), runs.display())),
                profile("ext-fails", format!("bash {}", fails.display())),
                profile("ext-garbage", format!("bash {}", garbage.display())),
                profile("ext-missing", format!("/nonexistent/helper --password {KEY_SECRET}")),
                profile("ext-unclosed", "helper 'open".to_owned()),
                {"name": "ext-none", "mode": "External"},
                {"name": "sso", "mode": "CloudSSO"},
                {"name": "oauth", "mode": "OAuth"},
            ]
        })
        .to_string(),
    );

    let ak = chain(&[], &scratch.0, &emulator, false);
    assert!(passes(&client(&emulator, ak), &emulator).await.unwrap());

    let sts = chain(
        &[("ALIBABA_CLOUD_PROFILE", "ext-sts".into())],
        &scratch.0,
        &emulator,
        false,
    );
    keep_verifying(&client(&emulator, sts), &emulator, Duration::from_secs(5)).await;
    let ran = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert!(
        ran >= 2,
        "the command ran {ran} times in 5 s for 4 s credentials"
    );
    assert_eq!(emulator.stats().credentials_issued, 0);

    for (profile, expected) in [
        ("ext-fails", "exited with status 3"),
        ("ext-garbage", "its output is not JSON"),
        ("ext-missing", "helper: cannot be started"),
        (
            "ext-unclosed",
            "process_command has a quote that is not closed",
        ),
        ("ext-none", "process_command is required"),
        (
            "sso",
            "mode \"CloudSSO\" is not supported: it needs the CLI's interactive sign-in",
        ),
        ("oauth", "mode \"OAuth\" is not supported"),
    ] {
        let why = cli_profile_failure(&emulator, &scratch.0, profile).await;
        assert!(why.contains(expected), "{profile}: {why}");
        assert!(why.contains(&format!("{profile:?}")), "{profile}: {why}");
        assert!(!why.contains(KEY_SECRET), "{profile}: {why}");
    }
}

/// A command that hangs is killed at its timeout, and nothing of it is left running.
#[cfg(unix)]
#[tokio::test]
async fn an_external_command_that_hangs_is_stopped() {
    let scratch = Scratch::new();
    let pid_file = scratch.0.join("pid");
    let hangs = scratch.write(
        "hangs.sh",
        &format!("echo $$ > '{}'\nexec sleep 30\n", pid_file.display()),
    );
    let helper = ExternalProcess::new(format!("bash '{}'", hangs.display()))
        .timeout(Duration::from_millis(500))
        .unwrap();
    let started = Instant::now();
    let error = helper.provide_credentials().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error
            .to_string()
            .contains("bash: did not finish within 0.5 s"),
        "{error}"
    );
    #[cfg(target_os = "linux")]
    {
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let process = PathBuf::from(format!("/proc/{}", pid.trim()));
        let started = Instant::now();
        while process.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "the command is still running (or was never reaped)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An instance whose metadata service gives session tokens but refuses the requests that
/// carry them: asked again without the token (IMDSv1), unless IMDSv1 is off.
#[tokio::test]
async fn the_metadata_service_is_asked_without_a_token_it_refuses() {
    let emulator = sts_emulator().await;
    emulator.metadata_refuses_session_tokens(true);
    let scratch = Scratch::new();
    let v1_allowed = chain(&[], &scratch.0, &emulator, true);
    assert!(
        passes(&client(&emulator, v1_allowed), &emulator)
            .await
            .unwrap()
    );

    let v1_off = chain(
        &[("ALIBABA_CLOUD_IMDSV1_DISABLED", "true".into())],
        &scratch.0,
        &emulator,
        true,
    );
    let error = client(&emulator, v1_off).check().await.unwrap_err();
    let Error::Credentials(CredentialsError::NotFound(reasons)) = &error else {
        panic!("{error:?}");
    };
    let (_, why) = reasons
        .iter()
        .find(|(source, _)| source == "ecs_ram_role")
        .unwrap();
    let why = why.to_string();
    assert!(
        why.contains("HTTP 400") && !why.contains("without one"),
        "{why}"
    );

    let strict = EcsRamRole::new()
        .metadata_endpoint(emulator.url())
        .require_session_token();
    let error = client(&emulator, strict).check().await.unwrap_err();
    assert!(error.to_string().contains("HTTP 400"), "{error}");

    // Back to a hardened instance: the token is required, and used.
    emulator.metadata_refuses_session_tokens(false);
    let strict = EcsRamRole::new()
        .metadata_endpoint(emulator.url())
        .require_session_token();
    assert!(passes(&client(&emulator, strict), &emulator).await.unwrap());
}

#[test]
fn providers_never_show_secrets() {
    let printed = [
        format!(
            "{:?}",
            RamRoleArn::new(Credentials::new(KEY_ID, KEY_SECRET), ROLE)
        ),
        format!("{:?}", OidcRoleArn::new(ROLE, OIDC_PROVIDER, "/token")),
        format!(
            "{:?}",
            CredentialsUri::new("http://127.0.0.1:9/creds?secret=abc")
        ),
        format!("{:?}", DefaultChain::new()),
        format!("{:?}", EcsRamRole::new()),
        format!(
            "{:?}",
            ExternalProcess::new(format!("helper --secret {KEY_SECRET}"))
        ),
    ];
    for text in printed {
        assert!(
            !text.contains(KEY_SECRET) && !text.contains("secret=abc"),
            "{text}"
        );
    }
}
