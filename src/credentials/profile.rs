//! The credentials files people at a desk have: the Alibaba Cloud CLI's profiles
//! (`~/.aliyun/config.json`) and the credentials libraries' INI file
//! (`~/.alibabacloud/credentials.ini`). Each names a source; this turns it into a provider.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::config::{ProviderConfig, regional_sts_url};
use super::imds::EcsRamRole;
use super::process::ExternalProcess;
use super::sts::{OidcRoleArn, RamRoleArn};
use super::{Credentials, CredentialsError, ProvideCredentials, null_as_default};

pub(crate) const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
pub(crate) const ENV_CONFIG_FILE: &str = "ALIBABA_CLOUD_CONFIG_FILE";
pub(crate) const ENV_CLI_DISABLED: &str = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED";
pub(crate) const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";

/// How deep `ChainableRamRoleArn` profiles may name one another.
const MAX_CHAIN: usize = 5;

type Provider = Arc<dyn ProvideCredentials>;

/// One profile of the CLI's `config.json`.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CliProfile {
    #[serde(deserialize_with = "null_as_default")]
    name: String,
    #[serde(deserialize_with = "null_as_default")]
    mode: String,
    #[serde(deserialize_with = "null_as_default")]
    access_key_id: String,
    #[serde(deserialize_with = "null_as_default")]
    access_key_secret: String,
    #[serde(deserialize_with = "null_as_default")]
    sts_token: String,
    #[serde(deserialize_with = "null_as_default")]
    ram_role_arn: String,
    #[serde(deserialize_with = "null_as_default")]
    ram_session_name: String,
    #[serde(deserialize_with = "null_as_default")]
    expired_seconds: u64,
    #[serde(deserialize_with = "null_as_default")]
    sts_region: String,
    #[serde(deserialize_with = "null_as_default")]
    enable_vpc: bool,
    #[serde(deserialize_with = "null_as_default")]
    source_profile: String,
    #[serde(deserialize_with = "null_as_default")]
    ram_role_name: String,
    #[serde(deserialize_with = "null_as_default")]
    oidc_token_file: String,
    #[serde(deserialize_with = "null_as_default")]
    oidc_provider_arn: String,
    #[serde(deserialize_with = "null_as_default")]
    policy: String,
    #[serde(deserialize_with = "null_as_default")]
    external_id: String,
    #[serde(deserialize_with = "null_as_default")]
    process_command: String,
}

#[derive(serde::Deserialize)]
struct CliConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    current: String,
    #[serde(default, deserialize_with = "null_as_default")]
    profiles: Vec<CliProfile>,
}

fn non_empty(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// The CLI profile's provider, or why there is none.
pub(crate) fn cli_profile(settings: &Arc<ProviderConfig>) -> Result<Provider, CredentialsError> {
    if settings.flag(ENV_CLI_DISABLED) {
        return Err(CredentialsError::NotConfigured(format!(
            "disabled by {ENV_CLI_DISABLED}"
        )));
    }
    let path = match settings.lookup(ENV_CONFIG_FILE) {
        Some(path) => PathBuf::from(path),
        None => settings.home()?.join(".aliyun").join("config.json"),
    };
    let text = read(&path)?;
    // The file holds secrets: the error names the problem, never the contents.
    let config: CliConfig = serde_json::from_str(&text).map_err(|_| {
        CredentialsError::Provider(format!(
            "{} is not a valid CLI configuration",
            path.display()
        ))
    })?;
    let name = settings
        .lookup(ENV_PROFILE)
        .unwrap_or_else(|| config.current.clone());
    let profiles: HashMap<&str, &CliProfile> = config
        .profiles
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    cli_provider(&profiles, &name, settings, 0).map_err(|why| {
        CredentialsError::Provider(format!("{}, profile {name:?}: {why}", path.display()))
    })
}

fn cli_provider(
    profiles: &HashMap<&str, &CliProfile>,
    name: &str,
    settings: &Arc<ProviderConfig>,
    depth: usize,
) -> Result<Provider, String> {
    let profile = profiles
        .get(name)
        .ok_or_else(|| format!("no profile named {name:?}"))?;
    let access_key = || -> Result<Credentials, String> {
        match (
            non_empty(&profile.access_key_id),
            non_empty(&profile.access_key_secret),
        ) {
            (Some(id), Some(secret)) => Ok(Credentials::new(id, secret)),
            _ => Err("access_key_id and access_key_secret are required".into()),
        }
    };
    let duration = Some(profile.expired_seconds)
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    let sts = profile_sts_endpoint(&profile.sts_region, profile.enable_vpc);
    let role = |source: Provider| -> Result<Provider, String> {
        let arn = non_empty(&profile.ram_role_arn).ok_or("ram_role_arn is required")?;
        let mut role = RamRoleArn::with_config(source, arn, Arc::clone(settings));
        if let Some(name) = non_empty(&profile.ram_session_name) {
            role = role.session_name(name);
        }
        if let Some(duration) = duration {
            role = role
                .duration(duration)
                .map_err(|e| format!("expired_seconds: {e}"))?;
        }
        if let Some(policy) = non_empty(&profile.policy) {
            role = role.policy(policy);
        }
        if let Some(id) = non_empty(&profile.external_id) {
            role = role.external_id(id);
        }
        if let Some(url) = &sts {
            role = role.sts_endpoint(url.clone());
        }
        Ok(Arc::new(role))
    };
    match profile.mode.as_str() {
        "AK" => Ok(Arc::new(access_key()?)),
        "StsToken" => {
            let token = non_empty(&profile.sts_token).ok_or("sts_token is required")?;
            Ok(Arc::new(access_key()?.with_security_token(token)))
        }
        "RamRoleArn" => role(Arc::new(access_key()?)),
        "ChainableRamRoleArn" => {
            if depth >= MAX_CHAIN {
                return Err("source_profile chains too deep (a loop?)".into());
            }
            let source = non_empty(&profile.source_profile).ok_or("source_profile is required")?;
            role(cli_provider(profiles, source, settings, depth + 1)?)
        }
        "EcsRamRole" => {
            let mut ecs = EcsRamRole::with_config(Arc::clone(settings));
            if let Some(name) = non_empty(&profile.ram_role_name) {
                ecs = ecs.role_name(name);
            }
            Ok(Arc::new(ecs))
        }
        "OIDC" => {
            let mut oidc = OidcRoleArn::with_config(
                non_empty(&profile.ram_role_arn).ok_or("ram_role_arn is required")?,
                non_empty(&profile.oidc_provider_arn).ok_or("oidc_provider_arn is required")?,
                non_empty(&profile.oidc_token_file).ok_or("oidc_token_file is required")?,
                Arc::clone(settings),
            );
            if let Some(name) = non_empty(&profile.ram_session_name) {
                oidc = oidc.session_name(name);
            }
            if let Some(duration) = duration {
                oidc = oidc
                    .duration(duration)
                    .map_err(|e| format!("expired_seconds: {e}"))?;
            }
            if let Some(policy) = non_empty(&profile.policy) {
                oidc = oidc.policy(policy);
            }
            if let Some(url) = sts {
                oidc = oidc.sts_endpoint(url);
            }
            Ok(Arc::new(oidc))
        }
        "External" => {
            let command =
                non_empty(&profile.process_command).ok_or("process_command is required")?;
            Ok(Arc::new(ExternalProcess::for_cli_profile(command, name)?))
        }
        // They sign in through a browser and write tokens back to the CLI's file.
        "CloudSSO" | "OAuth" => Err(format!(
            "mode {:?} is not supported: it needs the CLI's interactive sign-in; use a \
             profile of another mode ({CLI_MODES}), e.g. External with a helper that prints \
             credentials",
            profile.mode
        )),
        other => Err(format!("mode {other:?} is not supported ({CLI_MODES} are)")),
    }
}

/// The CLI profile modes this reads, for errors.
const CLI_MODES: &str = "AK, StsToken, RamRoleArn, ChainableRamRoleArn, EcsRamRole, OIDC, External";

/// The STS endpoint a profile asks for with `sts_region` (and `enable_vpc`); without one, the
/// configuration's.
fn profile_sts_endpoint(region: &str, vpc: bool) -> Option<String> {
    // An unusable region falls through to the endpoint's own check, which refuses it.
    non_empty(region).map(|region| regional_sts_url(region, vpc))
}

/// The INI credentials file's provider, or why there is none.
pub(crate) fn credentials_file(
    settings: &Arc<ProviderConfig>,
) -> Result<Provider, CredentialsError> {
    let path = match settings.lookup(ENV_CREDENTIALS_FILE) {
        Some(path) => PathBuf::from(path),
        None => {
            let dir = settings.home()?.join(".alibabacloud");
            // The Python and Java libraries name it credentials.ini; Go, credentials.
            let ini = dir.join("credentials.ini");
            if ini.exists() {
                ini
            } else {
                dir.join("credentials")
            }
        }
    };
    let text = read(&path)?;
    let name = settings
        .lookup(ENV_PROFILE)
        .unwrap_or_else(|| "default".to_owned());
    let sections = parse_ini(&text);
    let section = sections.get(name.as_str()).ok_or_else(|| {
        CredentialsError::Provider(format!("{} has no section [{name}]", path.display()))
    })?;
    ini_provider(section, settings)
        .map_err(|why| CredentialsError::Provider(format!("{}, [{name}]: {why}", path.display())))
}

fn ini_provider(
    section: &HashMap<String, String>,
    settings: &Arc<ProviderConfig>,
) -> Result<Provider, String> {
    let get = |key: &str| section.get(key).and_then(|v| non_empty(v));
    let required = |key: &'static str| get(key).ok_or(format!("{key} is required"));
    let access_key = || -> Result<Credentials, String> {
        Ok(Credentials::new(
            required("access_key_id")?,
            required("access_key_secret")?,
        ))
    };
    match get("type").ok_or("type is required")? {
        "access_key" => Ok(Arc::new(access_key()?)),
        "sts" => Ok(Arc::new(
            access_key()?.with_security_token(required("security_token")?),
        )),
        "ecs_ram_role" => {
            let mut ecs = EcsRamRole::with_config(Arc::clone(settings));
            if let Some(role) = get("role_name") {
                ecs = ecs.role_name(role);
            }
            Ok(Arc::new(ecs))
        }
        "ram_role_arn" => {
            let mut role =
                RamRoleArn::with_config(access_key()?, required("role_arn")?, Arc::clone(settings));
            if let Some(name) = get("role_session_name") {
                role = role.session_name(name);
            }
            if let Some(policy) = get("policy") {
                role = role.policy(policy);
            }
            Ok(Arc::new(role))
        }
        "oidc_role_arn" => {
            let mut oidc = OidcRoleArn::with_config(
                required("role_arn")?,
                required("oidc_provider_arn")?,
                required("oidc_token_file_path")?,
                Arc::clone(settings),
            );
            if let Some(name) = get("role_session_name") {
                oidc = oidc.session_name(name);
            }
            if let Some(policy) = get("policy") {
                oidc = oidc.policy(policy);
            }
            Ok(Arc::new(oidc))
        }
        other => Err(format!(
            "type {other:?} is not supported (access_key, sts, ecs_ram_role, ram_role_arn, oidc_role_arn are)"
        )),
    }
}

fn read(path: &Path) -> Result<String, CredentialsError> {
    super::read_small_file(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            CredentialsError::NotConfigured(format!("no {}", path.display()))
        }
        _ => CredentialsError::failed(format!("{} cannot be read", path.display()), e),
    })
}

/// Sections of `key = value` lines. `#` starts a comment anywhere, as in the official Python
/// library; `;` only at the start of a line.
fn parse_ini(text: &str) -> HashMap<&str, HashMap<String, String>> {
    let mut sections: HashMap<&str, HashMap<String, String>> = HashMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            sections.entry(name).or_default();
            current = Some(name);
        } else if let (Some(section), Some((key, value))) = (current, line.split_once('=')) {
            sections
                .entry(section)
                .or_default()
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_files_are_read_like_the_official_libraries() {
        let sections = parse_ini(
            "# credentials\n[default]\ntype = access_key\naccess_key_id = id # comment\n\
             access_key_secret=secret\n\n; a note\n[other]\ntype=ecs_ram_role\nrole_name = r;1\n",
        );
        assert_eq!(sections["default"]["access_key_id"], "id");
        assert_eq!(sections["default"]["access_key_secret"], "secret");
        assert_eq!(sections["other"]["role_name"], "r;1");
        assert_eq!(sections["other"].len(), 2);
    }

    #[test]
    fn null_fields_in_the_cli_config_read_as_unset() {
        let config: CliConfig = serde_json::from_str(
            r#"{"current": "default", "profiles": [{"name": "default", "mode": "AK",
                "access_key_id": "id", "access_key_secret": "secret", "sts_token": null,
                "expired_seconds": null, "enable_vpc": null}]}"#,
        )
        .unwrap();
        assert_eq!(config.profiles[0].sts_token, "");
        assert_eq!(config.profiles[0].expired_seconds, 0);
    }

    #[test]
    fn a_region_is_a_plain_name_not_a_host() {
        assert_eq!(
            regional_sts_url("cn-hangzhou", true),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com"
        );
        for bad in ["evil.com/", "x.evil.com#", "CN", ""] {
            let url = regional_sts_url(bad, false);
            assert!(
                url.parse::<crate::client::Endpoint>().is_err(),
                "{bad}: {url}"
            );
        }
    }
}
