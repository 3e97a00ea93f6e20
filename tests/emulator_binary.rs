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
        .take(8)
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

/// Mints a param over the emulator's own API, as a page would.
async fn mint(url: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST /emulator/params HTTP/1.1\r\nhost: {host}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    body["captchaVerifyParam"].as_str().unwrap().to_owned()
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
