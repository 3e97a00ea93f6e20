//! The few HTTP calls credential sources make (STS, the metadata service, a credentials URI):
//! one request, a whole-call timeout, a capped answer.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::client::{Proxy, Tls};
use crate::client::{ProxyConnector, connector_builder};

use super::CredentialsError;

/// The largest answer read: credentials are a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;
/// How long a connection may take to open; each call is bounded as a whole by its own timeout
/// too (a second for the metadata service).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client credential sources share: made once, with a pool through the configured proxy
/// and one that connects directly (the metadata service is on the instance's own link).
pub(crate) struct Http {
    proxied: Pool,
    direct: Pool,
}

type Pool = HyperClient<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// What a credentials endpoint answered.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// How a request goes out.
#[derive(Clone, Copy)]
pub(crate) enum Route {
    /// Through the configured proxy, if any.
    Proxied,
    /// Straight to the host.
    Direct,
}

impl Http {
    /// A client whose proxied requests go through `proxy`.
    pub(crate) fn new(proxy: &Proxy) -> Result<Self, String> {
        Ok(Self {
            proxied: pool(proxy.matcher()?)?,
            direct: pool(None)?,
        })
    }

    /// Sends `request` and reads the answer, all within `timeout`.
    pub(crate) async fn send(
        &self,
        route: Route,
        request: Request<Bytes>,
        timeout: Duration,
    ) -> Result<Answer, CredentialsError> {
        let client = match route {
            Route::Proxied => &self.proxied,
            Route::Direct => &self.direct,
        };
        // Only the origin goes into errors: a URL may carry a secret in its user part or query.
        let uri = origin(request.uri());
        let call = async {
            let response = client
                .request(request.map(Full::new))
                .await
                .map_err(|e| CredentialsError::failed(uri.clone(), e))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CredentialsError::failed(format!("{uri}: reading the answer"), e))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(CredentialsError::Provider(format!(
                    "{uri}: no answer within {} s",
                    timeout.as_secs_f32()
                )))
            })
    }
}

/// A pool over `proxies` (none: direct).
fn pool(proxies: Option<crate::client::proxy::Proxies>) -> Result<Pool, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = connector_builder(Tls::default())
        .or_else(|_| connector_builder(Tls::roots(rustls::RootCertStore::empty())))
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(ProxyConnector::new(http, proxies));
    Ok(HyperClient::builder(TokioExecutor::new()).build(https))
}

/// `scheme://host[:port]` of `uri`, without what may be secret (user, path, query).
pub(crate) fn origin(uri: &http::Uri) -> String {
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return "<a URL without scheme or host>".to_owned();
    };
    match authority.port_u16() {
        Some(port) => format!("{scheme}://{}:{port}", authority.host()),
        None => format!("{scheme}://{}", authority.host()),
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins_leave_out_users_paths_and_queries() {
        let uri: http::Uri = "http://user:pw@creds.internal:8080/a/secret?token=s3cr3t"
            .parse()
            .unwrap();
        assert_eq!(origin(&uri), "http://creds.internal:8080");
        let uri: http::Uri = "https://sts.aliyuncs.com".parse().unwrap();
        assert_eq!(origin(&uri), "https://sts.aliyuncs.com");
        let uri: http::Uri = "/relative?token=s3cr3t".parse().unwrap();
        assert!(!origin(&uri).contains("s3cr3t"));
    }
}
