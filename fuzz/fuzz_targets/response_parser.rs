#![no_main]
//! The client's response parser on arbitrary statuses and bodies: a verdict or an error, never
//! a panic; a verdict only from a 2xx answer.

use libfuzzer_sys::fuzz_target;
use tower_aliyun_captcha::client::parse_response;

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    if let Ok(_verdict) = parse_response(status, body) {
        assert!((200..300).contains(&status), "a verdict from HTTP {status}");
    }
});
