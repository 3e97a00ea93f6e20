//! What every credential source shares, as aws-config's `ProviderConfig`: where variables come
//! from, the home directory, the STS and metadata endpoints, and one HTTP client, made at the
//! first fetch and used by every source from then on.
//!
//! The default chain makes one and hands it to each source it builds; a source made on its
//! own (`RamRoleArn::new`, `EcsRamRole::new`, …) makes one over the process's environment.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::http::Http;
use super::{CredentialsError, Lookup, process_env};
use crate::client::{Endpoint, Proxy};

/// Where the metadata service answers, on every ECS instance.
pub(crate) const METADATA_ENDPOINT: &str = "http://100.100.100.200";
const ENV_STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
const ENV_VPC: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";

/// The sources' shared configuration; shared as an `Arc`.
pub(crate) struct ProviderConfig {
    lookup: Lookup,
    home: Option<PathBuf>,
    sts_endpoint: Option<String>,
    metadata_endpoint: Option<String>,
    /// The HTTP client, made once (or why it could not be).
    http: OnceLock<Result<Arc<Http>, String>>,
}

impl ProviderConfig {
    /// Over the process's environment and the real endpoints.
    pub(crate) fn from_env() -> Arc<Self> {
        Self::new(process_env(), None, None, None)
    }

    pub(crate) fn new(
        lookup: Lookup,
        home: Option<PathBuf>,
        sts_endpoint: Option<String>,
        metadata_endpoint: Option<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            lookup,
            home,
            sts_endpoint,
            metadata_endpoint,
            http: OnceLock::new(),
        })
    }

    /// A variable, when set to something other than blanks.
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// Whether a variable is set to `true`.
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.lookup(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// The home directory: set explicitly, else `HOME` (`USERPROFILE` on Windows).
    pub(crate) fn home(&self) -> Result<PathBuf, CredentialsError> {
        self.home
            .clone()
            .or_else(|| self.lookup("HOME").map(PathBuf::from))
            .or_else(|| self.lookup("USERPROFILE").map(PathBuf::from))
            .ok_or_else(|| {
                CredentialsError::NotConfigured("no home directory (HOME is not set)".into())
            })
    }

    /// The STS endpoint: `explicit` (a source's own), else the configured one, else
    /// `sts[-vpc].REGION.aliyuncs.com` with `ALIBABA_CLOUD_STS_REGION` (VPC with
    /// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), else `sts.aliyuncs.com`.
    pub(crate) fn sts_endpoint(
        &self,
        explicit: Option<&str>,
    ) -> Result<Endpoint, CredentialsError> {
        let url = match explicit.or(self.sts_endpoint.as_deref()) {
            Some(url) => url.to_owned(),
            None => match self.lookup(ENV_STS_REGION) {
                Some(region) => regional_sts_url(region.trim(), self.flag(ENV_VPC)),
                None => "https://sts.aliyuncs.com".to_owned(),
            },
        };
        url.parse::<Endpoint>()
            .map_err(|e| CredentialsError::failed("STS endpoint", e))
    }

    /// The metadata service's base URL.
    pub(crate) fn metadata_endpoint(&self) -> &str {
        self.metadata_endpoint
            .as_deref()
            .unwrap_or(METADATA_ENDPOINT)
    }

    /// The HTTP client, made at the first call, through the proxy the variables name.
    pub(crate) fn http(&self) -> Result<Arc<Http>, CredentialsError> {
        self.http
            .get_or_init(|| Http::new(&Proxy::from_lookup(|n| self.lookup(n))).map(Arc::new))
            .clone()
            .map_err(CredentialsError::Provider)
    }
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
