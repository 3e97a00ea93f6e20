//! Temporary credentials from STS: `AssumeRole` (a RAM role, assumed with other credentials)
//! and `AssumeRoleWithOIDC` (ACK's RRSA: a pod's OIDC token). Requests are signed with the
//! crate's own ACS3-HMAC-SHA256 signer; `AssumeRoleWithOIDC` is anonymous.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::ProviderConfig;
use super::http::Route;
use super::{
    Credentials, CredentialsCache, CredentialsError, ProvideCredentials, ProvideFuture,
    TemporaryCredentials,
};
use crate::client::request::{Call, form_request, fresh_nonce};
use crate::protocol;

/// The official libraries' default lifetime of assumed credentials.
const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// STS refuses shorter ones.
const MIN_DURATION: Duration = Duration::from_secs(900);
/// And longer ones than a role's longest session, which can be set up to 12 hours.
const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);
const STS_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
pub(crate) const ENV_ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
pub(crate) const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
pub(crate) const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";

/// A session name for STS, like the official libraries' default.
fn default_session_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("tower-aliyun-captcha-{}", now.as_secs())
}

/// What STS answers: the credentials, or an error code.
#[derive(serde::Deserialize)]
struct StsAnswer {
    #[serde(rename = "Credentials")]
    credentials: Option<TemporaryCredentials>,
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

/// What `AssumeRole` and `AssumeRoleWithOIDC` share: the role, the session's name, duration
/// and policy, the endpoint, and the call to STS.
struct AssumeRole {
    role_arn: String,
    session_name: String,
    duration: Duration,
    policy: Option<String>,
    /// The source's own endpoint, before the configuration's.
    endpoint: Option<String>,
    config: Arc<ProviderConfig>,
}

impl AssumeRole {
    fn new(role_arn: String, config: Arc<ProviderConfig>) -> Self {
        Self {
            role_arn,
            session_name: config
                .lookup(ENV_ROLE_SESSION_NAME)
                .unwrap_or_else(default_session_name),
            duration: DEFAULT_DURATION,
            policy: None,
            endpoint: None,
            config,
        }
    }

    /// Sets the session duration: from 900 s to 12 hours, as STS allows.
    fn set_duration(&mut self, duration: Duration) -> Result<(), CredentialsError> {
        if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
            return Err(CredentialsError::Invalid(format!(
                "the session duration must be from 900 to 43200 seconds (15 minutes to 12 \
                 hours), not {} s",
                duration.as_secs_f32()
            )));
        }
        self.duration = duration;
        Ok(())
    }

    /// Calls STS `action` with the role's fields and `extra`, signed with `signer` (or
    /// anonymous), and reads the credentials it answers.
    async fn call(
        &self,
        signer: Option<&Credentials>,
        action: &str,
        extra: &[(&str, &str)],
    ) -> Result<Credentials, CredentialsError> {
        let fail = |why: String| CredentialsError::Provider(format!("STS {action}: {why}"));
        let within = |error: CredentialsError| error.within(format_args!("STS {action}"));
        let duration = self.duration.as_secs().to_string();
        let mut fields = vec![
            ("DurationSeconds", duration.as_str()),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
        ];
        if let Some(policy) = &self.policy {
            fields.push(("Policy", policy));
        }
        fields.extend_from_slice(extra);
        fields.sort_unstable();
        let endpoint = self
            .config
            .sts_endpoint(self.endpoint.as_deref())
            .map_err(within)?;
        let http = self.config.http().map_err(within)?;
        let date = protocol::format_date(time::OffsetDateTime::now_utc());
        let nonce = fresh_nonce();
        let call = Call {
            action,
            version: protocol::STS_VERSION,
            fields: &fields,
            date: &date,
            nonce: &nonce,
        };
        let request = form_request(&endpoint, signer, &call)
            .map_err(|e| CredentialsError::failed(format!("STS {action}"), e))?;
        let answer = http
            .send(Route::Proxied, request, STS_TIMEOUT)
            .await
            .map_err(within)?;
        let parsed: Result<StsAnswer, _> = serde_json::from_slice(&answer.body);
        match parsed {
            Ok(StsAnswer {
                credentials: Some(credentials),
                ..
            }) if answer.status == 200 => credentials.into_credentials().map_err(fail),
            // The error's code and request id, never the body (it could echo what was sent).
            Ok(StsAnswer {
                code, request_id, ..
            }) => Err(fail(format!(
                "HTTP {}, code {}, request id {}",
                answer.status,
                code.as_deref().map_or("none".into(), super::printable),
                request_id
                    .as_deref()
                    .map_or("none".into(), super::printable)
            ))),
            Err(_) => Err(fail(format!(
                "HTTP {}, an answer that is not STS's JSON",
                answer.status
            ))),
        }
    }
}

/// A RAM role assumed with other credentials (STS `AssumeRole`): for a RAM user's AccessKey
/// that may only act through a role, or for one account's service reaching another's.
///
/// STS is `sts.aliyuncs.com`, or `sts.REGION.aliyuncs.com` with `ALIBABA_CLOUD_STS_REGION`
/// (`sts-vpc.REGION…` with `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), or the URL given to
/// [`sts_endpoint`](Self::sts_endpoint); it is reached through the proxy the environment
/// names (see [`Proxy`](crate::client::Proxy)).
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::{Client, Credentials};
/// use tower_aliyun_captcha::credentials::RamRoleArn;
///
/// let role = RamRoleArn::new(
///     Credentials::new("LTAI5tExampleId", "example-secret"),
///     "acs:ram::1234567890123456:role/captcha-verifier",
/// )
/// .session_name("login-service")
/// .duration(Duration::from_secs(3600))?;
/// let client = Client::builder().credentials_provider(role).build()?;
/// # let _ = client;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct RamRoleArn {
    source: Arc<CredentialsCache>,
    external_id: Option<String>,
    role: AssumeRole,
}

impl RamRoleArn {
    /// Assumes `role_arn` with the credentials `source` provides.
    pub fn new(source: impl ProvideCredentials, role_arn: impl Into<String>) -> Self {
        Self::with_config(source, role_arn, ProviderConfig::from_env())
    }

    pub(crate) fn with_config(
        source: impl ProvideCredentials,
        role_arn: impl Into<String>,
        config: Arc<ProviderConfig>,
    ) -> Self {
        Self {
            source: Arc::new(CredentialsCache::new(Box::new(source))),
            external_id: None,
            role: AssumeRole::new(role_arn.into(), config),
        }
    }

    /// The role session's name (default `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else one of ours).
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.role.session_name = name.into();
        self
    }

    /// How long the assumed credentials last: an hour unless set; from 900 s to 12 hours, as
    /// STS allows, else an error.
    pub fn duration(mut self, duration: Duration) -> Result<Self, CredentialsError> {
        self.role.set_duration(duration)?;
        Ok(self)
    }

    /// A policy that narrows the role's permissions for these credentials.
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.role.policy = Some(policy.into());
        self
    }

    /// The external id the role's trust policy asks for.
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// The STS endpoint URL, instead of the default (see above); `http://` is accepted here,
    /// for a local emulator.
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.role.endpoint = Some(url.into());
        self
    }

    async fn assume(&self) -> Result<Credentials, CredentialsError> {
        let source = self.source.get().await?;
        let external_id = self.external_id.as_deref().map(|id| ("ExternalId", id));
        self.role
            .call(
                Some(&source),
                protocol::STS_ASSUME_ROLE,
                external_id.as_slice(),
            )
            .await
    }
}

impl fmt::Debug for RamRoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RamRoleArn")
            .field("role_arn", &self.role.role_arn)
            .field("session_name", &self.role.session_name)
            .field("duration", &self.role.duration)
            .finish_non_exhaustive()
    }
}

impl ProvideCredentials for RamRoleArn {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self.assume())
    }

    fn name(&self) -> &'static str {
        "ram_role_arn"
    }
}

/// A RAM role assumed with an OIDC token (STS `AssumeRoleWithOIDC`): ACK's RRSA, where the pod
/// gets `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
/// `ALIBABA_CLOUD_OIDC_TOKEN_FILE`. The token file is read again at every refresh (the
/// cluster rotates it). STS is found as for [`RamRoleArn`].
///
/// ```
/// use tower_aliyun_captcha::Client;
/// use tower_aliyun_captcha::credentials::OidcRoleArn;
///
/// let rrsa = OidcRoleArn::new(
///     "acs:ram::1234567890123456:role/captcha-verifier",
///     "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1",
///     "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token",
/// );
/// let client = Client::builder().credentials_provider(rrsa).build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[must_use]
pub struct OidcRoleArn {
    provider_arn: String,
    token_file: PathBuf,
    role: AssumeRole,
}

impl OidcRoleArn {
    /// Assumes `role_arn` as the OIDC provider `provider_arn`, with the token in `token_file`.
    pub fn new(
        role_arn: impl Into<String>,
        provider_arn: impl Into<String>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self::with_config(
            role_arn,
            provider_arn,
            token_file,
            ProviderConfig::from_env(),
        )
    }

    pub(crate) fn with_config(
        role_arn: impl Into<String>,
        provider_arn: impl Into<String>,
        token_file: impl Into<PathBuf>,
        config: Arc<ProviderConfig>,
    ) -> Self {
        Self {
            provider_arn: provider_arn.into(),
            token_file: token_file.into(),
            role: AssumeRole::new(role_arn.into(), config),
        }
    }

    /// From `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
    /// `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (the variables ACK sets with RRSA), if all are set.
    pub fn from_env() -> Option<Self> {
        Self::from_config(ProviderConfig::from_env())
    }

    pub(crate) fn from_config(config: Arc<ProviderConfig>) -> Option<Self> {
        let role = config.lookup(ENV_ROLE_ARN)?;
        let provider = config.lookup(ENV_OIDC_PROVIDER_ARN)?;
        let file = config.lookup(ENV_OIDC_TOKEN_FILE)?;
        Some(Self::with_config(role, provider, file, config))
    }

    /// The role session's name.
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.role.session_name = name.into();
        self
    }

    /// How long the assumed credentials last: an hour unless set; from 900 s to 12 hours, as
    /// STS allows, else an error.
    pub fn duration(mut self, duration: Duration) -> Result<Self, CredentialsError> {
        self.role.set_duration(duration)?;
        Ok(self)
    }

    /// A policy that narrows the role's permissions for these credentials.
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.role.policy = Some(policy.into());
        self
    }

    /// The STS endpoint URL, instead of the default; `http://` is accepted here, for a local
    /// emulator.
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.role.endpoint = Some(url.into());
        self
    }

    async fn assume(&self) -> Result<Credentials, CredentialsError> {
        // A few hundred bytes, on a local volume; read again each time, as the token rotates.
        let token = super::read_small_file(&self.token_file).map_err(|e| {
            CredentialsError::failed(
                format!(
                    "the OIDC token file {} cannot be read",
                    self.token_file.display()
                ),
                e,
            )
        })?;
        let fields = [
            ("OIDCProviderArn", self.provider_arn.as_str()),
            ("OIDCToken", token.as_str()),
        ];
        self.role
            .call(None, protocol::STS_ASSUME_ROLE_WITH_OIDC, &fields)
            .await
    }
}

impl fmt::Debug for OidcRoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcRoleArn")
            .field("role_arn", &self.role.role_arn)
            .field("provider_arn", &self.provider_arn)
            .field("token_file", &self.token_file)
            .finish_non_exhaustive()
    }
}

impl ProvideCredentials for OidcRoleArn {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self.assume())
    }

    fn name(&self) -> &'static str {
        "oidc_role_arn"
    }
}
