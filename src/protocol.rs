//! The names and formats of the `VerifyIntelligentCaptcha` protocol, written once for the
//! client and the emulator. Tests keep their own literals, as an independent check.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The API's action (`x-acs-action`).
pub const ACTION: &str = "VerifyIntelligentCaptcha";
/// The API's version (`x-acs-version`).
pub const VERSION: &str = "2023-03-05";

/// STS's version, for `AssumeRole` and `AssumeRoleWithOIDC`.
pub const STS_VERSION: &str = "2015-04-01";
/// STS's action that assumes a role with an AccessKey.
pub const STS_ASSUME_ROLE: &str = "AssumeRole";
/// STS's action that assumes a role with an OIDC token, unsigned.
pub const STS_ASSUME_ROLE_WITH_OIDC: &str = "AssumeRoleWithOIDC";

/// The headers of a V3 request, as they are signed (lower case).
pub mod header {
    pub const HOST: &str = "host";
    pub const ACTION: &str = "x-acs-action";
    pub const VERSION: &str = "x-acs-version";
    pub const DATE: &str = "x-acs-date";
    pub const NONCE: &str = "x-acs-signature-nonce";
    pub const CONTENT_SHA256: &str = "x-acs-content-sha256";
    pub const CONTENT_TYPE: &str = "content-type";
    /// Signed with STS credentials, as the official SDKs do.
    pub const ACCESS_KEY_ID: &str = "x-acs-accesskey-id";
    /// The STS token, signed.
    pub const SECURITY_TOKEN: &str = "x-acs-security-token";
    pub const AUTHORIZATION: &str = "authorization";

    /// What every V3 request carries; all but `authorization` are signed.
    pub const REQUIRED: [&str; 7] = [
        AUTHORIZATION,
        HOST,
        ACTION,
        VERSION,
        DATE,
        NONCE,
        CONTENT_SHA256,
    ];
}

/// The body's media type: the parameters as a form.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// The header in which the gateway asks for a wait before the next request, in milliseconds.
pub const RETRY_AFTER_HEADER: &str = "x-acs-retry-after";

/// The header that carries the request id, as the body's `RequestId` does.
pub const REQUEST_ID_HEADER: &str = "x-acs-request-id";

/// What the client asks the gateway to answer in, as the official SDKs do.
pub const ACCEPT: &str = "application/json";

/// `x-acs-date` for `at`: `yyyy-MM-ddTHH:mm:ssZ`, in UTC.
pub fn format_date(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&utc.year()) {
        // Outside the format (the gateway refuses these anyway): written as it always was.
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        );
    }
    date_text(at).as_str().to_owned()
}

/// [`format_date`] without an allocation, for the years `0000` to `9999` (others are clamped).
pub fn date_text(at: OffsetDateTime) -> DateText {
    let at = at.to_offset(UtcOffset::UTC);
    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, digits: usize, value: u32| {
        let mut value = value;
        for index in (at..at + digits).rev() {
            out[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    // Years past 9999 (or before 0) do not fit the format; the gateway refuses them anyway.
    put(0, 4, at.year().clamp(0, 9999) as u32);
    put(5, 2, u32::from(u8::from(at.month())));
    put(8, 2, u32::from(at.day()));
    put(11, 2, u32::from(at.hour()));
    put(14, 2, u32::from(at.minute()));
    put(17, 2, u32::from(at.second()));
    DateText(out)
}

/// An `x-acs-date`, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DateText([u8; 20]);

impl DateText {
    /// The date as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for DateText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The time an `x-acs-date` names, if it is exactly `yyyy-MM-ddTHH:mm:ssZ` and a real time.
pub fn parse_date(date: &str) -> Option<OffsetDateTime> {
    let bytes = date.as_bytes();
    let well_formed = bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !well_formed {
        return None;
    }
    let number = |range: std::ops::Range<usize>| date[range].parse::<u16>().ok();
    let day = Date::from_calendar_date(
        i32::from(number(0..4)?),
        Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?,
        u8::try_from(number(8..10)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(14..16)?).ok()?,
        u8::try_from(number(17..19)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(day, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_in_the_gateway_format() {
        let at = OffsetDateTime::from_unix_timestamp(1_714_552_200).unwrap();
        assert_eq!(format_date(at), "2024-05-01T08:30:00Z");
        let late = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert_eq!(format_date(late), "9999-12-31T23:59:59Z");
        assert_eq!(
            format_date(OffsetDateTime::UNIX_EPOCH),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(parse_date("2024-05-01T08:30:00Z"), Some(at));
        for bad in [
            "2024-05-01T08:30:00",
            "2024-05-01 08:30:00Z",
            "2024-13-01T08:30:00Z",
            "2024-02-30T08:30:00Z",
            "2024-05-01T24:00:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
