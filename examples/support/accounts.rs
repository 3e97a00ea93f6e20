//! A one-method gRPC service, `demo.Accounts/Signup`, written by hand the way tonic's code
//! generator would write it, so that the examples and tests need no `protoc`.
//!
//! The handler reads the captcha verdict the layer put in the request's extensions.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tower_aliyun_captcha::CaptchaVerified;
use tower_aliyun_captcha::layer::require_verified;

/// The full path of the protected method.
pub const SIGNUP_PATH: &str = "/demo.Accounts/Signup";

#[derive(Clone, PartialEq, prost::Message)]
pub struct SignupRequest {
    #[prost(string, tag = "1")]
    pub email: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SignupReply {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(bool, tag = "2")]
    pub degraded: bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The business logic: sign the person up, saying how the captcha went.
async fn signup(request: Request<SignupRequest>) -> Result<Response<SignupReply>, Status> {
    // The handler demands the verdict: if a routing mistake skipped the layer, it refuses.
    let (captcha, degraded) = match require_verified(&request)? {
        CaptchaVerified::Passed(passed) => (passed.code().as_str(), false),
        _ => ("degraded", true),
    };
    Ok(Response::new(SignupReply {
        message: format!("signed up {} (captcha {captcha})", request.get_ref().email),
        degraded,
    }))
}

struct Signup;

impl tower::Service<Request<SignupRequest>> for Signup {
    type Response = Response<SignupReply>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<SignupRequest>) -> Self::Future {
        Box::pin(signup(request))
    }
}

/// The gRPC server for `demo.Accounts`.
#[derive(Clone, Debug, Default)]
pub struct AccountsServer;

impl NamedService for AccountsServer {
    const NAME: &'static str = "demo.Accounts";
}

impl<B> tower::Service<http::Request<B>> for AccountsServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != SIGNUP_PATH {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(Signup, request).await)
        })
    }
}

/// Calls `Signup` over `channel`, with `param` in the `x-captcha-verify-param` metadata.
pub async fn call_signup(
    channel: tonic::transport::Channel,
    email: &str,
    param: Option<&str>,
) -> Result<SignupReply, Status> {
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(SignupRequest {
        email: email.to_owned(),
    });
    if let Some(param) = param {
        let value = param
            .parse()
            .map_err(|_| Status::invalid_argument("the param is not valid metadata"))?;
        request
            .metadata_mut()
            .insert("x-captcha-verify-param", value);
    }
    let path = http::uri::PathAndQuery::from_static(SIGNUP_PATH);
    let reply = client
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await?;
    Ok(reply.into_inner())
}
