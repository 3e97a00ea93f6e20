//! Temporary credentials from STS: `AssumeRole` (a RAM role, assumed with other credentials)
//! and `AssumeRoleWithOIDC` (ACK's RRSA: a pod's OIDC token). Requests are signed with the
//! crate's own ACS3-HMAC-SHA256 signer; `AssumeRoleWithOIDC` is anonymous.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::Http;
use super::{
    Credentials, CredentialsCache, CredentialsError, Lookup, ProvideCredentials, ProvideFuture,
    TemporaryCredentials, process_env,
};
use crate::client::request::{Call, form_request, fresh_nonce};
use crate::client::{Endpoint, Proxy};
use crate::protocol;

/// The official libraries' default lifetime of assumed credentials.
const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// STS refuses shorter ones.
const MIN_DURATION: Duration = Duration::from_secs(900);
const STS_TIMEOUT: Duration = Duration::from_secs(10);
const STS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
pub(crate) const ENV_ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
pub(crate) const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
pub(crate) const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
const ENV_STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
const ENV_VPC: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";

/// The STS endpoint: explicit, else `sts[-vpc].REGION.aliyuncs.com` with
/// `ALIBABA_CLOUD_STS_REGION` (VPC with `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), else
/// `sts.aliyuncs.com`.
pub(crate) fn sts_endpoint(explicit: Option<&str>, lookup: &Lookup) -> Result<Endpoint, String> {
    let url = match explicit {
        Some(url) => url.to_owned(),
        None => match lookup(ENV_STS_REGION) {
            Some(region) => {
                let vpc = lookup(ENV_VPC).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                regional_sts_url(region.trim(), vpc)
            }
            None => "https://sts.aliyuncs.com".to_owned(),
        },
    };
    url.parse::<Endpoint>()
        .map_err(|e| format!("STS endpoint: {e}"))
}

/// STS's URL in `region`; a region that is not a plain name (`cn-hangzhou`) gives a URL that
/// fails to parse, rather than a host elsewhere than Alibaba Cloud's.
pub(crate) fn regional_sts_url(region: &str, vpc: bool) -> String {
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return format!("invalid STS region {region:?}");
    }
    let prefix = if vpc { "sts-vpc" } else { "sts" };
    format!("https://{prefix}.{region}.aliyuncs.com")
}

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

/// Calls STS `action` with `fields`, signed with `signer` (or anonymous), and reads the
/// credentials it answers.
async fn call_sts(
    http: &Http,
    endpoint: &Endpoint,
    signer: Option<&Credentials>,
    action: &str,
    fields: &[(&str, &str)],
) -> Result<Credentials, CredentialsError> {
    let fail = |why: String| CredentialsError::Provider(format!("STS {action}: {why}"));
    let date = protocol::format_date(time::OffsetDateTime::now_utc());
    let nonce = fresh_nonce();
    let call = Call {
        action,
        version: protocol::STS_VERSION,
        fields,
        date: &date,
        nonce: &nonce,
    };
    let request = form_request(endpoint, signer, &call).map_err(|e| fail(e.to_string()))?;
    let answer = http.send(request, STS_TIMEOUT).await.map_err(fail)?;
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

/// Checks a session duration: 900 s or more.
fn checked_duration(duration: Duration) -> Result<Duration, CredentialsError> {
    if duration < MIN_DURATION {
        return Err(CredentialsError::Provider(
            "the session duration must be at least 900 seconds".into(),
        ));
    }
    Ok(duration)
}

/// A RAM role assumed with other credentials (STS `AssumeRole`): for a RAM user's AccessKey
/// that may only act through a role, or for one account's service reaching another's.
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
/// .duration(Duration::from_secs(3600));
/// let client = Client::builder().credentials_provider(role).build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[must_use]
pub struct RamRoleArn {
    source: Arc<CredentialsCache>,
    role_arn: String,
    session_name: String,
    duration: Duration,
    policy: Option<String>,
    external_id: Option<String>,
    endpoint: Option<String>,
    lookup: Lookup,
}

impl RamRoleArn {
    /// Assumes `role_arn` with the credentials `source` provides.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    ///
    /// let role = RamRoleArn::new(Credentials::new("id", "secret"), "acs:ram::1:role/r");
    /// # let _ = role;
    /// ```
    pub fn new(source: impl ProvideCredentials, role_arn: impl Into<String>) -> Self {
        let lookup = process_env();
        Self {
            source: Arc::new(CredentialsCache::new(Box::new(source))),
            role_arn: role_arn.into(),
            session_name: lookup(ENV_ROLE_SESSION_NAME).unwrap_or_else(default_session_name),
            duration: DEFAULT_DURATION,
            policy: None,
            external_id: None,
            endpoint: None,
            lookup,
        }
    }

    /// The role session's name (default `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else one of ours).
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    ///
    /// let role = RamRoleArn::new(Credentials::new("id", "s"), "acs:ram::1:role/r").session_name("login");
    /// # let _ = role;
    /// ```
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
        self
    }

    /// How long the assumed credentials last (default an hour; at least 900 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::Credentials;
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    ///
    /// let role = RamRoleArn::new(Credentials::new("id", "s"), "acs:ram::1:role/r")
    ///     .duration(Duration::from_secs(900));
    /// # let _ = role;
    /// ```
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// A policy that narrows the role's permissions for these credentials.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    ///
    /// let role = RamRoleArn::new(Credentials::new("id", "s"), "acs:ram::1:role/r")
    ///     .policy(r#"{"Version":"1","Statement":[]}"#);
    /// # let _ = role;
    /// ```
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The external id the role's trust policy asks for.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    ///
    /// let role = RamRoleArn::new(Credentials::new("id", "s"), "acs:ram::1:role/r").external_id("abc");
    /// # let _ = role;
    /// ```
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// The STS endpoint URL, instead of the default (see the module docs); `http://` is
    /// accepted here, for a local emulator.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    /// use tower_aliyun_captcha::credentials::RamRoleArn;
    ///
    /// let role = RamRoleArn::new(Credentials::new("id", "s"), "acs:ram::1:role/r")
    ///     .sts_endpoint("https://sts-vpc.cn-shanghai.aliyuncs.com");
    /// # let _ = role;
    /// ```
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    pub(crate) fn with_lookup(mut self, lookup: Lookup) -> Self {
        self.lookup = lookup;
        self
    }

    async fn assume(&self) -> Result<Credentials, CredentialsError> {
        let duration = checked_duration(self.duration)?.as_secs().to_string();
        let endpoint = sts_endpoint(self.endpoint.as_deref(), &self.lookup)
            .map_err(CredentialsError::Provider)?;
        let http = Http::new(
            &Proxy::from_lookup(|n| (self.lookup)(n)),
            STS_CONNECT_TIMEOUT,
        )
        .map_err(CredentialsError::Provider)?;
        let source = self.source.get().await?;
        let mut fields = vec![
            ("DurationSeconds", duration.as_str()),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
        ];
        if let Some(policy) = &self.policy {
            fields.push(("Policy", policy));
        }
        if let Some(id) = &self.external_id {
            fields.push(("ExternalId", id));
        }
        fields.sort_unstable();
        call_sts(
            &http,
            &endpoint,
            Some(&source),
            protocol::STS_ASSUME_ROLE,
            &fields,
        )
        .await
    }
}

impl fmt::Debug for RamRoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RamRoleArn")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("duration", &self.duration)
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
/// cluster rotates it).
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
    role_arn: String,
    provider_arn: String,
    token_file: PathBuf,
    session_name: String,
    duration: Duration,
    policy: Option<String>,
    endpoint: Option<String>,
    lookup: Lookup,
}

impl OidcRoleArn {
    /// Assumes `role_arn` as the OIDC provider `provider_arn`, with the token in `token_file`.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::OidcRoleArn;
    ///
    /// let rrsa = OidcRoleArn::new("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", "/token");
    /// # let _ = rrsa;
    /// ```
    pub fn new(
        role_arn: impl Into<String>,
        provider_arn: impl Into<String>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        let lookup = process_env();
        Self {
            role_arn: role_arn.into(),
            provider_arn: provider_arn.into(),
            token_file: token_file.into(),
            session_name: lookup(ENV_ROLE_SESSION_NAME).unwrap_or_else(default_session_name),
            duration: DEFAULT_DURATION,
            policy: None,
            endpoint: None,
            lookup,
        }
    }

    /// From `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
    /// `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (the variables ACK sets with RRSA), if all are set.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::OidcRoleArn;
    ///
    /// if let Some(rrsa) = OidcRoleArn::from_env() {
    ///     // running in a pod with RRSA
    /// #   let _ = rrsa;
    /// }
    /// ```
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(process_env())
    }

    pub(crate) fn from_lookup(lookup: Lookup) -> Option<Self> {
        let role = lookup(ENV_ROLE_ARN)?;
        let provider = lookup(ENV_OIDC_PROVIDER_ARN)?;
        let file = lookup(ENV_OIDC_TOKEN_FILE)?;
        let mut rrsa = Self::new(role, provider, file);
        rrsa.session_name = lookup(ENV_ROLE_SESSION_NAME).unwrap_or_else(default_session_name);
        rrsa.lookup = lookup;
        Some(rrsa)
    }

    /// The role session's name.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::OidcRoleArn;
    ///
    /// let rrsa = OidcRoleArn::new("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", "/token")
    ///     .session_name("login-pod");
    /// # let _ = rrsa;
    /// ```
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
        self
    }

    /// How long the assumed credentials last (default an hour; at least 900 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::credentials::OidcRoleArn;
    ///
    /// let rrsa = OidcRoleArn::new("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", "/token")
    ///     .duration(Duration::from_secs(1800));
    /// # let _ = rrsa;
    /// ```
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// A policy that narrows the role's permissions for these credentials.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::OidcRoleArn;
    ///
    /// let rrsa = OidcRoleArn::new("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", "/token")
    ///     .policy(r#"{"Version":"1","Statement":[]}"#);
    /// # let _ = rrsa;
    /// ```
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The STS endpoint URL, instead of the default; `http://` is accepted here, for a local
    /// emulator.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::OidcRoleArn;
    ///
    /// let rrsa = OidcRoleArn::new("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", "/token")
    ///     .sts_endpoint("https://sts-vpc.cn-hangzhou.aliyuncs.com");
    /// # let _ = rrsa;
    /// ```
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    async fn assume(&self) -> Result<Credentials, CredentialsError> {
        let duration = checked_duration(self.duration)?.as_secs().to_string();
        // A few hundred bytes, on a local volume; read again each time, as the token rotates.
        let token = super::read_small_file(&self.token_file).map_err(|e| {
            CredentialsError::Provider(format!(
                "the OIDC token file {} cannot be read: {e}",
                self.token_file.display()
            ))
        })?;
        let endpoint = sts_endpoint(self.endpoint.as_deref(), &self.lookup)
            .map_err(CredentialsError::Provider)?;
        let http = Http::new(
            &Proxy::from_lookup(|n| (self.lookup)(n)),
            STS_CONNECT_TIMEOUT,
        )
        .map_err(CredentialsError::Provider)?;
        let mut fields = vec![
            ("DurationSeconds", duration.as_str()),
            ("OIDCProviderArn", self.provider_arn.as_str()),
            ("OIDCToken", token.as_str()),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
        ];
        if let Some(policy) = &self.policy {
            fields.push(("Policy", policy));
        }
        fields.sort_unstable();
        call_sts(
            &http,
            &endpoint,
            None,
            protocol::STS_ASSUME_ROLE_WITH_OIDC,
            &fields,
        )
        .await
    }
}

impl fmt::Debug for OidcRoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcRoleArn")
            .field("role_arn", &self.role_arn)
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
