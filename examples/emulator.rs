//! The emulator as an example, for `cargo run --example emulator`: the same program as the
//! `aliyun-captcha-emulator` binary of the emulator crate (`cargo install --path emulator`).
//!
//! ```text
//! cargo run --example emulator -- --help
//! ```

fn main() -> std::process::ExitCode {
    aliyun_captcha_emulator::cli::main()
}
