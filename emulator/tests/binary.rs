//! The `aliyun-captcha-emulator` binary, as a front-end developer runs it: with no arguments it
//! serves on development credentials that a client can verify with, and says what they are.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, VerifyRequest};

const BINARY: &str = env!("CARGO_BIN_EXE_aliyun-captcha-emulator");

/// Kills the emulator when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` and no Alibaba Cloud credentials in its environment; returns
/// it and the lines it printed before serving.
fn start(args: &[&str]) -> (Running, Vec<String>) {
    let child = Command::new(BINARY)
        .args(args)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emulator binary starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(9)
        .map(|line| line.unwrap())
        .collect();
    (running, lines)
}

fn value<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {lines:?}"))
        .split_whitespace()
        .next()
        .unwrap()
}

/// Mints a param over the emulator's own API, as a script would.
async fn mint(url: &str) -> String {
    let host = url.trim_start_matches("http://");
    let (_, body) = post_params(host, host, None).await;
    body["captchaVerifyParam"].as_str().unwrap().to_owned()
}

/// `POST /emulator/params` to `addr` with `host` in `Host` and, as a page's request, `origin`:
/// the head of the answer and its JSON body.
async fn post_params(addr: &str, host: &str, origin: Option<&str>) -> (String, serde_json::Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let origin = origin.map_or(String::new(), |o| format!("origin: {o}\r\n"));
    let request = format!(
        "POST /emulator/params HTTP/1.1\r\nhost: {host}\r\n{origin}content-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or_default(),
    )
}

#[tokio::test]
async fn with_no_arguments_it_serves_development_credentials_on_8787() {
    // The documented default port; a machine that already uses it cannot run this check.
    if std::net::TcpListener::bind("127.0.0.1:8787").is_err() {
        panic!("127.0.0.1:8787 is in use: free it to test the emulator's default address");
    }
    let (_running, lines) = start(&[]);
    assert_eq!(lines[0], "listening on http://127.0.0.1:8787", "{lines:?}");
    let url = value(&lines, "endpoint:");
    assert_eq!(url, "http://127.0.0.1:8787");
    let id = value(&lines, "access key id:");
    let secret = value(&lines, "access secret:");
    assert_eq!(value(&lines, "scenes:"), "emulator-scene");
    assert_eq!(
        value(&lines, "widget script:"),
        "http://127.0.0.1:8787/emulator/captcha.js"
    );

    // What it printed is enough for a back end to verify with.
    let client = Client::builder()
        .credentials(Credentials::new(id, secret))
        .endpoint(url)
        .allow_http(true)
        .build()
        .unwrap();
    let param = CaptchaVerifyParam::new(mint(url).await).unwrap();
    assert!(
        client
            .verify(VerifyRequest::new(param))
            .await
            .unwrap()
            .passed()
    );
    // And a wrong secret is refused, so the printed one is the one it checks.
    let wrong = Client::builder()
        .credentials(Credentials::new(id, "not-the-secret"))
        .endpoint(url)
        .allow_http(true)
        .build()
        .unwrap();
    let param = CaptchaVerifyParam::new(mint(url).await).unwrap();
    assert!(wrong.verify(VerifyRequest::new(param)).await.is_err());
}

#[test]
fn secrets_given_on_the_command_line_are_not_printed() {
    let (_running, lines) = start(&[
        "--listen",
        "127.0.0.1:0",
        "--access-key-id",
        "cli-id",
        "--access-key-secret",
        "cli-secret-value",
        "--scene",
        "login",
        "--test-mode-scene",
        "qa=fail",
    ]);
    assert!(
        lines[0].starts_with("listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(value(&lines, "access key id:"), "cli-id");
    assert!(
        lines.iter().all(|line| !line.contains("cli-secret-value")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("qa (test mode: Fail)")),
        "{lines:?}"
    );
}

#[test]
fn help_documents_the_listen_address_for_phones_and_containers() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("--listen"), "{help}");
    assert!(help.contains("0.0.0.0:PORT"), "{help}");
    let bad = Command::new(BINARY)
        .arg("--test-mode-scene")
        .arg("qa=maybe")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ID=fail"));
}

/// `--allow-origin` lets that page's widget mint (with CORS headers for it); other pages are
/// refused, and the startup lines say which pages are allowed.
#[tokio::test]
async fn allow_origin_lets_that_page_mint_and_no_other() {
    let (_running, lines) = start(&[
        "--listen",
        "127.0.0.1:0",
        "--allow-origin",
        "http://localhost:5173",
    ]);
    let url = value(&lines, "endpoint:");
    let addr = url.trim_start_matches("http://");
    let (head, body) = post_params(addr, addr, Some("http://localhost:5173")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("access-control-allow-origin: http://localhost:5173"),
        "{head}"
    );
    assert!(body["captchaVerifyParam"].is_string(), "{body}");
    let (head, body) = post_params(addr, addr, Some("http://evil.example")).await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert_eq!(body["Code"], "OriginNotAllowed");
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // A rebound name is refused even from the allowed page.
    let port = addr.rsplit(':').next().unwrap();
    let (head, _) = post_params(
        addr,
        &format!("rebind.evil.example:{port}"),
        Some("http://localhost:5173"),
    )
    .await;
    assert!(head.starts_with("http/1.1 421"), "{head}");
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("pages allowed:  http://localhost:5173")),
        "{lines:?}"
    );

    // An origin that is not one stops it, saying why, before it serves.
    let output = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allow-origin",
            "localhost:5173",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("allow_origin") && stderr.contains("localhost:5173"),
        "{stderr}"
    );
}

/// On every interface it says that its API is reachable from the network, after the first
/// line; it still answers its API for its own address and localhost, not for other names.
#[tokio::test]
async fn listening_on_every_interface_warns_that_the_api_is_reachable() {
    let child = Command::new(BINARY)
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the emulator binary starts");
    let mut running = Running(child);
    let mut stdout = BufReader::new(running.0.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    assert!(first.starts_with("listening on http://0.0.0.0:"), "{first}");
    let port = first.rsplit(':').next().unwrap().to_owned();
    let mut stderr = BufReader::new(running.0.stderr.take().unwrap()).lines();
    let warning = stderr.next().unwrap().unwrap();
    assert!(
        warning.contains("warning") && warning.contains("reachable from the network"),
        "{warning}"
    );
    assert!(warning.contains("/emulator/params"), "{warning}");
    // Keep reading, so that the emulator never writes to a full pipe.
    std::thread::spawn(move || stdout.for_each(drop));

    let addr = format!("127.0.0.1:{port}");
    let (head, body) = post_params(&addr, &addr, None).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body["captchaVerifyParam"].is_string());
    let (head, _) = post_params(&addr, &format!("localhost:{port}"), None).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (head, _) = post_params(&addr, &format!("rebind.evil.example:{port}"), None).await;
    assert!(head.starts_with("http/1.1 421"), "{head}");

    // On loopback it says nothing of the kind: everything it writes to stderr up to a clean
    // stop (SIGTERM) is the stop itself.
    #[cfg(unix)]
    {
        let quiet = Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut quiet = Running(quiet);
        let lines = BufReader::new(quiet.0.stdout.take().unwrap()).lines();
        assert_eq!(lines.take(9).count(), 9);
        let terminated = Command::new("kill")
            .args(["-TERM", &quiet.0.id().to_string()])
            .status()
            .unwrap();
        assert!(terminated.success());
        let _ = quiet.0.wait();
        let mut said = String::new();
        std::io::Read::read_to_string(&mut quiet.0.stderr.take().unwrap(), &mut said).unwrap();
        assert_eq!(said.trim(), "aliyun-captcha-emulator: stopped", "{said}");
    }
}
