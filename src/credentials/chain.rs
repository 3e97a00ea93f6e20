//! The default chain: the sources Alibaba Cloud's official credentials libraries try, in their
//! order, the first that has credentials winning.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::config::ProviderConfig;
use super::imds::{self, EcsRamRole};
use super::profile;
use super::sts::OidcRoleArn;
use super::uri::{self, CredentialsUri};
use super::{
    Credentials, CredentialsError, Lookup, ProvideCredentials, ProvideFuture, process_env,
};

/// Credentials from wherever the deployment keeps them, in the order of Alibaba Cloud's
/// official credentials libraries:
///
/// 1. `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (and
///    `ALIBABA_CLOUD_SECURITY_TOKEN`);
/// 2. an OIDC role, when `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
///    `ALIBABA_CLOUD_OIDC_TOKEN_FILE` are set (ACK's RRSA), through STS `AssumeRoleWithOIDC`;
/// 3. the Alibaba Cloud CLI's profile in `~/.aliyun/config.json` (`ALIBABA_CLOUD_CONFIG_FILE`):
///    `ALIBABA_CLOUD_PROFILE`, else the current one; modes `AK`, `StsToken`, `RamRoleArn`,
///    `ChainableRamRoleArn`, `EcsRamRole`, `OIDC`, `External` (a command that prints
///    credentials: [`ExternalProcess`](super::ExternalProcess)) (off with
///    `ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true`);
/// 4. the credentials file `~/.alibabacloud/credentials.ini` (`ALIBABA_CLOUD_CREDENTIALS_FILE`):
///    section `ALIBABA_CLOUD_PROFILE`, else `default`; types `access_key`, `sts`,
///    `ram_role_arn`, `ecs_ram_role`, `oidc_role_arn`;
/// 5. the ECS instance's RAM role, from the metadata service (off with
///    `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`);
/// 6. `ALIBABA_CLOUD_CREDENTIALS_URI`.
///
/// STS is `sts.aliyuncs.com`, or `sts.REGION.aliyuncs.com` with `ALIBABA_CLOUD_STS_REGION`
/// (`sts-vpc.REGION…` with `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), unless a profile names
/// its own region. The sources share one HTTP client, made at the first fetch, which goes
/// through the proxy the environment names (see [`Proxy`](crate::client::Proxy)), except to
/// the metadata service.
///
/// The first source that answers is remembered and asked first at the next refresh. When none
/// answers, the error ([`CredentialsError::NotFound`]) lists every source with the reason it
/// was skipped or failed, and tells whether any was configured
/// ([`is_not_configured`](CredentialsError::is_not_configured)).
///
/// A client without credentials of its own uses the chain. To see, at startup, what it finds:
///
/// ```no_run
/// use tower_aliyun_captcha::credentials::{DefaultChain, ProvideCredentials};
///
/// # async fn run() {
/// match DefaultChain::new().provide_credentials().await {
///     Ok(credentials) => println!("signing as {}", credentials.access_key_id()),
///     // Every source says why it was skipped: nothing set up.
///     Err(error) if error.is_not_configured() => eprintln!("no credentials: {error}"),
///     // A source that is set up failed (a bad profile, STS refusing the role, …).
///     Err(error) => eprintln!("credentials failed: {error}"),
/// }
/// # }
/// ```
pub struct DefaultChain {
    config: Arc<ProviderConfig>,
    /// The source that answered first: the only one asked from then on.
    last: Mutex<Option<(&'static str, Arc<dyn ProvideCredentials>)>>,
}

/// A source's name, and the provider it would use or why there is none.
type Source = (
    &'static str,
    Result<Arc<dyn ProvideCredentials>, CredentialsError>,
);

impl DefaultChain {
    /// The chain over the process's environment and the real endpoints.
    pub fn new() -> Self {
        Self {
            config: ProviderConfig::from_env(),
            last: Mutex::new(None),
        }
    }

    /// A chain with its variables, home directory or endpoints replaced: for tests, not part
    /// of the API.
    #[doc(hidden)]
    pub fn builder() -> DefaultChainBuilder {
        DefaultChainBuilder {
            lookup: process_env(),
            home: None,
            sts_endpoint: None,
            metadata_endpoint: None,
        }
    }

    /// The sources to try now, in order; those that are not configured say why.
    fn sources(&self) -> Vec<Source> {
        let config = &self.config;
        let not_configured = |why: String| Err(CredentialsError::NotConfigured(why));
        let mut sources: Vec<Source> = Vec::with_capacity(6);
        sources.push((
            "environment",
            Credentials::from_lookup(|n| config.lookup(n))
                .map(|c| Arc::new(c) as Arc<dyn ProvideCredentials>),
        ));
        sources.push((
            "oidc_role_arn",
            match OidcRoleArn::from_config(Arc::clone(config)) {
                Some(oidc) => Ok(Arc::new(oidc)),
                None => not_configured(
                    "ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE are not all set"
                        .into(),
                ),
            },
        ));
        sources.push(("cli_profile", profile::cli_profile(config)));
        sources.push(("credentials_file", profile::credentials_file(config)));
        sources.push((
            "ecs_ram_role",
            if config.flag(imds::ENV_DISABLED) {
                not_configured(format!("disabled by {}", imds::ENV_DISABLED))
            } else {
                Ok(Arc::new(EcsRamRole::with_config(Arc::clone(config))))
            },
        ));
        sources.push((
            "credentials_uri",
            match config.lookup(uri::ENV_URI) {
                Some(url) => Ok(Arc::new(CredentialsUri::with_config(
                    url,
                    Arc::clone(config),
                ))),
                None => not_configured(format!("{} is not set", uri::ENV_URI)),
            },
        ));
        sources
    }

    async fn provide(&self) -> Result<Credentials, CredentialsError> {
        // Once a source has answered, the chain keeps to it, as the official libraries do: a
        // deployment's credentials do not move between sources, and walking the chain again
        // after a failure would hide the failure behind other sources' reasons.
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((name, source)) = last {
            return source
                .provide_credentials()
                .await
                .map_err(|error| error.within(format_args!("{name} (the source in use)")));
        }
        let mut reasons = Vec::new();
        for (name, source) in self.sources() {
            match source {
                Err(why) => reasons.push((name.to_owned(), why)),
                Ok(source) => match source.provide_credentials().await {
                    Ok(credentials) => {
                        tracing::debug!(captcha.credentials = name, "credentials found");
                        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((name, source));
                        return Ok(credentials);
                    }
                    Err(error) => reasons.push((name.to_owned(), error)),
                },
            }
        }
        Err(CredentialsError::NotFound(reasons))
    }
}

impl Default for DefaultChain {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DefaultChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultChain").finish_non_exhaustive()
    }
}

impl ProvideCredentials for DefaultChain {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self.provide())
    }

    fn name(&self) -> &'static str {
        "default_chain"
    }
}

/// Configures a [`DefaultChain`] for tests (its variables, home directory and endpoints); made
/// by [`DefaultChain::builder`]. Not part of the API.
#[doc(hidden)]
#[must_use]
pub struct DefaultChainBuilder {
    lookup: Lookup,
    home: Option<PathBuf>,
    sts_endpoint: Option<String>,
    metadata_endpoint: Option<String>,
}

impl fmt::Debug for DefaultChainBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultChainBuilder")
            .finish_non_exhaustive()
    }
}

impl DefaultChainBuilder {
    /// Reads variables from `lookup` instead of the process's environment.
    pub fn lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// The home directory the files are under, instead of `HOME`.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// The STS endpoint URL for OIDC and RAM roles, instead of `ALIBABA_CLOUD_STS_REGION`'s or
    /// `sts.aliyuncs.com` (a profile's own region still wins).
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.sts_endpoint = Some(url.into());
        self
    }

    /// The instance metadata service's base URL, instead of `http://100.100.100.200`.
    pub fn metadata_endpoint(mut self, url: impl Into<String>) -> Self {
        self.metadata_endpoint = Some(url.into());
        self
    }

    /// The chain.
    pub fn build(self) -> DefaultChain {
        DefaultChain {
            config: ProviderConfig::new(
                self.lookup,
                self.home,
                self.sts_endpoint,
                self.metadata_endpoint,
            ),
            last: Mutex::new(None),
        }
    }
}
