//! Where the service is: region presets and validated endpoint URLs.

use std::fmt;
use std::str::FromStr;

use http::{HeaderValue, Uri};

/// A region with a documented Captcha 2.0 endpoint.
///
/// ```
/// use tower_aliyun_captcha::client::Region;
///
/// let region: Region = "ap-southeast-1".parse().unwrap();
/// assert_eq!(
///     region.endpoint().host(),
///     "captcha.ap-southeast-1.aliyuncs.com"
/// );
/// assert_eq!(
///     region.dual_stack_endpoint().host(),
///     "captcha-dualstack.ap-southeast-1.aliyuncs.com"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// Chinese mainland, `cn-shanghai`.
    CnShanghai,
    /// Outside the Chinese mainland, `ap-southeast-1` (Singapore).
    ApSoutheast1,
}

impl Region {
    /// The region id, e.g. `cn-shanghai`.
    pub fn id(self) -> &'static str {
        match self {
            Self::CnShanghai => "cn-shanghai",
            Self::ApSoutheast1 => "ap-southeast-1",
        }
    }

    /// The regional endpoint, `https://captcha.REGION.aliyuncs.com`.
    pub fn endpoint(self) -> Endpoint {
        Endpoint::https_host(&format!("captcha.{}.aliyuncs.com", self.id()))
    }

    /// The dual-stack (IPv4 and IPv6) endpoint, `https://captcha-dualstack.REGION.aliyuncs.com`.
    pub fn dual_stack_endpoint(self) -> Endpoint {
        Endpoint::https_host(&format!("captcha-dualstack.{}.aliyuncs.com", self.id()))
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cn-shanghai" => Ok(Self::CnShanghai),
            "ap-southeast-1" => Ok(Self::ApSoutheast1),
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
            "unknown region {:?}: use cn-shanghai or ap-southeast-1, or give an endpoint URL",
            self.0
        )
    }
}

impl std::error::Error for UnknownRegion {}

/// A validated endpoint: `https://HOST[:PORT]` (or `http://` for a local emulator).
///
/// ```
/// use tower_aliyun_captcha::client::Endpoint;
///
/// let endpoint: Endpoint = "http://127.0.0.1:8080".parse().unwrap();
/// assert!(!endpoint.is_https());
/// assert_eq!(endpoint.host(), "127.0.0.1:8080");
/// assert!("ftp://example.com".parse::<Endpoint>().is_err());
/// assert!("https://example.com/some/path".parse::<Endpoint>().is_err());
/// ```
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
