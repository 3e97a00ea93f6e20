//! A table of protected routes, for one layer in front of a whole app.

use http::Method;

use crate::SceneId;
use crate::extract::ParamSource;

/// Which requests need a captcha, and with which scene. Requests that match no entry pass
/// through untouched (their body is not read).
///
/// An exact path matches only itself; a prefix matches itself and everything below it
/// (`/signup` matches `/signup` and `/signup/email`, not `/signups`). The most specific entry
/// wins: an exact match, else the longest prefix.
///
/// ```
/// use http::Method;
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::layer::Routes;
///
/// let login = SceneId::new("login-scene").unwrap();
/// let signup = SceneId::new("signup-scene").unwrap();
/// let routes = Routes::new()
///     .exact(Method::POST, "/login", login.clone())
///     .prefix(Method::POST, "/signup", signup.clone());
/// assert_eq!(routes.scene_for(&Method::POST, "/login"), Some(&login));
/// assert_eq!(
///     routes.scene_for(&Method::POST, "/signup/email"),
///     Some(&signup)
/// );
/// assert_eq!(routes.scene_for(&Method::GET, "/login"), None);
/// assert_eq!(routes.scene_for(&Method::POST, "/signups"), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Routes {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    method: Option<Method>,
    path: String,
    prefix: bool,
    scene: SceneId,
    source: Option<ParamSource>,
}

/// What protects a route: its scene, and the extractor it names (else the layer's).
#[derive(Debug, Clone, Copy)]
pub struct Protection<'a> {
    /// The scene.
    pub scene: &'a SceneId,
    /// Where the param comes from on this route, when not from the layer's extractor.
    pub source: Option<&'a ParamSource>,
}

impl Routes {
    /// An empty table: nothing protected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Protects `method path` exactly.
    pub fn exact(self, method: Method, path: impl Into<String>, scene: SceneId) -> Self {
        self.push(Some(method), path.into(), false, scene)
    }

    /// Protects `method` on `path` and everything below it.
    pub fn prefix(self, method: Method, path: impl Into<String>, scene: SceneId) -> Self {
        self.push(Some(method), path.into(), true, scene)
    }

    /// Protects every method on `path` exactly.
    pub fn exact_any_method(self, path: impl Into<String>, scene: SceneId) -> Self {
        self.push(None, path.into(), false, scene)
    }

    /// Protects every method on `path` and everything below it.
    pub fn prefix_any_method(self, path: impl Into<String>, scene: SceneId) -> Self {
        self.push(None, path.into(), true, scene)
    }

    fn push(mut self, method: Option<Method>, path: String, prefix: bool, scene: SceneId) -> Self {
        let path = if prefix && path.len() > 1 {
            path.trim_end_matches('/').to_owned()
        } else {
            path
        };
        self.entries.push(Entry {
            method,
            path,
            prefix,
            scene,
            source: None,
        });
        self
    }

    /// Takes the param of the route added last from `source` instead of the layer's
    /// extractor.
    ///
    /// ```
    /// use http::Method;
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::extract::{GrpcMetadata, JsonField, ParamSource};
    /// use tower_aliyun_captcha::layer::Routes;
    ///
    /// let routes = Routes::new()
    ///     .exact(Method::POST, "/login", SceneId::new("login-scene").unwrap())
    ///     .using(ParamSource::Json(JsonField::default()))
    ///     .exact(
    ///         Method::POST,
    ///         "/demo.Accounts/Signup",
    ///         SceneId::new("signup-scene").unwrap(),
    ///     )
    ///     .using(ParamSource::Grpc(GrpcMetadata::default()));
    /// let login = routes.protection(&Method::POST, "/login").unwrap();
    /// assert!(matches!(login.source, Some(ParamSource::Json(_))));
    /// ```
    pub fn using(mut self, source: ParamSource) -> Self {
        if let Some(last) = self.entries.last_mut() {
            last.source = Some(source);
        }
        self
    }

    /// The scene that protects `method path`, if any.
    pub fn scene_for(&self, method: &Method, path: &str) -> Option<&SceneId> {
        self.protection(method, path).map(|p| p.scene)
    }

    /// The scene and extractor that protect `method path`, if any.
    pub fn protection(&self, method: &Method, path: &str) -> Option<Protection<'_>> {
        let candidates = self
            .entries
            .iter()
            .filter(|e| e.method.as_ref().is_none_or(|m| m == method));
        let mut best: Option<&Entry> = None;
        for entry in candidates {
            let matches = if entry.prefix {
                path == entry.path
                    || entry.path == "/"
                    || path
                        .strip_prefix(entry.path.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            } else {
                path == entry.path
            };
            if !matches {
                continue;
            }
            let better = match best {
                None => true,
                Some(current) => {
                    (!entry.prefix && current.prefix)
                        || (entry.prefix == current.prefix && entry.path.len() > current.path.len())
                }
            };
            if better {
                best = Some(entry);
            }
        }
        best.map(|e| Protection {
            scene: &e.scene,
            source: e.source.as_ref(),
        })
    }

    /// Whether nothing is protected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
