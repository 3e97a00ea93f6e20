//! The emulator that verifications go to, and the load generator's own HTTP connections.

use std::sync::Mutex;

use aliyun_captcha_emulator::Emulator;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tower_aliyun_captcha::{Client, Credentials};

pub const SCENE: &str = "bench-scene";

/// The key an emulator in this process (or the floor's peer process) accepts.
pub fn bench_credentials() -> Credentials {
    Credentials::new("LTAIbench", "bench-secret")
}

pub type Http = HttpClient<HttpConnector, Full<Bytes>>;

pub fn http_client() -> Http {
    HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub async fn read_json(response: Response<Incoming>) -> Result<Value, String> {
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body.to_bytes()).map_err(|e| e.to_string())
}

/// The param in an answer of `POST /emulator/params`.
async fn minted(response: Response<Incoming>) -> Result<String, String> {
    read_json(response).await?["captchaVerifyParam"]
        .as_str()
        .map(str::to_owned)
        .ok_or("no param minted".into())
}

/// One keep-alive HTTP/1 connection per worker to one peer. A pooled client may open a spare
/// connection while a returned one is still on its way back to the pool; with lanes the load
/// generator holds exactly one socket per worker, so the soak's descriptor ceiling measures
/// the code under test rather than the harness.
pub struct Lanes {
    authority: String,
    senders: Vec<Mutex<Option<SendRequest<Full<Bytes>>>>>,
}

impl Lanes {
    pub fn new(authority: impl Into<String>, workers: usize) -> Self {
        Self {
            authority: authority.into(),
            senders: (0..workers).map(|_| Mutex::new(None)).collect(),
        }
    }

    pub async fn send(
        &self,
        worker: usize,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        let kept = self.senders[worker]
            .lock()
            .expect("a worker never panics holding its lane")
            .take();
        let mut sender = match kept {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        // The worker reads this body before its next request, so the lane is free by then.
        *self.senders[worker]
            .lock()
            .expect("a worker never panics holding its lane") = Some(sender);
        Ok(response)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// Where verifications go: an emulator in this process, or one at `--endpoint`. Either way
/// params are minted and counters read over the emulator's HTTP API (`POST /emulator/params`,
/// `GET /emulator/stats`), the same for both.
pub struct Upstream {
    /// Kept alive for the run when the emulator is in this process.
    _in_process: Option<Emulator>,
    url: String,
    credentials: Credentials,
    http: Http,
}

impl Upstream {
    pub async fn start(endpoint: Option<String>) -> Result<Self, String> {
        match endpoint {
            Some(url) => Ok(Self::external(
                url,
                Credentials::from_env().map_err(|e| e.to_string())?,
            )),
            None => {
                let credentials = bench_credentials();
                let emulator = Emulator::builder()
                    .credentials(&credentials)
                    .scene(SCENE)
                    .start("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Self {
                    url: emulator.url().trim_end_matches('/').to_owned(),
                    _in_process: Some(emulator),
                    credentials,
                    http: http_client(),
                })
            }
        }
    }

    /// An emulator in another process, at `url`, that accepts `credentials`.
    pub fn external(url: String, credentials: Credentials) -> Self {
        Self {
            _in_process: None,
            url: url.trim_end_matches('/').to_owned(),
            credentials,
            http: http_client(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self, max_connections: usize) -> Client {
        Client::builder()
            .credentials(self.credentials.clone())
            .endpoint(self.url.clone())
            .allow_http(true)
            .max_connections(max_connections)
            .build()
            .expect("the client builds")
    }

    pub async fn mint(&self) -> Result<String, String> {
        let response = self
            .http
            .request(self.mint_request())
            .await
            .map_err(|e| e.to_string())?;
        minted(response).await
    }

    pub async fn mint_many(&self, count: usize) -> Result<Vec<String>, String> {
        let mut params = Vec::with_capacity(count);
        for _ in 0..count {
            params.push(self.mint().await?);
        }
        Ok(params)
    }

    /// Mints over `worker`'s own connection of `lanes`.
    pub async fn mint_on(&self, lanes: &Lanes, worker: usize) -> Result<String, String> {
        minted(lanes.send(worker, self.mint_request()).await?).await
    }

    fn mint_request(&self) -> Request<Full<Bytes>> {
        Request::post(format!("{}/emulator/params", self.url))
            .body(Full::new(Bytes::from(json!({"scene": SCENE}).to_string())))
            .expect("a valid request")
    }

    /// The emulator's port, to tell its sockets apart from the app's.
    pub fn port(&self) -> u16 {
        self.authority()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(0)
    }

    /// The emulator's address, for connections of our own.
    pub fn authority(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Connections the emulator has accepted so far, from `GET /emulator/stats`.
    pub async fn connections(&self) -> u64 {
        let request = Request::get(format!("{}/emulator/stats", self.url))
            .body(Full::default())
            .expect("valid");
        match self.http.request(request).await {
            Ok(response) => read_json(response)
                .await
                .ok()
                .and_then(|stats| stats["connections"].as_u64())
                .unwrap_or(0),
            Err(_) => 0,
        }
    }
}
