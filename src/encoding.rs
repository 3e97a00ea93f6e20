//! Percent-encoding as Alibaba's V3 signature and its SDKs do it.
//!
//! Two flavours share one rule: every byte outside `A-Z a-z 0-9 - _ . ~` is written as `%XX`
//! (upper-case hex) of its UTF-8 bytes. They differ only in the space: the canonical request
//! writes `%20`, while the official Python SDK's form bodies use `quote_plus`, which writes `+`.

/// Which bytes are RFC 3986 "unreserved" (`A-Z a-z 0-9 - _ . ~`) and so never escaped.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        byte += 1;
    }
    table
};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut String, input: &str, space_as_plus: bool, keep_slash: bool) {
    out.reserve(input.len());
    // Runs of bytes kept as they are are copied whole: params are mostly base64 letters.
    let mut run_start = 0;
    for (index, &byte) in input.as_bytes().iter().enumerate() {
        if UNRESERVED[usize::from(byte)] || (keep_slash && byte == b'/') {
            continue;
        }
        // A non-empty run holds only ASCII, so both its ends are character boundaries. (An
        // empty one may sit inside a multi-byte character, where slicing would panic.)
        if run_start < index {
            out.push_str(&input[run_start..index]);
        }
        run_start = index + 1;
        if space_as_plus && byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX_UPPER[usize::from(byte >> 4)] as char);
            out.push(HEX_UPPER[usize::from(byte & 0x0f)] as char);
        }
    }
    if run_start < input.len() {
        out.push_str(&input[run_start..]);
    }
}

/// Appends `input` percent-encoded for the canonical request (space as `%20`).
pub(crate) fn push_rfc3986(out: &mut String, input: &str) {
    push_escaped(out, input, false, false);
}

/// Appends a URL path percent-encoded segment by segment (`/` kept).
pub(crate) fn push_path(out: &mut String, path: &str) {
    push_escaped(out, path, false, true);
}

/// Appends `input` encoded like Python's `urllib.parse.quote_plus` (space as `+`).
pub(crate) fn push_quote_plus(out: &mut String, input: &str) {
    push_escaped(out, input, true, false);
}

/// Encodes form fields as `application/x-www-form-urlencoded`, exactly as the official Python
/// SDK does: keys sorted, values escaped with the rules of Python's `quote_plus`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(form_encoded_len_bound(fields));
    push_form(&mut out, fields);
    out
}

/// At least the length of [`form_encode`]'s output: every byte escaped.
pub(crate) fn form_encoded_len_bound(fields: &[(&str, &str)]) -> usize {
    fields
        .iter()
        .map(|(k, v)| (k.len() + v.len()) * 3 + 2)
        .sum()
}

/// Appends [`form_encode`] of `fields` to `out`.
pub(crate) fn push_form(out: &mut String, fields: &[(&str, &str)]) {
    // A call has a few fields: sorted on the stack.
    const STACK_FIELDS: usize = 8;
    let mut on_stack = [("", ""); STACK_FIELDS];
    let mut on_heap = Vec::new();
    let sorted: &mut [(&str, &str)] = if fields.len() <= STACK_FIELDS {
        on_stack[..fields.len()].copy_from_slice(fields);
        &mut on_stack[..fields.len()]
    } else {
        on_heap.extend_from_slice(fields);
        &mut on_heap
    };
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (index, (key, value)) in sorted.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        push_quote_plus(out, key);
        out.push('=');
        push_quote_plus(out, value);
    }
}

/// Appends the lower-case hex form of `bytes`.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &byte in bytes {
        out.push(HEX_LOWER[usize::from(byte >> 4)] as char);
        out.push(HEX_LOWER[usize::from(byte & 0x0f)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_plus(s: &str) -> String {
        let mut out = String::new();
        push_quote_plus(&mut out, s);
        out
    }

    #[test]
    fn quote_plus_matches_python() {
        // Expected values are what CPython 3.11's urllib.parse.quote_plus returns.
        assert_eq!(quote_plus("a+b/c=d e*f~g"), "a%2Bb%2Fc%3Dd+e%2Af~g");
        assert_eq!(quote_plus("中✓"), "%E4%B8%AD%E2%9C%93");
        assert_eq!(quote_plus("-_.~AZaz09"), "-_.~AZaz09");
        assert_eq!(quote_plus("\r\n&"), "%0D%0A%26");
    }

    #[test]
    fn multi_byte_characters_next_to_each_other_are_escaped_whole() {
        assert_eq!(quote_plus("中文"), "%E4%B8%AD%E6%96%87");
        assert_eq!(quote_plus("a中b✓"), "a%E4%B8%ADb%E2%9C%93");
        assert_eq!(quote_plus("é"), "%C3%A9");
    }

    #[test]
    fn rfc3986_writes_space_as_percent_20() {
        let mut out = String::new();
        push_rfc3986(&mut out, "a b*");
        assert_eq!(out, "a%20b%2A");
    }

    #[test]
    fn path_keeps_slashes() {
        let mut out = String::new();
        push_path(&mut out, "/a b/c");
        assert_eq!(out, "/a%20b/c");
    }

    #[test]
    fn form_encode_sorts_keys() {
        assert_eq!(form_encode(&[("b", "2"), ("a", "1")]), "a=1&b=2");
        assert_eq!(form_encode(&[]), "");
    }

    /// Random text over a mix of ASCII, reserved, multi-byte and control characters, from a
    /// fixed seed: the same cases every run.
    fn random_texts(count: usize, max_len: usize) -> Vec<String> {
        const CHARS: &[char] = &[
            'a', 'Z', '0', '-', '_', '.', '~', ' ', '+', '&', '=', '%', '/', '?', '#', '*', '\'',
            '\n', '\u{0}', '\u{7f}', 'é', '中', '😀', '\u{fffd}',
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = (next() % (max_len as u64 + 1)) as usize;
                (0..len)
                    .map(|_| CHARS[(next() % CHARS.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn form_encoding_round_trips() {
        let keys = random_texts(500, 20);
        let values = random_texts(500, 200);
        for (key, value) in keys.iter().zip(&values) {
            let body = form_encode(&[(key.as_str(), value.as_str())]);
            let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            assert_eq!(decoded, vec![(key.clone(), value.clone())], "{body}");
        }
    }

    #[test]
    fn only_unreserved_bytes_and_escapes_are_written() {
        for input in random_texts(1000, 100) {
            let mut out = String::new();
            push_rfc3986(&mut out, &input);
            assert!(
                out.bytes().all(|b| UNRESERVED[usize::from(b)] || b == b'%'),
                "{input:?} -> {out}"
            );
        }
    }
}
