//! The param from a field of a JSON body.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body::Body;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::Field;
use super::body::find_in_body;
use super::{
    BodyLimits, CaptchaBody, ContentKind, DEFAULT_FIELD, ExtractError, ExtractFuture, check,
};
use crate::verify::{CaptchaVerifyParam, InvalidParam};

/// The param from a JSON body field, by default `captchaVerifyParam` (what Alibaba's
/// front-end template posts). A dotted path reaches into nested objects. Requests whose
/// content type is not JSON (gRPC's `application/grpc+json` included) are passed over
/// without reading their body; a body that is not valid JSON, or whose field is not a string,
/// has no param. A key of the path given twice in one object is refused
/// ([`InvalidParam::Ambiguous`]): JSON parsers differ on which copy counts.
#[derive(Debug, Clone)]
pub struct JsonField {
    path: Arc<str>,
}

impl JsonField {
    /// Reads the field at `path` (`a.b.c` for nested objects).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into().into(),
        }
    }

    /// The field path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Default for JsonField {
    fn default() -> Self {
        Self::new(DEFAULT_FIELD)
    }
}

/// The param at `path` in a JSON document already in memory.
pub(super) fn in_json(json: &[u8], path: &str) -> Result<Option<CaptchaVerifyParam>, ExtractError> {
    // A body that is not JSON has no param: the request is refused for want of one.
    match find(json, path) {
        Some(Found::Once(raw)) => check(Some(raw.as_bytes())),
        // A param is a string; anything else there is none.
        Some(Found::Missing | Found::Number(_) | Found::Other) | None => Ok(None),
        Some(Found::Twice) => Err(ExtractError::Invalid(InvalidParam::Ambiguous)),
    }
}

/// The string at `path` in a JSON document already in memory (an account name, say).
pub(super) fn json_string(json: &[u8], path: &str) -> Field {
    match find(json, path) {
        // A number is a name too (a phone number, an account id), as the app reads it.
        Some(Found::Once(value) | Found::Number(value)) => Field::One(value),
        Some(Found::Missing) => Field::Missing,
        Some(Found::Other) => Field::Ambiguous,
        // Not JSON throughout: the app's parser may still find a name (serde skips fields it
        // does not read without checking them), so which one it reads cannot be told.
        Some(Found::Twice) | None => Field::Ambiguous,
    }
}

/// What a JSON document holds at a path.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Nothing, or null.
    Missing,
    Once(String),
    /// A number where the path ends: its text.
    Number(String),
    /// A boolean, array or object where the path ends, or an array on the way.
    Other,
    /// A key of the path appears twice in one object.
    Twice,
}

/// Walks `json` to the string at `path`. Unlike `serde_json::Value`, which silently keeps the
/// last of two equal keys, it notices a second copy of any key on the path. `None`: the
/// document is not JSON throughout.
fn find(json: &[u8], path: &str) -> Option<Found> {
    let mut document = serde_json::Deserializer::from_slice(json);
    let walked = Seek(Some(path)).deserialize(&mut document);
    walked.and_then(|found| document.end().map(|()| found)).ok()
}

/// Looks for the rest of a dotted path in a JSON value; `None` once the path is used up, where
/// the value must be the string.
#[derive(Clone, Copy)]
struct Seek<'p>(Option<&'p str>);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<Found, D::Error> {
        value.deserialize_any(self)
    }
}

impl Seek<'_> {
    /// `found` where the path ends; anywhere else the path cannot go on through it.
    fn at_end(self, found: Found) -> Found {
        if self.0.is_none() {
            found
        } else {
            Found::Missing
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Found, E> {
        Ok(match self.0 {
            None => Found::Once(value.to_owned()),
            Some(_) => Found::Missing,
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Found, E> {
        Ok(self.at_end(Found::Other))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Found, E> {
        Ok(self.at_end(Found::Number(value.to_string())))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Found, E> {
        Ok(self.at_end(Found::Number(value.to_string())))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Found, E> {
        Ok(self.at_end(Found::Number(value.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Found, E> {
        Ok(Found::Missing)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Found, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        // Not `at_end`: serde fills a struct or a tuple from an array as from an object, so an
        // app may read a name in it where the path cannot go.
        Ok(Found::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Found, A::Error> {
        let Some(path) = self.0 else {
            while entries.next_entry::<Checked, Checked>()?.is_some() {}
            return Ok(Found::Other);
        };
        let (key, rest) = match path.split_once('.') {
            Some((key, rest)) => (key, Some(rest)),
            None => (path, None),
        };
        let mut found = Found::Missing;
        let mut copies = 0_usize;
        while let Some(is_key) = entries.next_key_seed(KeyIs(key))? {
            if is_key {
                // Every copy is walked, so the document is still checked in full.
                let inside = entries.next_value_seed(Seek(rest))?;
                copies += 1;
                found = if copies == 1 { inside } else { Found::Twice };
            } else {
                entries.next_value::<Checked>()?;
            }
        }
        Ok(found)
    }
}

/// Whether an object's key (unescaped) is the one sought.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, key: D) -> Result<bool, D::Error> {
        key.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Any JSON value, checked and dropped. `serde::de::IgnoredAny` would skip strings and
/// numbers without checking them (lone surrogates, numbers out of range); this keeps
/// `serde_json::Value`'s rule that a body is valid JSON in full or has no param, within the
/// parser's depth limit.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(value: D) -> Result<Self, D::Error> {
        value.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Checked, A::Error> {
        while entries.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

impl JsonField {
    pub(super) fn extract<B>(
        &self,
        request: Request<CaptchaBody<B>>,
        limits: BodyLimits,
    ) -> ExtractFuture<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        find_in_body(
            request,
            limits,
            ContentKind::Json,
            Arc::clone(&self.path),
            in_json,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old reading of `find`, for the tests: not JSON reads as missing.
    fn find_or_missing(json: &[u8], path: &str) -> Found {
        find(json, path).unwrap_or(Found::Missing)
    }

    fn once(param: &str) -> Found {
        Found::Once(param.to_owned())
    }

    #[test]
    fn paths_reach_nested_strings_only() {
        let json = br#"{"a": {"b": "x"}, "n": 1, "captchaVerifyParam": "p", "l": ["q"]}"#;
        assert_eq!(find_or_missing(json, "a.b"), once("x"));
        assert_eq!(find_or_missing(json, "captchaVerifyParam"), once("p"));
        assert_eq!(find_or_missing(json, "n"), Found::Number("1".into()));
        assert_eq!(find_or_missing(json, "a.c"), Found::Missing);
        assert_eq!(find_or_missing(json, "a"), Found::Other);
        assert_eq!(find_or_missing(json, "a.b.c"), Found::Missing);
        assert_eq!(find_or_missing(json, "l"), Found::Other);
        // serde fills a struct from an array: a name may be in it where the path cannot go.
        assert_eq!(find_or_missing(json, "l.0"), Found::Other);
        // A param is a string: a number, an object or a list there is no param. An account
        // may be a number; an object or a list there cannot be told.
        for path in ["n", "a", "l"] {
            assert_eq!(in_json(json, path), Ok(None), "{path}");
        }
        assert_eq!(json_string(json, "n"), Field::One("1".into()));
        assert_eq!(json_string(json, "a"), Field::Ambiguous);
        assert_eq!(json_string(json, "a.c"), Field::Missing);
        assert_eq!(
            find_or_missing(br#"["p"]"#, "captchaVerifyParam"),
            Found::Other
        );
        assert_eq!(
            json_string(br#"["ann", "pw"]"#, "username"),
            Field::Ambiguous
        );
        assert_eq!(in_json(br#"["p"]"#, "captchaVerifyParam"), Ok(None));
        assert_eq!(
            find_or_missing(br#""p""#, "captchaVerifyParam"),
            Found::Missing
        );
        // Keys are compared unescaped.
        assert_eq!(
            find_or_missing(br#"{"captcha\u0056erifyParam": "p"}"#, DEFAULT_FIELD),
            once("p")
        );
    }

    #[test]
    fn a_key_of_the_path_given_twice_at_any_level_is_ambiguous() {
        for (json, path) in [
            (
                r#"{"captchaVerifyParam": "p", "captchaVerifyParam": "q"}"#,
                DEFAULT_FIELD,
            ),
            (
                r#"{"captchaVerifyParam": "p", "captchaVerifyParam": "p"}"#,
                DEFAULT_FIELD,
            ),
            (
                r#"{"captchaVerifyParam": "p", "captcha\u0056erifyParam": 1}"#,
                DEFAULT_FIELD,
            ),
            (
                r#"{"captchaVerifyParam": null, "captchaVerifyParam": "q"}"#,
                DEFAULT_FIELD,
            ),
            (r#"{"a": {"b": "p", "b": "q"}}"#, "a.b"),
            (r#"{"a": {"b": "p"}, "a": {"c": "q"}}"#, "a.b"),
            (r#"{"a": 1, "a": {"b": "p"}}"#, "a.b"),
            (
                r#"{"x": 1, "a": {"y": [], "b": {"c": "p", "c": "q"}}}"#,
                "a.b.c",
            ),
        ] {
            assert_eq!(
                find_or_missing(json.as_bytes(), path),
                Found::Twice,
                "{json} at {path}"
            );
        }
        // Duplicates off the path are the handler's business.
        let json = br#"{"user": "a", "user": "b", "a": {"b": "p", "x": 1, "x": 2}}"#;
        assert_eq!(find_or_missing(json, "a.b"), once("p"));
        // The same name under different parents is no duplicate.
        let json = br#"{"b": "outer", "a": {"b": "p"}}"#;
        assert_eq!(find_or_missing(json, "a.b"), once("p"));
    }

    #[test]
    fn a_document_that_is_not_json_in_full_has_no_param() {
        for json in [
            &br#"{"captchaVerifyParam": "p"} trailing"#[..],
            br#"{"captchaVerifyParam": "p", "x": "\ud800"}"#,
            br#"{"captchaVerifyParam": "p", "x": 1e999999}"#,
            b"{\"captchaVerifyParam\": \"p\", \"x\": \"\xff\"}",
            br#"{"captchaVerifyParam": "p", "x": [1,]}"#,
            br#"{"captchaVerifyParam": "p""#,
        ] {
            assert_eq!(
                find(json, DEFAULT_FIELD),
                None,
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        let deep = format!(
            "{{\"x\": {}{}, \"captchaVerifyParam\": \"p\"}}",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(
            find_or_missing(deep.as_bytes(), DEFAULT_FIELD),
            Found::Missing
        );
    }
}
