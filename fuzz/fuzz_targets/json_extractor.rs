#![no_main]
//! The JSON field extractor on arbitrary bodies: no panic, and the body is handed on unchanged.

mod extract;

use libfuzzer_sys::fuzz_target;
use tower_aliyun_captcha::extract::JsonField;

fuzz_target!(|data: &[u8]| {
    extract::check(JsonField::new("a.captchaVerifyParam"), "application/json", data);
    extract::check(JsonField::default(), "application/json", data);
});
