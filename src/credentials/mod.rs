//! AccessKey credentials, optionally with an STS token, and the provider trait that lets them
//! rotate without rebuilding the client.
//!
//! Secrets never show up in `Debug` output, in errors or in log lines: the types that hold them
//! print `<redacted>` instead.

use std::fmt;
use std::sync::{Arc, RwLock};

/// The environment variable that Alibaba Cloud's SDKs read the AccessKey id from.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// The environment variable that Alibaba Cloud's SDKs read the AccessKey secret from.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// The environment variable that Alibaba Cloud's SDKs read an STS security token from.
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// A string that must never be printed: an AccessKey secret or an STS token.
///
/// ```
/// use tower_aliyun_captcha::credentials::Secret;
///
/// let secret = Secret::new("s3cr3t");
/// assert_eq!(format!("{secret:?}"), "<redacted>");
/// assert_eq!(secret.expose(), "s3cr3t");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::Secret;
    ///
    /// let token = Secret::new(String::from("CAIS…"));
    /// assert_eq!(format!("{token:?}"), "<redacted>");
    /// ```
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret itself. Call it only where the value is really used (signing), never to log.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// let credentials = Credentials::new("id", "the-secret");
    /// let key = credentials.access_key_secret().expose().as_bytes(); // e.g. an HMAC key
    /// assert_eq!(key, b"the-secret");
    /// ```
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
/// let sts = Credentials::new("STS.example", "temp-secret").with_security_token("token");
/// assert!(sts.security_token().is_some());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: Secret,
    security_token: Option<Secret>,
}

impl Credentials {
    /// A long-lived AccessKey pair.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// let credentials = Credentials::new("LTAI5tExampleId", "example-secret");
    /// assert!(credentials.security_token().is_none());
    /// ```
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: Secret::new(access_key_secret),
            security_token: None,
        }
    }

    /// Adds the STS security token that goes with a temporary AccessKey pair.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// let sts = Credentials::new("STS.NUk1", "temporary-secret").with_security_token("CAIS-token");
    /// assert_eq!(sts.security_token().map(|t| t.expose()), Some("CAIS-token"));
    /// assert!(!format!("{sts:?}").contains("CAIS-token"));
    /// ```
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    /// Reads `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and, when set,
    /// `ALIBABA_CLOUD_SECURITY_TOKEN`: the variables Alibaba Cloud's own SDKs use.
    ///
    /// ```no_run
    /// let credentials = tower_aliyun_captcha::Credentials::from_env()?;
    /// # Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(())
    /// ```
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), with the variables read through `lookup`.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// let credentials = Credentials::from_lookup(|name| match name {
    ///     "ALIBABA_CLOUD_ACCESS_KEY_ID" => Some("id".to_owned()),
    ///     "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some("secret".to_owned()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(credentials.access_key_id(), "id");
    /// assert!(Credentials::from_lookup(|_| None).is_err());
    /// # Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(())
    /// ```
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
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// assert_eq!(
    ///     Credentials::new("LTAI5tExampleId", "s").access_key_id(),
    ///     "LTAI5tExampleId"
    /// );
    /// ```
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The AccessKey secret.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// let credentials = Credentials::new("id", "example-secret");
    /// assert_eq!(
    ///     format!("{:?}", credentials.access_key_secret()),
    ///     "<redacted>"
    /// );
    /// ```
    pub fn access_key_secret(&self) -> &Secret {
        &self.access_key_secret
    }

    /// The STS security token, for temporary credentials.
    ///
    /// ```
    /// use tower_aliyun_captcha::Credentials;
    ///
    /// assert!(Credentials::new("LTAI5t", "s").security_token().is_none());
    /// assert!(
    ///     Credentials::new("STS.x", "s")
    ///         .with_security_token("t")
    ///         .security_token()
    ///         .is_some()
    /// );
    /// ```
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
            .finish()
    }
}

/// Credentials could not be had.
///
/// ```
/// use tower_aliyun_captcha::Credentials;
/// use tower_aliyun_captcha::credentials::CredentialsError;
///
/// let error = Credentials::from_lookup(|name| {
///     (name == "ALIBABA_CLOUD_ACCESS_KEY_ID").then(|| "id".to_owned())
/// })
/// .unwrap_err();
/// assert_eq!(
///     error,
///     CredentialsError::MissingVariable("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialsError {
    /// An environment variable that is required is unset or empty.
    MissingVariable(&'static str),
    /// A custom provider failed; the text says why (and must hold no secret).
    Provider(String),
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingVariable(name) => write!(
                f,
                "environment variable {name} is not set; set it, or pass credentials explicitly"
            ),
            Self::Provider(reason) => write!(f, "credentials provider failed: {reason}"),
        }
    }
}

impl std::error::Error for CredentialsError {}

/// Where the client gets credentials from, asked once per request.
///
/// It must answer quickly and without I/O: a provider that refreshes STS tokens does so in the
/// background and hands out the current value. Implemented for `Arc<Credentials>` (fixed
/// credentials), [`RotatingCredentials`], and any `Fn() -> Result<Arc<Credentials>, _>`.
///
/// ```
/// use std::sync::Arc;
/// use tower_aliyun_captcha::credentials::{Credentials, ProvideCredentials};
///
/// let fixed = Arc::new(Credentials::new("id", "secret"));
/// assert_eq!(fixed.credentials()?.access_key_id(), "id");
///
/// let closure = move || Ok(Arc::new(Credentials::new("other", "secret")));
/// assert_eq!(closure.credentials()?.access_key_id(), "other");
/// # Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(())
/// ```
pub trait ProvideCredentials: Send + Sync + 'static {
    /// The credentials to sign the next request with.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_aliyun_captcha::credentials::{Credentials, CredentialsError, ProvideCredentials};
    ///
    /// // A provider backed by your own store, failing without a secret in its message.
    /// let vault = || -> Result<Arc<Credentials>, CredentialsError> {
    ///     Err(CredentialsError::Provider("vault sealed".into()))
    /// };
    /// assert_eq!(
    ///     vault.credentials().unwrap_err().to_string(),
    ///     "credentials provider failed: vault sealed"
    /// );
    /// ```
    fn credentials(&self) -> Result<Arc<Credentials>, CredentialsError>;
}

impl ProvideCredentials for Arc<Credentials> {
    fn credentials(&self) -> Result<Arc<Credentials>, CredentialsError> {
        Ok(Arc::clone(self))
    }
}

impl<F> ProvideCredentials for F
where
    F: Fn() -> Result<Arc<Credentials>, CredentialsError> + Send + Sync + 'static,
{
    fn credentials(&self) -> Result<Arc<Credentials>, CredentialsError> {
        self()
    }
}

/// Credentials that can be replaced while clients use them, for STS tokens that expire.
///
/// Clones share the same slot: keep one to [`replace`](Self::replace) the value from a
/// refresh task and give another to the client.
///
/// ```
/// use tower_aliyun_captcha::credentials::{Credentials, ProvideCredentials, RotatingCredentials};
///
/// let rotating =
///     RotatingCredentials::new(Credentials::new("STS.one", "s").with_security_token("t1"));
/// let for_client = rotating.clone();
/// rotating.replace(Credentials::new("STS.two", "s").with_security_token("t2"));
/// assert_eq!(for_client.credentials()?.access_key_id(), "STS.two");
/// # Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RotatingCredentials {
    current: Arc<RwLock<Arc<Credentials>>>,
}

impl RotatingCredentials {
    /// Starts with `initial`.
    ///
    /// ```
    /// use tower_aliyun_captcha::credentials::{Credentials, ProvideCredentials, RotatingCredentials};
    ///
    /// let rotating =
    ///     RotatingCredentials::new(Credentials::new("STS.one", "s").with_security_token("t"));
    /// assert_eq!(rotating.credentials()?.access_key_id(), "STS.one");
    /// # Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(())
    /// ```
    pub fn new(initial: Credentials) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(initial))),
        }
    }

    /// Makes `next` the credentials for every request from now on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::credentials::{Credentials, ProvideCredentials, RotatingCredentials};
    ///
    /// let rotating = RotatingCredentials::new(Credentials::new("STS.one", "s").with_security_token("t1"));
    /// let refresher = rotating.clone();
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A refresh task, e.g. every 50 minutes for a one-hour STS token.
    /// let refresh = tokio::spawn(async move {
    ///     # let fetch_sts = || Credentials::new("STS.two", "s").with_security_token("t2");
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    ///     refresher.replace(fetch_sts());
    /// });
    /// refresh.await.unwrap();
    /// # });
    /// assert_eq!(rotating.credentials()?.access_key_id(), "STS.two");
    /// # Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(())
    /// ```
    pub fn replace(&self, next: Credentials) {
        let next = Arc::new(next);
        // A poisoned lock only means a writer panicked mid-swap of an Arc, which cannot leave
        // the value half-written; carry on with it.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
    }
}

impl ProvideCredentials for RotatingCredentials {
    fn credentials(&self) -> Result<Arc<Credentials>, CredentialsError> {
        Ok(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}
