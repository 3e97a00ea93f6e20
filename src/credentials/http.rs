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

use crate::client::{Proxy, TlsRoots};
use crate::client::{ProxyConnector, connector_builder};

/// The largest answer read: credentials are a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

pub(crate) struct Http {
    client: HyperClient<HttpsConnector<ProxyConnector>, Full<Bytes>>,
}

/// What a credentials endpoint answered.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Http {
    /// A client that goes through `proxy` (the metadata service is reached with
    /// [`Proxy::none`]: it is on the instance's own link).
    pub(crate) fn new(proxy: &Proxy, connect_timeout: Duration) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        let https = connector_builder(TlsRoots::default())
            .or_else(|_| connector_builder(TlsRoots::custom(rustls::RootCertStore::empty())))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector::new(http, proxy.matcher()?));
        Ok(Self {
            client: HyperClient::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Sends `request` and reads the answer, all within `timeout`.
    pub(crate) async fn send(
        &self,
        request: Request<Bytes>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        // Only the origin goes into errors: a URL may carry a secret in its user part or query.
        let uri = origin(request.uri());
        let call = async {
            let response = self
                .client
                .request(request.map(Full::new))
                .await
                .map_err(|e| format!("{uri}: {e}"))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("{uri}: reading the answer: {e}"))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{uri}: no answer within {} s",
                    timeout.as_secs_f32()
                ))
            })
    }
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
