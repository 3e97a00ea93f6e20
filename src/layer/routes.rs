//! What a layer protects: a table of routes, each with its scene, the methods it exempts, and
//! optionally its own extractor. A layer for one scene is a table of one route that matches
//! every path.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use http::{Method, Request};

use super::Requirement;
use crate::SceneId;
use crate::extract::{ContentKind, ParamSource};

/// One protected route: which paths, under which scene, and what it lets through.
///
/// A route protects **every method** of its paths (a gRPC method is reached with any HTTP
/// method) unless it explicitly [exempts](Self::exempt) some. A prefix route's exemptions
/// hold for the prefix itself (`/signup` or `/signup/`), not the paths below it, unless it
/// names them with
/// [`exempt_throughout`](Self::exempt_throughout). Paths are compared after
/// percent-decoding, resolving `.` and `..`, merging repeated slashes, dropping a trailing
/// slash and ignoring ASCII case, so that `/Login/`, `//login` and `/log%69n` are all
/// `/login`: a variant of a protected path is protected too. They are also compared as sent
/// with the paths as written, as your router compares them: write each path as the router
/// does (`/resetPassword`), and a path that reads as two routes' asks for the stricter, or
/// under two scenes is refused.
///
/// ```
/// use http::Method;
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::extract::JsonField;
/// use tower_aliyun_captcha::layer::Route;
///
/// let login = Route::exact("/login", SceneId::new("login-scene")?);
/// // The page at GET /signup shows the form; everything else under /signup (GET /signup/email
/// // too) needs a captcha.
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
    pub(crate) scene: SceneId,
    exempt: Vec<Method>,
    exempt_throughout: Vec<Method>,
    pub(crate) extractor: Option<ParamSource>,
    pub(crate) requirement: Requirement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Paths {
    Every,
    Exact(String),
    Prefix(String),
}

impl Route {
    /// Every request the layer sees: for a layer on one route (`post(h).layer(…)`).
    pub fn every_path(scene: SceneId) -> Self {
        Self::with(Paths::Every, scene)
    }

    /// `path` exactly (and its variants, see above). It must start with `/` and hold no
    /// query; the layer's builder refuses it otherwise.
    pub fn exact(path: impl Into<String>, scene: SceneId) -> Self {
        Self::with(Paths::Exact(path.into()), scene)
    }

    /// `path` and everything below it: `/signup` covers `/signup` and `/signup/email`, not
    /// `/signups`.
    pub fn prefix(path: impl Into<String>, scene: SceneId) -> Self {
        Self::with(Paths::Prefix(path.into()), scene)
    }

    fn with(paths: Paths, scene: SceneId) -> Self {
        Self {
            paths,
            scene,
            exempt: Vec::new(),
            exempt_throughout: Vec::new(),
            extractor: None,
            requirement: Requirement::Always,
        }
    }

    /// Lets `method` through unverified on this route's own path, e.g. `GET` for the page
    /// that shows a form. On a prefix route that is the prefix itself (`/signup`), not the
    /// paths below it (`/signup/email`), so that a handler below it that answers every
    /// method (axum's `any`) stays protected; [`exempt_throughout`](Self::exempt_throughout)
    /// reaches below. On the route for every path, it is every request. Exempting `GET`
    /// exempts `HEAD` too (servers answer `HEAD` with the `GET` handler); `HEAD` cannot be
    /// exempted alone. A request that carries a body, or says it is gRPC, takes no exemption:
    /// a page's `GET` has none, while tonic serves a method whatever the HTTP method and
    /// content type, and a call's message is its body.
    ///
    /// ```
    /// use http::Method;
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// // GET /signup is the form; GET /signup/email needs a captcha like every other method.
    /// let route = Route::prefix("/signup", SceneId::new("signup-scene")?).exempt(Method::GET);
    /// # let _ = route;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn exempt(mut self, method: Method) -> Self {
        self.exempt.push(method);
        self
    }

    /// Lets `method` through unverified on a prefix route's path **and every path below
    /// it**, e.g. `OPTIONS` for CORS preflight throughout an API. On an exact route, or the
    /// route for every path, it is the same as [`exempt`](Self::exempt). `GET` and `HEAD`
    /// go together as there: exempting `GET` throughout exempts `HEAD` throughout, and
    /// `HEAD` cannot be exempted throughout without `GET`.
    ///
    /// ```
    /// use http::Method;
    /// use tower_aliyun_captcha::SceneId;
    /// use tower_aliyun_captcha::layer::Route;
    ///
    /// let route = Route::prefix("/api", SceneId::new("api-scene")?)
    ///     .exempt_throughout(Method::OPTIONS);
    /// # let _ = route;
    /// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
    /// ```
    pub fn exempt_throughout(mut self, method: Method) -> Self {
        self.exempt_throughout.push(method);
        self
    }

    /// Takes the param from `extractor` on this route instead of the layer's extractor.
    pub fn extractor(mut self, extractor: impl Into<ParamSource>) -> Self {
        self.extractor = Some(extractor.into());
        self
    }

    /// When requests on this route need a captcha: [`Requirement::Always`] (the default),
    /// only when they look risky, or never (monitor mode, for rolling out).
    pub fn requirement(mut self, requirement: Requirement) -> Self {
        self.requirement = requirement;
        self
    }

    /// The scene params on this route are verified against.
    pub fn scene(&self) -> &SceneId {
        &self.scene
    }
}

/// The routes a layer protects. Requests that match none pass through untouched (their body
/// is not read). When several routes match a path, the most specific wins: an exact path,
/// else the longest prefix, else the route for every path.
///
/// **Behind axum's `Router::nest`**, a layer inside the nested router sees each request
/// under two paths: the one it came with (`/admin/login`, axum's `OriginalUri`) and the one
/// the nested router sees (`/login`). A route may be written as either. The route for the
/// full path decides the scene; the nested path's route decides only when the full path
/// matches no route, or only the route for every path (or a prefix of `/`), which is a
/// fallback rather than a path. When both paths match routes of their own, the table could
/// mean either. The full path's route still decides unless the nested path's asks more:
/// then under one scene the stricter requirement holds (a monitored `/v1` prefix never opens
/// an `Always` `/login` behind a nest at `/v1`), and under two the request is refused (400
/// `ambiguous_path`). Two `WhenRisky` routes count apart, with limits that cannot be weighed:
/// the full path's route holds, with the captcha required. A request goes through unverified only
/// when the routes for both of its paths let its method through: which path decides never
/// opens a door.
///
/// So that this choice never changes a request's scene, a table is refused
/// ([`RouteError::NestedSceneConflict`]) when two routes under different scenes could match
/// one request this way: the first route's path, less one or more of its leading segments,
/// meets the second's. `/admin/login` and `/login` conflict (in a router nested at
/// `/admin`), as do the prefix `/admin/users` and `/users/new`, or `/a/b/c` and the prefix
/// `/b`. `/login` and `/signup`, or the prefix `/api` and `/api/login`, do not; routes under
/// one scene never conflict, nor does the route for every path. A prefix that covers the
/// nest itself is read as a full path: in a router nested at `/admin`, the prefix `/admin`
/// decides `/admin/login` over `/login`.
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
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
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

/// A route table the layer's builder refused.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{BuildError, Route, RouteError};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let typo = Route::exact("login", SceneId::new("login-scene")?);
/// let refused = CaptchaLayer::builder(verifier, typo).build().unwrap_err();
/// assert!(matches!(refused, BuildError::Route(RouteError::Path { .. })));
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
    /// Two routes under different scenes could match one request behind `Router::nest`:
    /// one by the request's full path, the other by the path the nested router sees.
    NestedSceneConflict {
        /// The route that would match the full path, e.g. `/admin/login`.
        full: String,
        /// Its scene.
        full_scene: SceneId,
        /// The route that would match the nested router's path, e.g. `/login`.
        nested: String,
        /// Its scene.
        nested_scene: SceneId,
        /// Where the router would be nested, e.g. `/admin`.
        nest: String,
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
            Self::NestedSceneConflict {
                full,
                full_scene,
                nested,
                nested_scene,
                nest,
            } => write!(
                f,
                "routes {full:?} (scene {:?}) and {nested:?} (scene {:?}) could match one request under two scenes: in a router nested at {nest:?}, {full:?} matches its full path and {nested:?} the path the router sees; give them one scene, or protect one of them with a layer of its own",
                full_scene.as_str(),
                nested_scene.as_str(),
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// What the table says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protection {
    /// No route protects it: straight to the inner service.
    Unprotected,
    /// This route protects it.
    Route(RouteId),
    /// Its raw path and its normalised path fall under routes of two scenes (`/signup/..%2Flogin`,
    /// `/Login` beside a catch-all), or behind a nest its two paths under routes of two scenes
    /// that ask differently: refused.
    Ambiguous,
}

/// A route of the table, as it protects one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouteId {
    index: usize,
    /// The captcha is required whatever the route asks: the request's two readings fall under
    /// two `WhenRisky` routes, whose counts and limits cannot be weighed against each other.
    required: bool,
}

impl RouteId {
    fn of(index: usize) -> Self {
        Self {
            index,
            required: false,
        }
    }

    /// Whether the captcha is required because two `WhenRisky` routes protect the request.
    pub(crate) fn required_by_two_risks(self) -> bool {
        self.required
    }
}

/// How a request's path is compared with the table's.
#[derive(Debug, Clone, Copy)]
enum Reading {
    /// Normalised, with the paths normalised.
    Normalised,
    /// As sent, with the paths as written: as the application's router compares them.
    AsSent,
}

/// The validated table the services of a layer share.
#[derive(Debug)]
pub(crate) struct Table {
    /// Validated: paths normalised once, at build time.
    routes: Vec<Route>,
    /// Each route's paths as written, for a path as sent.
    written: Vec<Paths>,
    /// The same routes asking for the captcha `Always` (see [`RouteId`]).
    required: Vec<Route>,
}

impl Table {
    /// Every path under `scene`: the table of [`CaptchaLayer::new`](super::CaptchaLayer::new).
    pub(crate) fn every_path(scene: SceneId) -> Self {
        Self::of(vec![Route::every_path(scene)], vec![Paths::Every])
    }

    fn of(routes: Vec<Route>, written: Vec<Paths>) -> Self {
        let required = routes
            .iter()
            .map(|route| Route {
                requirement: Requirement::Always,
                ..route.clone()
            })
            .collect();
        Self {
            routes,
            written,
            required,
        }
    }

    pub(crate) fn new(routes: Routes) -> Result<Self, RouteError> {
        if routes.routes.is_empty() {
            return Err(RouteError::Empty);
        }
        let mut checked_routes: Vec<Route> = Vec::with_capacity(routes.routes.len());
        let mut written = Vec::with_capacity(routes.routes.len());
        for route in routes.routes {
            // A prefix's trailing slash says nothing: paths below it match either way.
            written.push(match &route.paths {
                Paths::Prefix(p) => match p.trim_end_matches('/') {
                    "" => Paths::Prefix("/".to_owned()),
                    trimmed => Paths::Prefix(trimmed.to_owned()),
                },
                paths => paths.clone(),
            });
            let paths = match route.paths {
                Paths::Every => Paths::Every,
                Paths::Exact(path) => Paths::Exact(checked(path)?),
                Paths::Prefix(path) => Paths::Prefix(checked(path)?),
            };
            // Below a prefix only `exempt_throughout` holds; on its path both do.
            let head_alone = |exempt: &[Method]| {
                exempt.contains(&Method::HEAD) && !exempt.contains(&Method::GET)
            };
            let on_path = [&route.exempt[..], &route.exempt_throughout[..]].concat();
            if head_alone(&on_path) || head_alone(&route.exempt_throughout) {
                return Err(RouteError::HeadWithoutGet {
                    path: paths.shown(),
                });
            }
            // A prefix of `/` covers every path, like the route for every path.
            if checked_routes
                .iter()
                .any(|e| e.paths == paths || e.paths.is_fallback() && paths.is_fallback())
            {
                return Err(RouteError::Duplicate {
                    path: paths.shown(),
                });
            }
            for other in checked_routes.iter().filter(|e| e.scene != route.scene) {
                for (full, full_scene, nested, nested_scene) in [
                    (&paths, &route.scene, &other.paths, &other.scene),
                    (&other.paths, &other.scene, &paths, &route.scene),
                ] {
                    if let Some(nest) = nest_sharing_a_request(full, nested) {
                        return Err(RouteError::NestedSceneConflict {
                            full: full.shown(),
                            full_scene: full_scene.clone(),
                            nested: nested.shown(),
                            nested_scene: nested_scene.clone(),
                            nest,
                        });
                    }
                }
            }
            checked_routes.push(Route { paths, ..route });
        }
        Ok(Self::of(checked_routes, written))
    }

    pub(crate) fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub(crate) fn route(&self, id: RouteId) -> &Route {
        if id.required {
            &self.required[id.index]
        } else {
            &self.routes[id.index]
        }
    }

    /// The route that protects `request`, if any (see `resolve`): by its path, and with axum
    /// by the path before an outer router stripped a prefix.
    /// What protects `request`; `has_body` when it carries a body (or may).
    pub(crate) fn protecting<B>(&self, request: &Request<B>, has_body: bool) -> Protection {
        #[cfg(feature = "axum")]
        let original = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map(|original| original.0.path());
        #[cfg(not(feature = "axum"))]
        let original: Option<&str> = None;
        // Exemptions are for a page's GET (no body); a gRPC call always has one.
        let grpc = ContentKind::of(request.headers()) == ContentKind::Grpc || has_body;
        let (method, path) = (request.method(), request.uri().path());
        // The router matches the raw path (case, percent-escapes, dot segments and all) with
        // its routes as written, while the table compares normalised forms, so a request is
        // looked up both ways. Each
        // way's protecting route protects it; two scenes mean the two disagree on what the
        // request is, which no honest client causes: refused.
        let normalised = self.resolve(
            Reading::Normalised,
            method,
            grpc,
            original.map(normalise).as_deref(),
            &normalise(path),
        );
        let raw = self.resolve(Reading::AsSent, method, grpc, original, path);
        match (normalised, raw) {
            (Protection::Ambiguous, _) | (_, Protection::Ambiguous) => Protection::Ambiguous,
            (Protection::Unprotected, other) | (other, Protection::Unprotected) => other,
            (Protection::Route(a), Protection::Route(b)) if self.scene(a) != self.scene(b) => {
                Protection::Ambiguous
            }
            (Protection::Route(a), Protection::Route(b)) => Protection::Route(self.stricter(a, b)),
        }
    }

    fn scene(&self, id: RouteId) -> &SceneId {
        &self.route(id).scene
    }

    fn strictness(&self, id: RouteId) -> u8 {
        self.route(id).requirement.strictness()
    }

    /// Of two routes that both protect a request, the one whose requirement holds: the
    /// stricter (`a` when they are as strict), so that a path read one way as an `Always`
    /// route never gets a `WhenRisky` one's leniency. Two `WhenRisky` routes count failures
    /// apart, with limits that cannot be weighed against each other: `a`, with the captcha
    /// required.
    fn stricter(&self, a: RouteId, b: RouteId) -> RouteId {
        match self.strictness(a).cmp(&self.strictness(b)) {
            Ordering::Less => b,
            Ordering::Greater => a,
            Ordering::Equal
                if a.index != b.index
                    && matches!(self.route(a).requirement, Requirement::WhenRisky(_)) =>
            {
                RouteId {
                    required: true,
                    ..a
                }
            }
            Ordering::Equal => a,
        }
    }

    /// Behind a nest, both of a request's paths match routes of their own that protect it:
    /// the table could be read either way. The full path's route decides, unless the nested
    /// path's asks more: then under one scene the stricter holds (a monitored prefix never
    /// opens an `Always` route below it), and under two the request is refused rather than
    /// have its scene switched (which would refuse a person who passed the full path's).
    fn behind_a_nest(&self, full: RouteId, nested: RouteId) -> Protection {
        if self.scene(full) != self.scene(nested) && self.strictness(nested) > self.strictness(full)
        {
            return Protection::Ambiguous;
        }
        Protection::Route(self.stricter(full, nested))
    }

    /// What protects a request with these (normalised) paths: `original` is the path it came
    /// with, when a router nested the layer and stripped a prefix to give `path`. The full
    /// path's route decides, so that a table written with full paths means what it says; the
    /// nested path's only when all the full path matches is a fallback. When both match routes
    /// of their own, as in [`behind_a_nest`](Self::behind_a_nest). Either path's route
    /// protecting the method protects the request: a request goes through only when both let
    /// it.
    fn resolve(
        &self,
        reading: Reading,
        method: &Method,
        grpc: bool,
        original: Option<&str>,
        path: &str,
    ) -> Protection {
        let on_path = self.best(reading, path).map(|index| (index, path));
        let on_original = original.and_then(|o| self.best(reading, o).map(|index| (index, o)));
        let specific = |found: Option<(usize, &str)>| {
            found.is_some_and(|(index, _)| !self.routes[index].paths.is_fallback())
        };
        let both_specific = specific(on_path) && specific(on_original);
        let order = if specific(on_path) && !specific(on_original) {
            [on_path, on_original]
        } else {
            [on_original, on_path]
        };
        let protects = |found: Option<(usize, &str)>| {
            found
                .filter(|&(index, path)| grpc || !self.exempts(reading, index, method, path))
                .map(|(index, _)| RouteId::of(index))
        };
        match order.map(protects) {
            [Some(full), Some(nested)] if both_specific => self.behind_a_nest(full, nested),
            [first, second] => first
                .or(second)
                .map_or(Protection::Unprotected, Protection::Route),
        }
    }

    fn paths(&self, reading: Reading, index: usize) -> &Paths {
        match reading {
            Reading::Normalised => &self.routes[index].paths,
            Reading::AsSent => &self.written[index],
        }
    }

    fn best(&self, reading: Reading, path: &str) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None; // (index, rank)
        for index in 0..self.routes.len() {
            let rank = match self.paths(reading, index) {
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

impl Table {
    /// Whether the route at `index` lets `method` through on `path`, a path it matches read
    /// this way.
    fn exempts(&self, reading: Reading, index: usize, method: &Method, path: &str) -> bool {
        let route = &self.routes[index];
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        // As sent, the prefix's own path may end in one slash (`/signup/`, the page of an app
        // written with trailing slashes); its trailing slash was trimmed from the table.
        let own = |p: &str| p == path || p != "/" && path.strip_suffix('/') == Some(p);
        let below_prefix = matches!(self.paths(reading, index), Paths::Prefix(p) if !own(p));
        route.exempt_throughout.contains(method) || !below_prefix && route.exempt.contains(method)
    }
}

impl Paths {
    /// What errors show: the normalised path, `*` for every path.
    fn shown(&self) -> String {
        match self {
            Self::Every => "*".to_owned(),
            Self::Exact(p) | Self::Prefix(p) => p.clone(),
        }
    }

    /// Matches every path: a fallback for requests no other route matches, not a path.
    fn is_fallback(&self) -> bool {
        match self {
            Self::Every => true,
            Self::Prefix(p) => p == "/",
            Self::Exact(_) => false,
        }
    }

    /// The path's segments, and whether paths below it match too; `None` for a fallback.
    fn segments(&self) -> Option<(Vec<&str>, bool)> {
        if self.is_fallback() {
            return None;
        }
        let (path, below) = match self {
            Self::Every => return None,
            Self::Exact(p) => (p, false),
            Self::Prefix(p) => (p, true),
        };
        Some((path.split('/').filter(|s| !s.is_empty()).collect(), below))
    }
}

/// Whether one request could match `full` by its full path and `nested` by the path a
/// router nested at some of `full`'s own leading segments sees: that nest, if so. Nests that
/// cover all of `full` are not looked for: there a prefix route decides as a full path, and
/// every table with a prefix would conflict with every other route.
fn nest_sharing_a_request(full: &Paths, nested: &Paths) -> Option<String> {
    let (full, full_below) = full.segments()?;
    let (nested, nested_below) = nested.segments()?;
    (1..full.len())
        .find(|&cut| meet(&full[cut..], full_below, &nested, nested_below))
        .map(|cut| format!("/{}", full[..cut].join("/")))
}

/// Whether some path is both `a` (or below it, if `a_below`) and `b` (or below it, if
/// `b_below`), in segments.
fn meet(a: &[&str], a_below: bool, b: &[&str], b_below: bool) -> bool {
    (a_below && b.starts_with(a)) || (b_below && a.starts_with(b)) || a == b
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
        match table.protecting(&request(method, path), false) {
            Protection::Unprotected => None,
            Protection::Route(i) => Some(table.route(i).scene.as_str().to_owned()),
            Protection::Ambiguous => Some("ambiguous".to_owned()),
        }
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
        assert_eq!(scene_for(&table, Method::HEAD, "/signup"), None);
        // A prefix's exemption is for the prefix itself: below it, GET and HEAD are protected.
        assert_eq!(
            scene_for(&table, Method::HEAD, "/signup/email").as_deref(),
            Some("signup")
        );
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
        assert_eq!(
            table.protecting(&grpc, false),
            Protection::Route(RouteId::of(0))
        );
        // The content type in any case; and any request with a body, whatever it says.
        grpc.headers_mut().insert(
            http::header::CONTENT_TYPE,
            "Application/GRPC".parse().unwrap(),
        );
        assert_eq!(
            table.protecting(&grpc, false),
            Protection::Route(RouteId::of(0))
        );
        assert_eq!(
            table.protecting(&request(Method::GET, "/demo.A/B"), true),
            Protection::Route(RouteId::of(0))
        );
        assert_eq!(
            table.protecting(&request(Method::GET, "/demo.A/B"), false),
            Protection::Unprotected
        );
    }

    #[test]
    fn the_most_specific_route_wins() {
        let table = Table::new(
            Routes::new()
                .route(Route::every_path(scene("all")))
                .route(Route::prefix("/api", scene("api")))
                .route(
                    Route::prefix("/api/login", scene("login")).exempt_throughout(Method::OPTIONS),
                )
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

    #[test]
    fn head_exempted_below_a_prefix_needs_get_there_too() {
        let refused = |routes: Routes| Table::new(routes).unwrap_err();
        let prefix = || Route::prefix("/a", scene("s"));
        for route in [
            prefix().exempt_throughout(Method::HEAD),
            // GET is exempt on /a only, HEAD below it too.
            prefix().exempt(Method::GET).exempt_throughout(Method::HEAD),
        ] {
            assert!(matches!(
                refused(route.into()),
                RouteError::HeadWithoutGet { .. }
            ));
        }
        for route in [
            prefix().exempt_throughout(Method::GET).exempt(Method::HEAD),
            prefix()
                .exempt_throughout(Method::GET)
                .exempt_throughout(Method::HEAD),
        ] {
            assert!(Table::new(route.into()).is_ok());
        }
        assert_eq!(
            refused(
                Routes::new()
                    .route(Route::every_path(scene("s")))
                    .route(Route::prefix("/", scene("t")))
            ),
            RouteError::Duplicate { path: "/".into() }
        );
    }

    #[test]
    fn a_prefix_exempts_its_own_path_unless_told_throughout() {
        let table = Table::new(
            Routes::new()
                .route(Route::prefix("/signup", scene("signup")).exempt(Method::GET))
                .route(Route::prefix("/docs", scene("docs")).exempt_throughout(Method::GET))
                .route(Route::exact("/login", scene("login")).exempt_throughout(Method::OPTIONS))
                .route(Route::prefix("/", scene("site")).exempt(Method::GET)),
        )
        .unwrap();
        for (method, path, protected_by) in [
            (Method::GET, "/signup", None),
            (Method::HEAD, "/signup", None),
            // The prefix's own path as an app with trailing slashes routes it; no further.
            (Method::GET, "/signup/", None),
            (Method::HEAD, "/signup/", None),
            (Method::GET, "/signup//", Some("signup")),
            (Method::GET, "//", Some("site")),
            // The router sees the raw path: below the catch-all's own path, so protected.
            (Method::GET, "/Signup/", Some("site")),
            (Method::POST, "/signup", Some("signup")),
            (Method::GET, "/signup/email", Some("signup")),
            (Method::HEAD, "/signup/email", Some("signup")),
            (Method::GET, "/signup/./email", Some("signup")),
            // The router sees `/signup/{..}`: below the prefix, protected (it was let through).
            (Method::GET, "/signup/email/../..", Some("signup")),
            (Method::GET, "/signup/..", Some("signup")),
            (Method::GET, "/signup/%2e%2e", Some("signup")),
            // Raw and normalised fall under two scenes' routes: refused.
            (Method::POST, "/signup/..%2Flogin", Some("ambiguous")),
            (Method::POST, "/signup/%2e%2e%2flogin", Some("ambiguous")),
            (Method::POST, "/Login", Some("ambiguous")),
            (Method::POST, "/log%69n", Some("ambiguous")),
            (Method::GET, "/docs", None),
            (Method::GET, "/docs/a/b", None),
            (Method::HEAD, "/docs/a", None),
            (Method::POST, "/docs/a", Some("docs")),
            (Method::OPTIONS, "/login", None),
            (Method::GET, "/login", Some("login")),
            (Method::GET, "/", None),
            (Method::GET, "/other", Some("site")),
            (Method::POST, "/", Some("site")),
        ] {
            assert_eq!(
                scene_for(&table, method.clone(), path).as_deref(),
                protected_by,
                "{method} {path}"
            );
        }
        // The route for every path has no path of its own: its exemptions hold everywhere.
        let every = Table::new(Route::every_path(scene("s")).exempt(Method::GET).into()).unwrap();
        assert_eq!(scene_for(&every, Method::GET, "/any/path"), None);
    }

    #[test]
    fn a_path_read_as_two_when_risky_routes_requires_the_captcha() {
        let risky = |limit| {
            Requirement::WhenRisky(
                crate::layer::Risk::new()
                    .per_account(limit, std::time::Duration::from_secs(900))
                    .unwrap(),
            )
        };
        let table = Table::new(
            Routes::new()
                .route(Route::every_path(scene("login")).requirement(risky(1000)))
                .route(Route::exact("/login", scene("login")).requirement(risky(1))),
        )
        .unwrap();
        let required = |path| match table.protecting(&request(Method::POST, path), true) {
            Protection::Route(id) => {
                let requirement = &table.route(id).requirement;
                (
                    matches!(requirement, Requirement::Always),
                    id.required_by_two_risks(),
                )
            }
            other => panic!("{other:?}"),
        };
        // Raw `/Login` is the lax fallback's, normalised `/login` the strict route's.
        assert_eq!(required("/Login"), (true, true));
        assert_eq!(required("/login"), (false, false));
        assert_eq!(required("/other"), (false, false));

        // A path as sent is compared with the table's paths as written, capitals and all, as
        // the router compares it (a review found every `/resetPassword` asked for the captcha,
        // and under two scenes refused).
        let risky = Table::new(
            Routes::new()
                .route(Route::every_path(scene("login")).requirement(risky(1000)))
                .route(Route::exact("/resetPassword", scene("login")).requirement(risky(1))),
        )
        .unwrap();
        let two_scenes = Table::new(
            Routes::new()
                .route(Route::prefix("/api/", scene("login")))
                .route(Route::exact("/api/resetPassword", scene("signup"))),
        )
        .unwrap();
        let protected = |path: &str| {
            let table = if path.starts_with("/api") {
                &two_scenes
            } else {
                &risky
            };
            match table.protecting(&request(Method::POST, path), true) {
                Protection::Route(id) => {
                    let route = table.route(id);
                    let always = matches!(route.requirement, Requirement::Always);
                    format!("{} {always}", route.scene.as_str())
                }
                other => format!("{other:?}"),
            }
        };
        for (path, protected_by) in [
            ("/resetPassword", "login false"),
            ("/resetpassword", "login true"),
            ("/api/resetPassword", "signup true"),
            ("/api/resetpassword", "Ambiguous"),
            ("/api/resetPassword/", "Ambiguous"),
            ("/api/x", "login true"),
            ("/api/", "login true"),
        ] {
            assert_eq!(protected(path), protected_by, "{path}");
        }
    }

    #[test]
    fn behind_a_nest_the_full_path_decides() {
        let index = |protection: Protection| match protection {
            Protection::Unprotected => None,
            Protection::Route(index) => Some(index),
            Protection::Ambiguous => panic!("ambiguous"),
        };
        let resolved = |table: &Table, method: Method, original: Option<&str>, path: &str| {
            index(table.resolve(Reading::Normalised, &method, false, original, path))
                .map(|i| table.route(i).scene.as_str().to_owned())
        };
        let admin = Table::new(
            Routes::new()
                .route(Route::prefix("/admin", scene("admin")).exempt_throughout(Method::GET))
                .route(Route::exact("/login", scene("login"))),
        )
        .unwrap();
        let fallback = Table::new(
            Routes::new()
                .route(Route::every_path(scene("all")))
                .route(Route::exact("/login", scene("login")))
                .route(Route::prefix("/signup", scene("signup")).exempt(Method::GET)),
        )
        .unwrap();
        // (table, method, the path it came with, the path the nested router sees, scene)
        for (table, method, original, path, protected_by) in [
            (
                &admin,
                Method::POST,
                Some("/admin/login"),
                "/login",
                Some("admin"),
            ),
            // The full path's route exempts GET, the nested path's does not: protected.
            (
                &admin,
                Method::GET,
                Some("/admin/login"),
                "/login",
                Some("login"),
            ),
            (&admin, Method::POST, None, "/login", Some("login")),
            (
                &admin,
                Method::POST,
                Some("/login"),
                "/login",
                Some("login"),
            ),
            (&admin, Method::GET, Some("/admin/x"), "/x", None),
            (&admin, Method::POST, Some("/admin/x"), "/x", Some("admin")),
            (&admin, Method::POST, Some("/other"), "/other", None),
            // All the full path matches is the fallback: the nested path's route decides.
            (
                &fallback,
                Method::POST,
                Some("/admin/login"),
                "/login",
                Some("login"),
            ),
            (&fallback, Method::POST, Some("/admin/x"), "/x", Some("all")),
            (
                &fallback,
                Method::POST,
                Some("/a/signup/x"),
                "/signup/x",
                Some("signup"),
            ),
            (&fallback, Method::GET, Some("/signup"), "/signup", None),
            // The nested path's route exempts GET; the full path is not /signup: protected.
            (
                &fallback,
                Method::GET,
                Some("/admin/signup"),
                "/signup",
                Some("all"),
            ),
        ] {
            assert_eq!(
                resolved(table, method.clone(), original, path).as_deref(),
                protected_by,
                "{method} {original:?} {path}"
            );
        }
        let grpc = index(admin.resolve(
            Reading::Normalised,
            &Method::GET,
            true,
            Some("/admin/login"),
            "/login",
        ));
        assert_eq!(grpc.map(|i| admin.route(i).scene.as_str()), Some("admin"));
        // Both paths match routes of their own: the table could be read either way. The full
        // path's decides, unless the nested path's asks more: under one scene the stricter
        // holds (a review got into an `Always` route through a monitored prefix); under two
        // the request is refused as ambiguous (taking the stricter would switch its scene).
        // Two `WhenRisky` routes cannot be weighed: the full path's, with the captcha required
        // (a review got past a strict `WhenRisky` route through a lax one).
        let risky = || Requirement::WhenRisky(crate::layer::Risk::new());
        let kind = |requirement: &Requirement| match requirement {
            Requirement::Always => "always",
            Requirement::WhenRisky(_) => "when_risky",
            Requirement::Monitor => "monitor",
        };
        // (the full path's route: requirement and scene, the nested path's, what protects)
        for (full, full_scene, nested, nested_scene, protected_by) in [
            (
                Requirement::Monitor,
                "login",
                Requirement::Always,
                "login",
                Some(("login", "always")),
            ),
            (
                risky(),
                "login",
                Requirement::Always,
                "login",
                Some(("login", "always")),
            ),
            (
                risky(),
                "login",
                risky(),
                "login",
                Some(("login", "always")),
            ),
            (risky(), "v1", risky(), "login", Some(("v1", "always"))),
            (
                Requirement::Always,
                "v1",
                Requirement::Always,
                "login",
                Some(("v1", "always")),
            ),
            (
                Requirement::Always,
                "v1",
                risky(),
                "login",
                Some(("v1", "always")),
            ),
            (
                Requirement::Always,
                "v1",
                Requirement::Monitor,
                "login",
                Some(("v1", "always")),
            ),
            (
                risky(),
                "v1",
                Requirement::Monitor,
                "login",
                Some(("v1", "when_risky")),
            ),
            (
                Requirement::Monitor,
                "v1",
                Requirement::Monitor,
                "login",
                Some(("v1", "monitor")),
            ),
            (
                Requirement::Monitor,
                "v1",
                Requirement::Always,
                "login",
                None,
            ),
            (Requirement::Monitor, "v1", risky(), "login", None),
            (risky(), "v1", Requirement::Always, "login", None),
        ] {
            let table = Table::new(
                Routes::new()
                    .route(Route::prefix("/v1", scene(full_scene)).requirement(full))
                    .route(Route::exact("/login", scene(nested_scene)).requirement(nested)),
            )
            .unwrap();
            let shown = match table.resolve(
                Reading::Normalised,
                &Method::POST,
                false,
                Some("/v1/login"),
                "/login",
            ) {
                Protection::Route(id) => {
                    let route = table.route(id);
                    Some((route.scene.as_str(), kind(&route.requirement)))
                }
                Protection::Ambiguous => None,
                Protection::Unprotected => panic!("unprotected"),
            };
            assert_eq!(
                shown, protected_by,
                "{full_scene} {nested_scene} {protected_by:?}"
            );
            // Below the prefix alone, the prefix's own requirement.
            let other = table.resolve(
                Reading::Normalised,
                &Method::POST,
                false,
                Some("/v1/x"),
                "/x",
            );
            let other = table.route(index(other).unwrap());
            assert_eq!(other.scene.as_str(), full_scene);
        }
        // Written as nested paths only, exemptions hold behind the nest.
        let nested = Table::new(
            Route::prefix("/signup", scene("signup"))
                .exempt(Method::GET)
                .into(),
        )
        .unwrap();
        assert_eq!(
            resolved(&nested, Method::GET, Some("/admin/signup"), "/signup"),
            None
        );
    }

    #[test]
    fn routes_that_could_share_a_request_behind_a_nest() {
        let exact = |p: &str| Paths::Exact(p.to_owned());
        let prefix = |p: &str| Paths::Prefix(p.to_owned());
        // (matches the full path, matches the nested path, a nest where both match one request)
        for (full, nested, nest) in [
            (exact("/admin/login"), exact("/login"), Some("/admin")),
            (exact("/a/b/login"), exact("/login"), Some("/a/b")),
            (exact("/a/b/login"), exact("/b/login"), Some("/a")),
            (exact("/admin/users/new"), prefix("/users"), Some("/admin")),
            (exact("/a/b/c"), prefix("/b"), Some("/a")),
            (prefix("/admin/users"), exact("/users/new"), Some("/admin")),
            (prefix("/admin/users"), exact("/users"), Some("/admin")),
            (prefix("/admin/users"), prefix("/users/x"), Some("/admin")),
            (prefix("/admin/users/x"), prefix("/users"), Some("/admin")),
            (exact("/login"), exact("/admin/login"), None),
            (exact("/login"), exact("/signup"), None),
            (exact("/login"), exact("/login"), None),
            (exact("/admin/users"), exact("/users/new"), None),
            (exact("/api/v2/login"), exact("/api/login"), None),
            (prefix("/api/login"), prefix("/api"), None),
            (prefix("/api"), exact("/api/login"), None),
            (prefix("/v2/users"), prefix("/v1/users"), None),
            // A nest that covers all of the prefix: it decides as a full path.
            (prefix("/admin"), exact("/login"), None),
            // Fallbacks are not paths.
            (Paths::Every, exact("/login"), None),
            (exact("/admin/login"), Paths::Every, None),
            (exact("/admin/login"), prefix("/"), None),
            (exact("/admin"), exact("/"), None),
        ] {
            assert_eq!(
                nest_sharing_a_request(&full, &nested).as_deref(),
                nest,
                "{full:?} {nested:?}"
            );
        }
    }

    #[test]
    fn routes_that_could_give_one_request_two_scenes_are_refused() {
        let conflict = RouteError::NestedSceneConflict {
            full: "/admin/login".into(),
            full_scene: scene("login"),
            nested: "/login".into(),
            nested_scene: scene("signup"),
            nest: "/admin".into(),
        };
        let login = || Route::exact("/Admin/Login/", scene("login"));
        let signup = || Route::exact("/login", scene("signup"));
        for routes in [
            Routes::new().route(signup()).route(login()),
            Routes::new().route(login()).route(signup()),
            Routes::new()
                .route(Route::every_path(scene("all")))
                .route(signup())
                .route(login().exempt(Method::GET)),
        ] {
            assert_eq!(Table::new(routes).unwrap_err(), conflict);
        }
        let shown = conflict.to_string();
        for part in [
            "\"/admin/login\"",
            "\"login\"",
            "\"/login\"",
            "\"signup\"",
            "\"/admin\"",
        ] {
            assert!(shown.contains(part), "{shown}");
        }
        assert!(matches!(
            Table::new(
                Routes::new()
                    .route(Route::prefix("/admin/users", scene("admin")))
                    .route(Route::exact("/users/new", scene("signup")))
            ),
            Err(RouteError::NestedSceneConflict { .. })
        ));
        // Plainly fine tables stand.
        for routes in [
            Routes::new()
                .route(Route::exact("/login", scene("s")))
                .route(Route::exact("/admin/login", scene("s"))),
            Routes::new()
                .route(Route::exact("/login", scene("login")))
                .route(Route::prefix("/signup", scene("signup")).exempt(Method::GET)),
            Routes::new()
                .route(Route::prefix("/signup", scene("s")))
                .route(Route::exact("/signup/email", scene("s"))),
            Routes::new()
                .route(Route::every_path(scene("all")))
                .route(Route::prefix("/api", scene("api")))
                .route(Route::prefix("/api/login", scene("login")))
                .route(Route::exact("/api/login/sms", scene("sms"))),
            Routes::new()
                .route(Route::prefix("/admin", scene("admin")))
                .route(Route::exact("/login", scene("login"))),
        ] {
            assert!(Table::new(routes.clone()).is_ok(), "{routes:?}");
        }
    }
}
