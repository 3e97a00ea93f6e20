//! Verifies one `CaptchaVerifyParam` from the command line, and prints the verdict or the
//! error as one JSON object. Exit status: 0 passed, 1 rejected, 2 error.
//!
//! ```text
//! cargo run --example verify -- [--region cn-shanghai | --endpoint URL | --emulate] [--scene ID] PARAM
//! ```
//!
//! Credentials come from `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and
//! `ALIBABA_CLOUD_SECURITY_TOKEN`. `--emulate` starts an emulator in process with generated
//! credentials instead, and mints a passing param when PARAM is `-`. It is the quickest way to
//! check credentials and region: an error says what to fix.

use std::process::ExitCode;

use aliyun_captcha_emulator::{Emulator, Mint};
use serde_json::json;
use tower_aliyun_captcha::client::Region;
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

const USAGE: &str = "usage: verify [--region cn-shanghai|ap-southeast-1 | --endpoint URL | --emulate] [--scene ID] PARAM";

enum Target {
    Region(Region),
    Endpoint(String),
    Emulate,
}

struct Args {
    target: Target,
    scene: Option<String>,
    param: String,
}

fn parse_args() -> Result<Args, String> {
    let mut target = Target::Region(Region::CnShanghai);
    let (mut scene, mut param) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--region" => target = Target::Region(value()?.parse().map_err(|e| format!("{e}"))?),
            "--endpoint" => target = Target::Endpoint(value()?),
            "--emulate" => target = Target::Emulate,
            "--scene" => scene = Some(value()?),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            _ if param.is_some() => return Err("give exactly one PARAM".into()),
            _ => param = Some(arg),
        }
    }
    let param = param.ok_or("PARAM is missing")?;
    Ok(Args {
        target,
        scene,
        param,
    })
}

fn print_error(kind: &str, message: &str, advice: &str) -> ExitCode {
    println!(
        "{}",
        json!({"error": {"kind": kind, "message": message, "advice": advice}})
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!(
                "{}{USAGE}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!("verify: {message}\n")
                }
            );
            return ExitCode::from(2);
        }
    };

    let mut _emulator = None;
    let mut builder = Client::builder();
    let mut param = args.param;
    match args.target {
        Target::Region(region) => builder = builder.region(region),
        Target::Endpoint(url) => {
            let plain = url.starts_with("http://");
            builder = builder.endpoint(url).allow_http(plain);
        }
        Target::Emulate => {
            let credentials = Credentials::new(
                format!(
                    "LTAIemu{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..16]
                ),
                uuid::Uuid::new_v4().simple().to_string(),
            );
            let scene = args
                .scene
                .clone()
                .unwrap_or_else(|| "emulator-scene".into());
            let emulator = match Emulator::builder()
                .credentials(&credentials)
                .scene(&scene)
                .start("127.0.0.1:0")
                .await
            {
                Ok(emulator) => emulator,
                Err(e) => {
                    return print_error(
                        "emulator",
                        &e.to_string(),
                        "Could not start the emulator.",
                    );
                }
            };
            if param == "-" {
                param = emulator
                    .mint(Mint::pass().in_scene(SceneId::new(&scene).unwrap()))
                    .expect("a passing param mints");
            }
            builder = builder
                .credentials(credentials)
                .endpoint(emulator.url())
                .allow_http(true);
            _emulator = Some(emulator);
        }
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(e) => {
            return print_error(
                "configuration",
                &e.to_string(),
                "Fix the flags or environment.",
            );
        }
    };
    let param = match CaptchaVerifyParam::new(param) {
        Ok(param) => param,
        Err(e) => {
            // Refused locally, as the layer does: no call is made (and billed).
            println!(
                "{}",
                json!({"passed": false, "code": e.code().as_str(), "meaning": e.code().meaning(), "request_id": null, "local": true})
            );
            return ExitCode::from(1);
        }
    };
    let mut request = VerifyRequest::new(param);
    if let Some(scene) = args.scene {
        match SceneId::new(&scene) {
            Ok(scene) => request = request.with_scene(scene),
            Err(e) => return print_error("configuration", &e.to_string(), "Give a valid --scene."),
        }
    }
    match client.verify(request).await {
        Ok(verdict) => {
            println!(
                "{}",
                json!({
                    "passed": verdict.passed(),
                    "code": verdict.code().as_str(),
                    "meaning": verdict.code().meaning(),
                    "request_id": verdict.request_id(),
                })
            );
            if verdict.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            let mut object = json!({"error": {
                "kind": error.label(),
                "message": error.to_string(),
                "advice": error.advice(),
                "may_have_reached_server": error.may_have_reached_server(),
            }});
            if let tower_aliyun_captcha::Error::Api(api) = &error {
                object["error"]["status"] = json!(api.status());
                object["error"]["code"] = json!(api.code().as_str());
                object["error"]["request_id"] = json!(api.request_id());
            }
            println!("{object}");
            ExitCode::from(2)
        }
    }
}
