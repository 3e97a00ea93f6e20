//! Who may use the emulator's own API (`/emulator/params`, `/emulator/faults`,
//! `/emulator/stats`, `/emulator/credentials`): requests addressed to the emulator itself (their
//! `Host`), from no page or from a page it was told about (their `Origin`).
//!
//! Without these checks any web page the developer visits could mint passing params or switch
//! the "every param passes" fault on: a browser sends a simple cross-origin `POST` even when it
//! may not read the answer, and DNS rebinding makes a hostile name resolve to the emulator. A
//! page sets neither `Host` nor `Origin`, and a rebound name is not one the emulator knows.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::Authority;

/// Why a request may not use the emulator's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its `Host` names something other than the emulator (DNS rebinding, or a proxy).
    UnknownHost,
    /// It comes from a page whose origin the emulator was not told about.
    OriginNotAllowed(String),
}

/// An origin whose pages may call the emulator's API, normalised as browsers send it:
/// `scheme://host[:port]`, lowercase, without a default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin(String);

/// A host name (and port, when given) the emulator also answers its API for, besides its own
/// address and `localhost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedHost {
    name: String,
    /// `None`: any port (behind a port mapping the port differs from the listener's).
    port: Option<u16>,
}

/// An origin or host given to allow is not one.
///
/// ```
/// use aliyun_captcha_emulator::Emulator;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let emulator = Emulator::builder().access_key("id", "secret").start("127.0.0.1:0").await?;
/// assert!(emulator.allow_origin("http://localhost:3000").is_ok());
/// let refused = emulator.allow_origin("localhost:3000").unwrap_err();
/// assert!(refused.to_string().contains("http://HOST[:PORT]"));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin {
    given: String,
}

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an origin: use http://HOST[:PORT] or https://HOST[:PORT], as the page's \
             address bar shows it, without a path",
            self.given
        )
    }
}

impl std::error::Error for InvalidOrigin {}

impl Origin {
    pub(crate) fn parse(text: &str) -> Result<Self, InvalidOrigin> {
        let invalid = || InvalidOrigin {
            given: text.to_owned(),
        };
        let uri: http::Uri = text.trim().parse().map_err(|_| invalid())?;
        let scheme = uri.scheme_str().ok_or_else(invalid)?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(invalid()),
        };
        let authority = uri.authority().ok_or_else(invalid)?;
        let bare_path = matches!(uri.path(), "" | "/");
        if !bare_path || uri.query().is_some() || authority.as_str().contains('@') {
            return Err(invalid());
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid());
        }
        Ok(Self(match authority.port_u16() {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        }))
    }
}

impl AllowedHost {
    /// `name` or `name:port`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let authority: Authority = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a host name: use HOST or HOST:PORT"))?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(format!(
                "{text:?} is not a host name: use HOST or HOST:PORT"
            ));
        }
        Ok(Self {
            name: unbracketed(authority.host()).to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

/// What the checks need to know about the emulator.
pub(crate) struct Site<'a> {
    /// The address it listens on.
    pub(crate) listen: SocketAddr,
    /// The address the request's connection arrived on: the one a client names when the
    /// emulator listens on every interface.
    pub(crate) local: SocketAddr,
    pub(crate) hosts: &'a [AllowedHost],
    pub(crate) origins: &'a [Origin],
}

/// Admits a request to the emulator's API, with the origin to answer CORS headers for when it
/// comes from an allowed page.
pub(crate) fn admit(parts: &Parts, site: &Site<'_>) -> Result<Option<HeaderValue>, Refusal> {
    // One of each, or the check below reads one and a proxy or framework another.
    if parts.headers.get_all(header::HOST).iter().count() > 1 {
        return Err(Refusal::UnknownHost);
    }
    if parts.headers.get_all(header::ORIGIN).iter().count() > 1 {
        return Err(Refusal::OriginNotAllowed(
            "(more than one Origin)".to_owned(),
        ));
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .filter(|host| is_own_host(host, site))
        .ok_or(Refusal::UnknownHost)?;
    // An absolute request target names the server too (HTTP/2's :authority is also the Host).
    if parts
        .uri
        .authority()
        .is_some_and(|authority| !is_own_host(authority, site))
    {
        return Err(Refusal::UnknownHost);
    }
    let Some(sent) = parts.headers.get(header::ORIGIN) else {
        // Not from a page (curl, a test, a back end), or a same-origin GET.
        return Ok(None);
    };
    let text = sent.to_str().unwrap_or_default();
    // Its own origin is allowed too: no page of another origin can claim it.
    let own = Origin::parse(&format!("http://{}", host.as_str())).ok();
    let allowed = Origin::parse(text)
        .is_ok_and(|origin| site.origins.contains(&origin) || Some(&origin) == own.as_ref());
    if allowed {
        Ok(Some(sent.clone()))
    } else {
        Err(Refusal::OriginNotAllowed(text.to_owned()))
    }
}

fn unbracketed(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether `host` names the emulator: its own address, `localhost` on its port (any loopback
/// address for a loopback listener), or a host it was told about.
fn is_own_host(host: &Authority, site: &Site<'_>) -> bool {
    if host.as_str().contains('@') {
        return false;
    }
    let name = unbracketed(host.host()).to_ascii_lowercase();
    let port = host.port_u16().unwrap_or(80);
    if site
        .hosts
        .iter()
        .any(|allowed| allowed.name == name && allowed.port.is_none_or(|p| p == port))
    {
        return true;
    }
    if port != site.listen.port() {
        return false;
    }
    if name == "localhost" {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| {
        let ip = ip.to_canonical();
        ip == site.listen.ip().to_canonical()
            || ip == site.local.ip().to_canonical()
            || (ip.is_loopback() && site.listen.ip().is_loopback())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: Option<&str>, origin: Option<&str>) -> Parts {
        let mut request = http::Request::post("/emulator/params");
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn site<'a>(listen: &str, local: &str, origins: &'a [Origin]) -> Site<'a> {
        Site {
            listen: listen.parse().unwrap(),
            local: local.parse().unwrap(),
            hosts: &[],
            origins,
        }
    }

    #[test]
    fn a_second_host_or_origin_is_refused() {
        let origins = [Origin::parse("http://127.0.0.1:3000").unwrap()];
        let loopback = site("127.0.0.1:8787", "127.0.0.1:8787", &origins);
        let mut two_hosts = parts(Some("127.0.0.1:8787"), None);
        two_hosts
            .headers
            .append(header::HOST, HeaderValue::from_static("evil.example"));
        assert_eq!(admit(&two_hosts, &loopback), Err(Refusal::UnknownHost));
        let mut two_origins = parts(Some("127.0.0.1:8787"), Some("http://127.0.0.1:3000"));
        two_origins.headers.append(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(admit(&two_origins, &loopback).is_err());
        // One of each still passes.
        let honest = parts(Some("127.0.0.1:8787"), Some("http://127.0.0.1:3000"));
        assert!(admit(&honest, &loopback).is_ok());
    }

    #[test]
    fn hosts_must_name_the_emulator() {
        let loopback = site("127.0.0.1:8787", "127.0.0.1:8787", &[]);
        for host in [
            "127.0.0.1:8787",
            "localhost:8787",
            "LOCALHOST:8787",
            "[::1]:8787",
        ] {
            assert_eq!(
                admit(&parts(Some(host), None), &loopback),
                Ok(None),
                "{host}"
            );
        }
        for host in [
            "evil.example:8787",
            "localhost:8788",
            "localhost",
            "127.0.0.1",
            "192.168.1.5:8787",
            "user@localhost:8787",
            "",
        ] {
            assert_eq!(
                admit(&parts(Some(host), None), &loopback),
                Err(Refusal::UnknownHost),
                "{host}"
            );
        }
        assert_eq!(
            admit(&parts(None, None), &loopback),
            Err(Refusal::UnknownHost)
        );
        let mut absolute = parts(Some("127.0.0.1:8787"), None);
        absolute.uri = "http://evil.example:8787/emulator/params".parse().unwrap();
        assert_eq!(admit(&absolute, &loopback), Err(Refusal::UnknownHost));
        absolute.uri = "http://localhost:8787/emulator/params".parse().unwrap();
        assert_eq!(admit(&absolute, &loopback), Ok(None));

        // On every interface: the address the connection came in on, and localhost.
        let everywhere = site("0.0.0.0:8787", "192.168.1.5:8787", &[]);
        for host in ["192.168.1.5:8787", "localhost:8787"] {
            assert_eq!(
                admit(&parts(Some(host), None), &everywhere),
                Ok(None),
                "{host}"
            );
        }
        for host in ["192.168.1.6:8787", "emulator:8787", "127.0.0.1:8787"] {
            assert!(
                admit(&parts(Some(host), None), &everywhere).is_err(),
                "{host}"
            );
        }
        // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6 addresses.
        let mapped = site("[::]:8787", "[::ffff:10.0.0.2]:8787", &[]);
        assert!(admit(&parts(Some("10.0.0.2:8787"), None), &mapped).is_ok());

        // Names given to allow: any port without one, that port with one.
        let hosts = [
            AllowedHost::parse("Emulator").unwrap(),
            AllowedHost::parse("localhost:9000").unwrap(),
        ];
        let named = Site {
            hosts: &hosts,
            ..site("0.0.0.0:8787", "172.17.0.2:8787", &[])
        };
        for host in ["emulator:8787", "emulator:1", "emulator", "localhost:9000"] {
            assert!(admit(&parts(Some(host), None), &named).is_ok(), "{host}");
        }
        assert!(admit(&parts(Some("localhost:9001"), None), &named).is_err());
        assert!(AllowedHost::parse("a/b").is_err());
        assert!(AllowedHost::parse("").is_err());
    }

    #[test]
    fn origins_must_be_allowed() {
        let origins = [
            Origin::parse("http://127.0.0.1:3000").unwrap(),
            Origin::parse("HTTP://LocalHost:3000/").unwrap(),
            Origin::parse("https://app.example:443").unwrap(),
        ];
        let site = site("127.0.0.1:8787", "127.0.0.1:8787", &origins);
        let host = Some("127.0.0.1:8787");
        for origin in [
            "http://127.0.0.1:3000",
            "http://localhost:3000",
            "https://app.example",
            // The emulator's own origin.
            "http://127.0.0.1:8787",
        ] {
            assert_eq!(
                admit(&parts(host, Some(origin)), &site),
                Ok(Some(HeaderValue::from_str(origin).unwrap())),
                "{origin}"
            );
        }
        for origin in [
            "http://127.0.0.1:3001",
            "https://127.0.0.1:3000",
            "http://evil.example",
            "null",
            "",
            "http://localhost:8787",
        ] {
            assert_eq!(
                admit(&parts(host, Some(origin)), &site),
                Err(Refusal::OriginNotAllowed(origin.into())),
                "{origin}"
            );
        }
        // The host is checked first: an allowed page cannot reach a rebound name.
        assert_eq!(
            admit(
                &parts(Some("evil.example:8787"), Some("http://127.0.0.1:3000")),
                &site
            ),
            Err(Refusal::UnknownHost)
        );
    }

    #[test]
    fn origins_are_normalised_and_validated() {
        assert_eq!(
            Origin::parse("http://LOCALHOST:80/").unwrap(),
            Origin("http://localhost".into())
        );
        assert_eq!(
            Origin::parse("https://[::1]:8443").unwrap(),
            Origin("https://[::1]:8443".into())
        );
        for bad in [
            "localhost:3000",
            "ftp://example.com",
            "http://example.com/login",
            "http://example.com?x=1",
            "http://user@example.com",
            "null",
            "",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
