//! The services credentials come from, emulated so that credential sources are tested over
//! sockets, offline: STS (`AssumeRole`, `AssumeRoleWithOIDC`), an ECS instance's metadata
//! service, and a credentials URI. What they issue is short-lived, and the emulator accepts
//! it for verifications only until it expires.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::Emulator;
use super::auth::{Api, GatewayError, KnownKey};
use super::state::State;
use tower_aliyun_captcha::protocol;

impl Emulator {
    /// Makes the emulated metadata service refuse (HTTP 400) any request that carries a
    /// session token, and answer those without one (IMDSv1), as instances do whose token
    /// requests succeed but whose other paths do not take the token; `false` goes back to
    /// requiring the token. For the tests of the IMDSv1 fallback; not part of the API.
    #[doc(hidden)]
    pub fn metadata_refuses_session_tokens(&self, refuses: bool) {
        self.state.sts().metadata_refuses_tokens.set(refuses);
    }
}

/// Temporary credentials the emulator issued.
pub(crate) struct Issued {
    pub(crate) id: String,
    secret: String,
    token: String,
    expires: SystemTime,
}

impl Issued {
    /// The fields STS, the metadata service and credentials URIs answer.
    fn fields(&self) -> serde_json::Value {
        json!({
            "AccessKeyId": self.id,
            "AccessKeySecret": self.secret,
            "SecurityToken": self.token,
            "Expiration": protocol::format_date(time::OffsetDateTime::from(self.expires)),
        })
    }
}

/// The longest session STS grants (a role's maximum can be set up to 12 hours).
const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// Issues credentials valid for `asked` (capped by the configuration), and remembers them.
fn issue(state: &State, asked: Duration) -> Issued {
    let lifetime = state.sts().max_lifetime.map_or(asked, |max| asked.min(max));
    let expires = state.now() + lifetime;
    let uuid = || uuid::Uuid::new_v4().simple().to_string();
    let issued = Issued {
        id: format!("STS.{}", &uuid()[..20]),
        secret: uuid(),
        token: format!("CAIS{}", uuid()),
        expires,
    };
    state.remember_issued(
        issued.id.clone(),
        KnownKey {
            secret: issued.secret.clone(),
            security_token: Some(issued.token.clone()),
            expires: Some(expires),
        },
    );
    issued
}

/// Answers STS `AssumeRole` or `AssumeRoleWithOIDC`, authenticated already.
pub(crate) fn assume(
    state: &State,
    api: Api,
    body: &Bytes,
    request_id: &str,
) -> Result<serde_json::Value, GatewayError> {
    let fields: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &'static str| {
        fields.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            GatewayError::new(
                StatusCode::BAD_REQUEST,
                "MissingParameter",
                format!("The input parameter {name} is not supplied."),
            )
        })
    };
    let role = field("RoleArn")?;
    if !state.sts().roles.contains(role) {
        return Err(GatewayError::new(
            StatusCode::NOT_FOUND,
            "EntityNotExist.Role",
            "The specified role does not exist.",
        ));
    }
    field("RoleSessionName")?;
    // 900 s up to the longest session a role can be given (12 h); 3600 s when not asked.
    let duration = match fields.get("DurationSeconds") {
        None => Some(3600),
        Some(asked) => asked
            .parse::<u64>()
            .ok()
            .filter(|d| (900..=MAX_SESSION.as_secs()).contains(d)),
    }
    .ok_or_else(|| {
        GatewayError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter.DurationSeconds",
            "The DurationSeconds must be a number of seconds from 900 to 43200.",
        )
    })?;
    if api == Api::AssumeRoleWithOidc {
        let provider = field("OIDCProviderArn")?;
        let token = field("OIDCToken")?;
        if state.sts().oidc.get(provider) != Some(token) {
            return Err(GatewayError::new(
                StatusCode::BAD_REQUEST,
                "AuthenticationFail.OIDCToken",
                "The OIDC token is not valid for this provider.",
            ));
        }
    }
    let issued = issue(state, Duration::from_secs(duration));
    Ok(json!({
        "RequestId": request_id,
        "AssumedRoleUser": {"Arn": format!("{role}/{}", fields["RoleSessionName"]), "AssumedRoleId": "300000000000000000:emulated"},
        "Credentials": issued.fields(),
    }))
}

/// The metadata service's answer to `method path`, if it is one of its paths.
pub(crate) fn metadata(
    state: &State,
    method: &http::Method,
    path: &str,
    token: Option<&str>,
) -> Option<(StatusCode, Bytes)> {
    let role = state.sts().instance_role.as_deref()?;
    let text = |status, body: String| Some((status, Bytes::from(body)));
    if path == "/latest/api/token" {
        if method != http::Method::PUT {
            return text(StatusCode::METHOD_NOT_ALLOWED, String::new());
        }
        return text(StatusCode::OK, state.new_imds_token());
    }
    let rest = path.strip_prefix("/latest/meta-data/ram/security-credentials/")?;
    if method != http::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, String::new());
    }
    if state.sts().metadata_refuses_tokens.is_on() {
        if token.is_some() {
            return text(StatusCode::BAD_REQUEST, String::new());
        }
    } else if !token.is_some_and(|t| state.knows_imds_token(t)) {
        // The emulated instance requires a session token (IMDSv2), as hardened instances do.
        return text(StatusCode::UNAUTHORIZED, String::new());
    }
    match rest {
        "" => text(StatusCode::OK, role.to_owned()),
        name if name == role => {
            let issued = issue(state, Duration::from_secs(6 * 3600));
            let mut body = issued.fields();
            body["Code"] = "Success".into();
            body["LastUpdated"] =
                protocol::format_date(time::OffsetDateTime::from(state.now())).into();
            text(StatusCode::OK, body.to_string())
        }
        _ => text(StatusCode::NOT_FOUND, String::new()),
    }
}

/// A credentials URI's answer: fresh credentials, with `Code`.
pub(crate) fn credentials_uri(state: &State) -> serde_json::Value {
    let issued = issue(state, Duration::from_secs(3600));
    let mut body = issued.fields();
    body["Code"] = "Success".into();
    body
}
