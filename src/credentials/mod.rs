//! Credentials, and where they come from the way Alibaba Cloud deployments provide them.
//!
//! - [`Credentials`]: an AccessKey pair, with an STS token and an expiry when temporary.
//! - [`ProvideCredentials`]: an asynchronous source of credentials. The client caches what a
//!   provider gives and refreshes it ahead of expiry, in the background, so that verifications
//!   do not wait on STS in the common case; while a refresh fails, it serves the old
//!   credentials as long as they are valid, then reports a configuration error.
//! - [`DefaultChain`]: the sources of Alibaba's official credentials libraries, in their order:
//!   environment variables, an OIDC role (ACK's RRSA), the CLI's profile, the credentials
//!   file, the ECS instance's RAM role, and a credentials URI.
//! - [`RamRoleArn`], [`OidcRoleArn`], [`EcsRamRole`], [`CredentialsUri`], [`ExternalProcess`]:
//!   the sources that fetch temporary credentials, for use on their own.
//!
//! Secrets never show up in `Debug` output, in errors or in log lines: the types that hold them
//! print `<redacted>`. A [`Secret`] is zeroed when dropped; copies made on the way (the
//! answer it was parsed from, a string you passed in) are not, so this narrows the window
//! rather than closing it.

mod cache;
mod chain;
mod command_line;
mod config;
mod http;
mod imds;
mod process;
mod profile;
mod sts;
mod uri;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

pub(crate) use cache::CredentialsCache;
pub use chain::{DefaultChain, DefaultChainBuilder};
pub use imds::EcsRamRole;
pub use process::ExternalProcess;
pub use sts::{OidcRoleArn, RamRoleArn};
pub use uri::CredentialsUri;

/// A short, printable rendering of text a remote service chose (a code, a request id, a role
/// name), for errors and logs: at most 64 characters, anything but visible ASCII as `?`.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// The largest file a credential source reads (a token, a profile): they are a few KiB.
const MAX_FILE: u64 = 64 * 1024;

/// Reads a small regular file whole: anything else (a FIFO, a device, a huge file) is an
/// error rather than a hang or an allocation without bound.
pub(crate) fn read_small_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let too_big = || std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 64 KiB");
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if metadata.len() > MAX_FILE {
        return Err(too_big());
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(too_big());
    }
    Ok(text)
}

/// The environment variable that Alibaba Cloud's SDKs read the AccessKey id from.
pub(crate) const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// The environment variable that Alibaba Cloud's SDKs read the AccessKey secret from.
pub(crate) const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// The environment variable that Alibaba Cloud's SDKs read an STS security token from.
pub(crate) const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// A string that must never be printed: an AccessKey secret or an STS token. `Debug` prints
/// `<redacted>`; [`expose`](Self::expose) gives the value, to sign with.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.0);
    }
}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret itself. Call it only where the value is really used (signing), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An AccessKey pair, with an STS security token when the pair is temporary.
///
/// ```
/// use tower_aliyun_captcha::Credentials;
///
/// let credentials = Credentials::new("LTAI5tExampleId", "example-secret");
/// assert_eq!(credentials.access_key_id(), "LTAI5tExampleId");
/// let printed = format!("{credentials:?}");
/// assert!(printed.contains("LTAI5tExampleId") && !printed.contains("example-secret"));
///
/// // Temporary credentials (from STS, a vault, …): the client refreshes them before expiry.
/// let until = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
/// let sts = Credentials::new("STS.example", "temp-secret")
///     .with_security_token("token")
///     .with_expiration(until);
/// assert_eq!(sts.expiration(), Some(until));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: Secret,
    security_token: Option<Secret>,
    expiration: Option<SystemTime>,
}

impl Credentials {
    /// A long-lived AccessKey pair.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: Secret::new(access_key_secret),
            security_token: None,
            expiration: None,
        }
    }

    /// Marks the credentials as valid until `expiration` (temporary credentials from STS, the
    /// instance metadata service, …): the client refreshes them before then.
    pub fn with_expiration(mut self, expiration: SystemTime) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// When the credentials expire; `None` for a long-lived AccessKey pair.
    pub fn expiration(&self) -> Option<SystemTime> {
        self.expiration
    }

    /// Adds the STS security token that goes with a temporary AccessKey pair.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    /// Reads `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and, when set,
    /// `ALIBABA_CLOUD_SECURITY_TOKEN`: the variables Alibaba Cloud's own SDKs use. When one of
    /// the first two is unset or empty, the error is
    /// [`CredentialsError::MissingVariable`] with its name.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), with the variables read through `lookup`: for tests,
    /// not part of the API.
    #[doc(hidden)]
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let read = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or(CredentialsError::MissingVariable(name))
        };
        let credentials = Self::new(read(ENV_ACCESS_KEY_ID)?, read(ENV_ACCESS_KEY_SECRET)?);
        Ok(match read(ENV_SECURITY_TOKEN) {
            Ok(token) => credentials.with_security_token(token),
            Err(_) => credentials,
        })
    }

    /// The AccessKey id (not secret: it is sent in every request).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The AccessKey secret.
    pub fn access_key_secret(&self) -> &Secret {
        &self.access_key_secret
    }

    /// The STS security token, for temporary credentials.
    pub fn security_token(&self) -> Option<&Secret> {
        self.security_token.as_ref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field("security_token", &self.security_token)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// Credentials could not be had: not configured (nothing to ask), or a source that is
/// configured failed ([`is_not_configured`](Self::is_not_configured) tells which). The
/// underlying error, when there is one, is the error's [`source`](std::error::Error::source);
/// its text is in the message too, so that one log line says what to fix. No message holds a
/// secret.
///
/// ```
/// use tower_aliyun_captcha::Credentials;
/// use tower_aliyun_captcha::credentials::CredentialsError;
///
/// let error = Credentials::from_lookup(|name| {
///     (name == "ALIBABA_CLOUD_ACCESS_KEY_ID").then(|| "id".to_owned())
/// })
/// .unwrap_err();
/// assert!(matches!(
///     error,
///     CredentialsError::MissingVariable("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
/// ));
/// assert!(error.is_not_configured());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CredentialsError {
    /// Not configured: an environment variable that is required is unset or empty.
    MissingVariable(&'static str),
    /// Not configured: the source is not set up; the text says what is missing.
    NotConfigured(String),
    /// A setting is out of range (a session duration, a timeout): the text says which.
    Invalid(String),
    /// A provider failed; the text says why (and holds no secret).
    Provider(String),
    /// A provider failed on an underlying error: what it was doing, and that error.
    Failed {
        /// What failed (`STS AssumeRole: https://sts.aliyuncs.com`, a file, …).
        context: String,
        /// Why: the underlying error.
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// No source of the chain gave credentials: each source, and why it was skipped or how it
    /// failed.
    NotFound(Vec<(String, CredentialsError)>),
    /// The credentials expired, and refreshing them failed: how.
    Expired(Box<CredentialsError>),
}

impl CredentialsError {
    /// A failure of `context` (what was being done) on `cause`, kept as the error's source.
    pub fn failed(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Failed {
            context: context.into(),
            cause: Arc::from(cause.into()),
        }
    }

    /// Whether nothing was configured to give credentials (a variable unset, no source of the
    /// chain set up), rather than a source that is set up failing.
    pub fn is_not_configured(&self) -> bool {
        match self {
            Self::MissingVariable(_) | Self::NotConfigured(_) => true,
            Self::NotFound(sources) => sources.iter().all(|(_, error)| error.is_not_configured()),
            Self::Invalid(_) | Self::Provider(_) | Self::Failed { .. } | Self::Expired(_) => false,
        }
    }

    /// The error, with `what` (the source, the step) put in front of what it says.
    pub(crate) fn within(self, what: impl fmt::Display) -> Self {
        match self {
            Self::NotConfigured(why) => Self::NotConfigured(format!("{what}: {why}")),
            Self::Invalid(why) => Self::Invalid(format!("{what}: {why}")),
            Self::Provider(why) => Self::Provider(format!("{what}: {why}")),
            Self::Failed { context, cause } => Self::Failed {
                context: format!("{what}: {context}"),
                cause,
            },
            other => Self::Failed {
                context: what.to_string(),
                cause: Arc::new(other),
            },
        }
    }
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingVariable(name) => write!(
                f,
                "environment variable {name} is not set; set it, or pass credentials explicitly"
            ),
            Self::NotConfigured(why) => write!(f, "not configured: {why}"),
            Self::Invalid(why) => write!(f, "invalid credentials setting: {why}"),
            Self::Provider(reason) => write!(f, "credentials provider failed: {reason}"),
            Self::Failed { context, cause } => {
                write!(f, "credentials provider failed: {context}: {cause}")
            }
            Self::NotFound(sources) => {
                f.write_str("no credentials from any source of the chain:")?;
                for (source, why) in sources {
                    write!(f, " {source}: {why};")?;
                }
                Ok(())
            }
            Self::Expired(why) => write!(
                f,
                "the credentials expired and could not be refreshed: {why}"
            ),
        }
    }
}

impl std::error::Error for CredentialsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed { cause, .. } => Some(cause.as_ref()),
            Self::Expired(error) => Some(error.as_ref()),
            // The first source that was configured and failed.
            Self::NotFound(sources) => sources
                .iter()
                .map(|(_, error)| error)
                .find(|error| !error.is_not_configured())
                .map(|error| error as _),
            Self::MissingVariable(_)
            | Self::NotConfigured(_)
            | Self::Invalid(_)
            | Self::Provider(_) => None,
        }
    }
}

/// The future of [`ProvideCredentials::provide_credentials`].
pub type ProvideFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, CredentialsError>> + Send + 'a>>;

/// A source of credentials, asked again each time the client's copy nears its expiry.
/// [`Credentials`] themselves are a provider (that never expires), and so is any
/// `Fn() -> impl Future<Output = Result<Credentials, CredentialsError>>`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_aliyun_captcha::{Client, Credentials};
/// use tower_aliyun_captcha::credentials::CredentialsError;
///
/// // E.g. from a vault of your own, valid for an hour each time.
/// let from_vault = || async {
///     Ok::<_, CredentialsError>(
///         Credentials::new("STS.from-vault", "secret")
///             .with_security_token("token")
///             .with_expiration(SystemTime::now() + Duration::from_secs(3600)),
///     )
/// };
/// let client = Client::builder().credentials_provider(from_vault).build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
pub trait ProvideCredentials: Send + Sync + 'static {
    /// Fetches credentials (may do I/O).
    fn provide_credentials(&self) -> ProvideFuture<'_>;

    /// A short name for reports (`env`, `oidc_role_arn`, …).
    fn name(&self) -> &'static str {
        "custom"
    }
}

impl ProvideCredentials for Credentials {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        let credentials = self.clone();
        Box::pin(async move { Ok(credentials) })
    }

    fn name(&self) -> &'static str {
        "static"
    }
}

impl<F, Fut> ProvideCredentials for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials, CredentialsError>> + Send + 'static,
{
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self())
    }
}

impl<P: ProvideCredentials + ?Sized> ProvideCredentials for std::sync::Arc<P> {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        (**self).provide_credentials()
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// Reads environment-style variables: the process's environment, or a test's map.
pub(crate) type Lookup = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process's environment, as a [`Lookup`].
pub(crate) fn process_env() -> Lookup {
    std::sync::Arc::new(|name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// A field that is `null` reads as its default, as a missing one does: the CLI writes some.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}

/// The credentials in an STS-style answer: `AccessKeyId`, `AccessKeySecret`, `SecurityToken`
/// and `Expiration` (`yyyy-MM-ddTHH:mm:ssZ`), as STS, the metadata service and credentials
/// URIs answer them.
#[derive(serde::Deserialize)]
pub(crate) struct TemporaryCredentials {
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "AccessKeySecret")]
    access_key_secret: Option<String>,
    #[serde(rename = "SecurityToken")]
    security_token: Option<String>,
    #[serde(rename = "Expiration")]
    expiration: Option<String>,
}

impl TemporaryCredentials {
    /// The credentials, if every field is there and the expiry is a date.
    pub(crate) fn into_credentials(self) -> Result<Credentials, String> {
        let (Some(id), Some(secret), Some(token), Some(expiration)) = (
            self.access_key_id,
            self.access_key_secret,
            self.security_token,
            self.expiration,
        ) else {
            return Err(
                "the answer lacks AccessKeyId, AccessKeySecret, SecurityToken or Expiration".into(),
            );
        };
        let expiration = crate::protocol::parse_date(&expiration)
            .ok_or("the answer's Expiration is not a yyyy-MM-ddTHH:mm:ssZ date")?;
        Ok(Credentials::new(id, secret)
            .with_security_token(token)
            .with_expiration(expiration.into()))
    }
}
