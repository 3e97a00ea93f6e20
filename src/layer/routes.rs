//! What a layer protects: a table of routes, each with its scene, the methods it exempts, and
//! optionally its own extractor. A layer for one scene is a table of one route that matches
//! every path.

use std::borrow::Cow;
use std::fmt;

use http::{Method, Request};

use crate::SceneId;
use crate::extract::ParamSource;

/// One protected route: which paths, under which scene, and what it lets through.
///
/// A route protects **every method** of its paths (a gRPC method is reached with any HTTP
/// method) unless it explicitly [exempts](Self::exempt) some. Paths are compared after
/// percent-decoding, resolving `.` and `..`, merging repeated slashes, dropping a trailing
/// slash and ignoring ASCII case, so that `/Login/`, `//login` and `/log%69n` are all
/// `/login`: a variant of a protected path is protected too.
///
/// ```
/// use http::Method;
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::extract::JsonField;
/// use tower_aliyun_captcha::layer::Route;
///
/// let login = Route::exact("/login", SceneId::new("login-scene")?);
/// // The page at GET /signup shows the form; everything else under /signup needs a captcha.
/// let signup = Route::prefix("/signup", SceneId::new("signup-scene")?)
///     .exempt(Method::GET)
///     .extractor(JsonField::default());
/// # let _ = (login, signup);
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Route {
    paths: Paths,
    scene: SceneId,
    exempt: Vec<Method>,
    extractor: Option<ParamSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Paths {
    Every,
    Exact(String),
    Prefix(String),
}

impl Route {
    /// Every request the layer sees: for a layer on one route (`post(h).layer(…)`).
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::{Route, Routes};
    ///
    /// let scene = SceneId::new("login-scene")?;
    /// // What `CaptchaLayer::new(client, scene)` protects:
    /// let everything = Routes::new().route(Route::every_path(scene));
    /// # let _ = everything;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn every_path(scene: SceneId) -> Self {
        Self::with(Paths::Every, scene)
    }

    /// `path` exactly (and its variants, see above). It must start with `/` and hold no
    /// query; the layer's builder refuses it otherwise.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// let route = Route::exact("/demo.Accounts/Signup", SceneId::new("signup-scene")?);
    /// # let _ = route;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn exact(path: impl Into<String>, scene: SceneId) -> Self {
        Self::with(Paths::Exact(path.into()), scene)
    }

    /// `path` and everything below it: `/signup` covers `/signup` and `/signup/email`, not
    /// `/signups`.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// // Every method of a gRPC service.
    /// let route = Route::prefix("/demo.Accounts", SceneId::new("accounts")?);
    /// # let _ = route;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn prefix(path: impl Into<String>, scene: SceneId) -> Self {
        Self::with(Paths::Prefix(path.into()), scene)
    }

    fn with(paths: Paths, scene: SceneId) -> Self {
        Self {
            paths,
            scene,
            exempt: Vec::new(),
            extractor: None,
        }
    }

    /// Lets `method` through unverified, e.g. `OPTIONS` for CORS preflight, or `GET` for the
    /// page that shows a form. Exempting `GET` exempts `HEAD` too (servers answer `HEAD` with
    /// the `GET` handler); `HEAD` cannot be exempted alone. gRPC requests ignore exemptions.
    ///
    /// ```
    /// use http::Method;
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// let route = Route::exact("/login", SceneId::new("login-scene")?).exempt(Method::OPTIONS);
    /// # let _ = route;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn exempt(mut self, method: Method) -> Self {
        self.exempt.push(method);
        self
    }

    /// Takes the param from `extractor` on this route instead of the layer's extractor.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::extract::{GrpcMetadata, Header, JsonField};
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// let rpc = Route::exact("/demo.Accounts/Signup", SceneId::new("signup")?)
    ///     .extractor(GrpcMetadata::default());
    /// let rest = Route::exact("/login", SceneId::new("login")?)
    ///     .extractor(Header::default().or(JsonField::default()));
    /// # let _ = (rpc, rest);
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn extractor(mut self, extractor: impl Into<ParamSource>) -> Self {
        self.extractor = Some(extractor.into());
        self
    }

    /// The scene params on this route are verified against.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// let route = Route::exact("/login", SceneId::new("login-scene")?);
    /// assert_eq!(route.scene().as_str(), "login-scene");
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }
}

/// The routes a layer protects. Requests that match none pass through untouched (their body
/// is not read). When several routes match, the most specific wins: an exact path, else the
/// longest prefix, else the route for every path.
///
/// ```
/// use http::Method;
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::layer::{Route, Routes};
///
/// let routes = Routes::new()
///     .route(Route::exact("/login", SceneId::new("login-scene")?))
///     .route(Route::prefix("/signup", SceneId::new("signup-scene")?).exempt(Method::GET));
/// # let _ = routes;
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// An empty table. A layer needs at least one route.
    ///
    /// ```
    /// use tower_aliyun_captcha::layer::Routes;
    ///
    /// let routes = Routes::new();
    /// # let _ = routes;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
    ///
    /// ```
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::{Route, Routes};
    ///
    /// let routes = Routes::new().route(Route::exact("/login", SceneId::new("login")?));
    /// # let _ = routes;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }
}

impl From<Route> for Routes {
    fn from(route: Route) -> Self {
        Self::new().route(route)
    }
}

impl From<SceneId> for Routes {
    /// Every path, under `scene`.
    fn from(scene: SceneId) -> Self {
        Route::every_path(scene).into()
    }
}

/// A route table the layer's builder refused.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{ConfigError, Route, RouteError};
/// # let verifier = |_r: tower_aliyun_captcha::VerifyRequest| async {
/// #     Err::<tower_aliyun_captcha::Verification, _>(tower_aliyun_captcha::Error::other("x"))
/// # };
///
/// let typo = Route::exact("login", SceneId::new("login-scene")?);
/// let refused = CaptchaLayer::builder(verifier, typo).build().unwrap_err();
/// assert!(matches!(refused, ConfigError::Route(RouteError::Path { .. })));
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The table has no route, so the layer would protect nothing.
    Empty,
    /// A path does not start with `/`, or holds a query or fragment.
    Path {
        /// The path as given.
        path: String,
    },
    /// `HEAD` was exempted while `GET` is not: `HEAD` runs the `GET` handler.
    HeadWithoutGet {
        /// The route's path.
        path: String,
    },
    /// Two routes cover the same paths, so one of them would never apply.
    Duplicate {
        /// The path (after normalisation).
        path: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => {
                f.write_str("the route table is empty, so the layer would protect nothing")
            }
            Self::Path { path } => write!(
                f,
                "route path {path:?} must start with `/` and hold no query or fragment"
            ),
            Self::HeadWithoutGet { path } => write!(
                f,
                "route {path:?} exempts HEAD but not GET; HEAD runs the GET handler, so exempt GET (which covers HEAD) or neither"
            ),
            Self::Duplicate { path } => write!(f, "two routes cover {path:?}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// A validated route: its path normalised once, at build time.
#[derive(Debug)]
pub(crate) struct Entry {
    paths: Paths,
    pub(crate) scene: SceneId,
    exempt: Vec<Method>,
    pub(crate) extractor: Option<ParamSource>,
}

/// The validated table the services of a layer share.
#[derive(Debug)]
pub(crate) struct Table {
    entries: Vec<Entry>,
}

impl Table {
    /// Every path under `scene`: the table of [`CaptchaLayer::new`](super::CaptchaLayer::new).
    pub(crate) fn every_path(scene: SceneId) -> Self {
        Self {
            entries: vec![Entry {
                paths: Paths::Every,
                scene,
                exempt: Vec::new(),
                extractor: None,
            }],
        }
    }

    pub(crate) fn new(routes: Routes) -> Result<Self, RouteError> {
        if routes.routes.is_empty() {
            return Err(RouteError::Empty);
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(routes.routes.len());
        for route in routes.routes {
            let paths = match route.paths {
                Paths::Every => Paths::Every,
                Paths::Exact(path) => Paths::Exact(checked(path)?),
                Paths::Prefix(path) => Paths::Prefix(checked(path)?),
            };
            let shown = || match &paths {
                Paths::Every => "*".to_owned(),
                Paths::Exact(p) | Paths::Prefix(p) => p.clone(),
            };
            if route.exempt.contains(&Method::HEAD) && !route.exempt.contains(&Method::GET) {
                return Err(RouteError::HeadWithoutGet { path: shown() });
            }
            if entries.iter().any(|e| e.paths == paths) {
                return Err(RouteError::Duplicate { path: shown() });
            }
            entries.push(Entry {
                paths,
                scene: route.scene,
                exempt: route.exempt,
                extractor: route.extractor,
            });
        }
        Ok(Self { entries })
    }

    pub(crate) fn entry(&self, index: usize) -> &Entry {
        &self.entries[index]
    }

    /// The route that protects `request`, if any: the most specific match of any of the
    /// request's paths (its URI, and the URI before an outer router stripped a prefix) that
    /// does not exempt its method.
    pub(crate) fn protecting<B>(&self, request: &Request<B>) -> Option<usize> {
        let grpc = is_grpc(request);
        let method = request.method();
        let protects = |index: usize| grpc || !self.entries[index].exempts(method);
        let path = normalise(request.uri().path());
        if let Some(index) = self.best(&path).filter(|&i| protects(i)) {
            return Some(index);
        }
        #[cfg(feature = "axum")]
        if let Some(original) = request.extensions().get::<axum::extract::OriginalUri>() {
            let original = normalise(original.0.path());
            return self.best(&original).filter(|&i| protects(i));
        }
        None
    }

    fn best(&self, path: &str) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None; // (index, rank)
        for (index, entry) in self.entries.iter().enumerate() {
            let rank = match &entry.paths {
                Paths::Every => Some(0),
                Paths::Exact(p) => (p == path).then_some(usize::MAX),
                Paths::Prefix(p) => under(path, p).then_some(1 + p.len()),
            };
            if let Some(rank) = rank
                && best.is_none_or(|(_, r)| rank > r)
            {
                best = Some((index, rank));
            }
        }
        best.map(|(index, _)| index)
    }
}

impl Entry {
    fn exempts(&self, method: &Method) -> bool {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.exempt.contains(method)
    }
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn checked(path: String) -> Result<String, RouteError> {
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return Err(RouteError::Path { path });
    }
    Ok(normalise(&path).into_owned())
}

/// The form paths are compared in: percent-decoded, `.` and `..` resolved, repeated and
/// trailing slashes dropped, ASCII lower case. Matching more variants than the application's
/// router does only protects more.
pub(crate) fn normalise(path: &str) -> Cow<'_, str> {
    let plain = !path.is_empty()
        && path.bytes().all(|b| b != b'%' && !b.is_ascii_uppercase())
        && !path.contains("//")
        && !path.contains("/.")
        && (path.len() <= 1 || !path.ends_with('/'));
    if plain {
        return Cow::Borrowed(path);
    }
    let decoded = percent_decode(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normal = String::with_capacity(decoded.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    normal.make_ascii_lowercase();
    Cow::Owned(normal)
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(name: &str) -> SceneId {
        SceneId::new(name).unwrap()
    }

    fn request(method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    fn scene_for(table: &Table, method: Method, path: &str) -> Option<String> {
        table
            .protecting(&request(method, path))
            .map(|i| table.entry(i).scene.as_str().to_owned())
    }

    #[test]
    fn variants_of_a_path_are_the_path() {
        for (path, normal) in [
            ("/login", "/login"),
            ("/login/", "/login"),
            ("//login", "/login"),
            ("/LOGIN", "/login"),
            ("/log%69n", "/login"),
            ("/log%2Fin", "/log/in"),
            ("/a/../login", "/login"),
            ("/./login/.", "/login"),
            ("/", "/"),
            ("", "/"),
            ("/../..", "/"),
            ("/%", "/%"),
        ] {
            assert_eq!(normalise(path), normal, "{path}");
        }
    }

    #[test]
    fn every_method_is_protected_unless_exempted() {
        let table = Table::new(
            Routes::new()
                .route(Route::exact("/login", scene("login")))
                .route(Route::prefix("/signup", scene("signup")).exempt(Method::GET)),
        )
        .unwrap();
        let post_lower = Method::from_bytes(b"post").unwrap();
        for method in [
            Method::POST,
            Method::GET,
            Method::HEAD,
            Method::PUT,
            post_lower.clone(),
        ] {
            assert_eq!(
                scene_for(&table, method.clone(), "/login").as_deref(),
                Some("login"),
                "{method}"
            );
        }
        assert_eq!(scene_for(&table, Method::GET, "/signup"), None);
        assert_eq!(scene_for(&table, Method::HEAD, "/signup/email"), None);
        assert_eq!(
            scene_for(&table, Method::POST, "/signup/email").as_deref(),
            Some("signup")
        );
        assert_eq!(
            scene_for(&table, post_lower, "/signup").as_deref(),
            Some("signup")
        );
        assert_eq!(scene_for(&table, Method::POST, "/signups"), None);
        assert_eq!(
            scene_for(&table, Method::POST, "/Login/").as_deref(),
            Some("login")
        );
    }

    #[test]
    fn grpc_requests_ignore_exemptions() {
        let table = Table::new(
            Route::exact("/demo.A/B", scene("s"))
                .exempt(Method::GET)
                .into(),
        )
        .unwrap();
        let mut grpc = request(Method::GET, "/demo.A/B");
        grpc.headers_mut().insert(
            http::header::CONTENT_TYPE,
            "application/grpc+proto".parse().unwrap(),
        );
        assert_eq!(table.protecting(&grpc), Some(0));
        assert_eq!(table.protecting(&request(Method::GET, "/demo.A/B")), None);
    }

    #[test]
    fn the_most_specific_route_wins() {
        let table = Table::new(
            Routes::new()
                .route(Route::every_path(scene("all")))
                .route(Route::prefix("/api", scene("api")))
                .route(Route::prefix("/api/login", scene("login")).exempt(Method::OPTIONS))
                .route(Route::exact("/api/login/sms", scene("sms"))),
        )
        .unwrap();
        assert_eq!(
            scene_for(&table, Method::POST, "/other").as_deref(),
            Some("all")
        );
        assert_eq!(
            scene_for(&table, Method::POST, "/api/x").as_deref(),
            Some("api")
        );
        assert_eq!(
            scene_for(&table, Method::POST, "/api/login/x").as_deref(),
            Some("login")
        );
        assert_eq!(scene_for(&table, Method::OPTIONS, "/api/login/x"), None);
        assert_eq!(
            scene_for(&table, Method::POST, "/api/login/sms").as_deref(),
            Some("sms")
        );
    }

    #[test]
    fn mistakes_are_refused() {
        let refused = |routes: Routes| Table::new(routes).unwrap_err();
        assert_eq!(refused(Routes::new()), RouteError::Empty);
        for path in ["login", "", "/login?x=1", "/login#top"] {
            assert!(
                matches!(
                    refused(Route::exact(path, scene("s")).into()),
                    RouteError::Path { .. }
                ),
                "{path}"
            );
        }
        assert!(matches!(
            refused(Route::exact("/a", scene("s")).exempt(Method::HEAD).into()),
            RouteError::HeadWithoutGet { .. }
        ));
        assert!(matches!(
            refused(
                Routes::new()
                    .route(Route::exact("/a", scene("s")))
                    .route(Route::exact("/A/", scene("t")))
            ),
            RouteError::Duplicate { .. }
        ));
        assert!(
            Table::new(
                Route::exact("/a", scene("s"))
                    .exempt(Method::GET)
                    .exempt(Method::HEAD)
                    .into()
            )
            .is_ok()
        );
    }
}
