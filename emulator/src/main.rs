//! `aliyun-captcha-emulator`: a local stand-in for Alibaba Cloud's Captcha 2.0 verification
//! service, for front-end and back-end development without an Alibaba Cloud account.
//!
//! ```text
//! cargo install --path emulator      # from a clone of the repository
//! aliyun-captcha-emulator            # http://127.0.0.1:8787, development credentials
//! aliyun-captcha-emulator --help
//! ```

fn main() -> std::process::ExitCode {
    aliyun_captcha_emulator::cli::main()
}
