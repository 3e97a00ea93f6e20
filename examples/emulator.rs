//! The emulator as an example, for `cargo run --example emulator`: the same program as the
//! `aliyun-captcha-emulator` binary (`cargo install tower-aliyun-captcha --features emulator`).
//!
//! ```text
//! cargo run --example emulator -- --help
//! ```

#[path = "../src/bin/aliyun-captcha-emulator/cli.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
