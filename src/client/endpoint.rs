//! Where the service is: region presets and validated endpoint URLs.

use std::fmt;
use std::str::FromStr;

use http::{HeaderValue, Uri};

/// A region (or access path) with documented Captcha 2.0 endpoints.
///
/// The front end's `AliyunCaptchaConfig.region` must match the server's endpoint (`cn` with
/// `cn-shanghai`, `sgp` with `ap-southeast-1`), or every verification fails;
/// [`frontend_name`](Self::frontend_name) gives the page's name for a region, and the names
/// parse both ways.
///
/// ```
/// use tower_aliyun_captcha::client::Region;
///
/// let region: Region = "ap-southeast-1".parse().unwrap();
/// assert_eq!(region, "sgp".parse().unwrap());
/// let hosts: Vec<String> = region.endpoints().iter().map(|e| e.host().to_owned()).collect();
/// assert_eq!(
///     hosts,
///     ["captcha.ap-southeast-1.aliyuncs.com", "captcha-dualstack.ap-southeast-1.aliyuncs.com"]
/// );
/// assert_eq!(region.frontend_name(), "sgp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// Chinese mainland, `cn-shanghai` (front end: `cn`).
    CnShanghai,
    /// Outside the Chinese mainland, `ap-southeast-1`, Singapore (front end: `sgp`).
    ApSoutheast1,
    /// Global acceleration, `captcha-open-ga.aliyuncs.com` (front end: `ga`).
    GlobalAcceleration,
}

impl Region {
    /// The region id, e.g. `cn-shanghai`; `ga` for global acceleration.
    pub fn id(self) -> &'static str {
        match self {
            Self::CnShanghai => "cn-shanghai",
            Self::ApSoutheast1 => "ap-southeast-1",
            Self::GlobalAcceleration => "ga",
        }
    }

    /// The name the page's `window.AliyunCaptchaConfig.region` uses for this region.
    pub fn frontend_name(self) -> &'static str {
        match self {
            Self::CnShanghai => "cn",
            Self::ApSoutheast1 => "sgp",
            Self::GlobalAcceleration => "ga",
        }
    }

    /// The regional endpoint, `https://captcha.REGION.aliyuncs.com` (for global
    /// acceleration, `https://captcha-open-ga.aliyuncs.com`).
    pub fn endpoint(self) -> Endpoint {
        match self {
            Self::GlobalAcceleration => Endpoint::https_host("captcha-open-ga.aliyuncs.com"),
            _ => Endpoint::https_host(&format!("captcha.{}.aliyuncs.com", self.id())),
        }
    }

    /// The dual-stack (IPv4 and IPv6) endpoint, `https://captcha-dualstack.REGION.aliyuncs.com`,
    /// where there is one.
    pub fn dual_stack_endpoint(self) -> Option<Endpoint> {
        match self {
            Self::GlobalAcceleration => None,
            _ => Some(Endpoint::https_host(&format!(
                "captcha-dualstack.{}.aliyuncs.com",
                self.id()
            ))),
        }
    }

    /// The endpoint inside the region's VPC, for services running on Alibaba Cloud in that
    /// region: `https://captcha-vpc.cn-shanghai.aliyuncs.com`. Only Shanghai documents one.
    pub fn vpc_endpoint(self) -> Option<Endpoint> {
        match self {
            Self::CnShanghai => Some(Endpoint::https_host("captcha-vpc.cn-shanghai.aliyuncs.com")),
            _ => None,
        }
    }

    /// The endpoints a client with this region tries, in order: the regional one, then its
    /// dual-stack twin.
    pub fn endpoints(self) -> Vec<Endpoint> {
        std::iter::once(self.endpoint())
            .chain(self.dual_stack_endpoint())
            .collect()
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cn-shanghai" | "cn" => Ok(Self::CnShanghai),
            "ap-southeast-1" | "sgp" => Ok(Self::ApSoutheast1),
            "ga" => Ok(Self::GlobalAcceleration),
            other => Err(UnknownRegion(other.to_owned())),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A region id that has no Captcha 2.0 endpoint preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRegion(String);

impl fmt::Display for UnknownRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown region {:?}: use cn-shanghai (cn), ap-southeast-1 (sgp) or ga, or give an endpoint URL",
            self.0
        )
    }
}

impl std::error::Error for UnknownRegion {}

/// A validated endpoint: `https://HOST[:PORT]` (or `http://` for a local emulator), parsed
/// from a URL with [`str::parse`]. Another scheme, a path, a query or user information is an
/// [`InvalidEndpoint`] that says which.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    uri: Uri,
    host: HeaderValue,
    https: bool,
}

impl Endpoint {
    fn https_host(host: &str) -> Self {
        format!("https://{host}")
            .parse()
            .expect("preset endpoints are valid")
    }

    /// The URI requests go to (the root path).
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The `host` header value: the URL's authority.
    pub fn host(&self) -> &str {
        self.host.to_str().unwrap_or_default()
    }

    pub(crate) fn host_header(&self) -> &HeaderValue {
        &self.host
    }

    /// Whether requests are sent over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether the endpoint is on this machine (`localhost`, `127.0.0.1`, `::1`).
    pub(crate) fn is_loopback(&self) -> bool {
        self.uri.host().is_some_and(is_loopback_host)
    }
}

/// Whether `host` (from a URI, IPv6 in brackets) names this machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for Endpoint {
    type Err = InvalidEndpoint;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let invalid = |why| InvalidEndpoint {
            url: url.to_owned(),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("it is not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(invalid(
                    "the scheme must be https:// (or http:// for an emulator)",
                ));
            }
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid(
                "the service lives at the root path: give no path or query",
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("it has no host"))?
            .clone();
        if authority.as_str().contains('@') {
            return Err(invalid("user information in the URL is not supported"));
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| invalid("the host is invalid"))?;
        let uri = Uri::builder()
            .scheme(uri.scheme_str().unwrap_or_default())
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|_| invalid("it is not a URL"))?;
        Ok(Self { uri, host, https })
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.uri)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host())
    }
}

/// An endpoint URL that cannot be used; says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEndpoint {
    url: String,
    why: &'static str,
}

impl fmt::Display for InvalidEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid endpoint {:?}: {}", self.url, self.why)
    }
}

impl std::error::Error for InvalidEndpoint {}
