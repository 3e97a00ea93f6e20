#![no_main]
//! The form field extractor on arbitrary bodies: no panic, and the body is handed on unchanged.

mod extract;

use libfuzzer_sys::fuzz_target;
use tower_aliyun_captcha::extract::FormField;

fuzz_target!(|data: &[u8]| {
    extract::check(FormField::default(), "application/x-www-form-urlencoded", data);
});
