//! A table of protected routes, for one layer in front of a whole app.

use http::Method;

use crate::SceneId;

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
/// assert_eq!(routes.scene_for(&Method::POST, "/signup/email"), Some(&signup));
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
        });
        self
    }

    /// The scene that protects `method path`, if any.
    pub fn scene_for(&self, method: &Method, path: &str) -> Option<&SceneId> {
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
        best.map(|e| &e.scene)
    }

    /// Whether nothing is protected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
