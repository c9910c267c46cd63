//! Request timestamps: ISO-8601 basic (`20150830T123600Z`), the HTTP `Date` form, and formatting.
//!
//! Hand-rolled (civil-date arithmetic on Unix seconds) because the verifier needs exactly these
//! two formats, UTC only, and nothing else a date crate brings.

/// `YYYYMMDDTHHMMSSZ`, the form used in `X-Amz-Date` and the string to sign.
pub(crate) type BasicFormat = [u8; 16];

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds; `None` unless exactly that shape and a real
/// calendar date and time.
pub(crate) fn parse_basic(s: &[u8]) -> Option<i64> {
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[4..6])?;
    let day = digits(&s[6..8])?;
    let hour = digits(&s[9..11])?;
    let minute = digits(&s[11..13])?;
    let second = digits(&s[13..15])?;
    to_unix(year, month, day, hour, minute, second)
}

/// Parses the preferred HTTP date form (RFC 9110 IMF-fixdate), `Sun, 30 Aug 2015 12:36:00 GMT`,
/// which AWS accepts in a `Date` header when `X-Amz-Date` is absent. The obsolete RFC 850 and
/// asctime forms are not accepted; no SDK sends them.
pub(crate) fn parse_http_date(s: &[u8]) -> Option<i64> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    // "Sun, 30 Aug 2015 12:36:00 GMT"
    //  0123456789012345678901234567 8
    if s.len() != 29
        || &s[3..5] != b", "
        || s[7] != b' '
        || s[11] != b' '
        || s[16] != b' '
        || s[19] != b':'
        || s[22] != b':'
        || &s[25..] != b" GMT"
    {
        return None;
    }
    if !WEEKDAYS.iter().any(|w| &s[0..3] == *w) {
        return None;
    }
    let day = digits(&s[5..7])?;
    let month = MONTHS.iter().position(|m| &s[8..11] == *m)? as u32 + 1;
    let year = digits(&s[12..16])?;
    let hour = digits(&s[17..19])?;
    let minute = digits(&s[20..22])?;
    let second = digits(&s[23..25])?;
    to_unix(year, month, day, hour, minute, second)
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`. Years outside 0..=9999 cannot come from a
/// parsed request; they are clamped so formatting never fails.
pub(crate) fn format_basic(unix: i64) -> BasicFormat {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let year = year.clamp(0, 9999) as u32;
    let mut out = *b"00000000T000000Z";
    put(&mut out[0..4], year);
    put(&mut out[4..6], month);
    put(&mut out[6..8], day);
    put(&mut out[9..11], (secs / 3600) as u32);
    put(&mut out[11..13], (secs / 60 % 60) as u32);
    put(&mut out[13..15], (secs % 60) as u32);
    out
}

fn put(dst: &mut [u8], mut value: u32) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn to_unix(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    // Leap seconds (:60) are refused: AWS's own signers never produce them.
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian
// calendar, with day 0 = 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // 2015-08-30T12:36:00Z, the AWS test-suite time.
    const SUITE: i64 = 1_440_938_160;

    #[test]
    fn parses_basic_format() {
        assert_eq!(parse_basic(b"20150830T123600Z"), Some(SUITE));
        assert_eq!(parse_basic(b"19700101T000000Z"), Some(0));
        assert_eq!(parse_basic(b"20000229T235959Z"), Some(951_868_799));
    }

    #[test]
    fn rejects_bad_basic_format() {
        for bad in [
            &b"20150830T123600"[..],
            b"20150830T123600z",
            b"2015-08-30T12:36:00Z",
            b"20150830 123600Z",
            b"20151330T123600Z",
            b"20150230T123600Z",
            b"20190229T000000Z",
            b"20150830T243600Z",
            b"20150830T126000Z",
            b"20150830T123660Z",
            b"2015083OT123600Z",
            b"+0150830T123600Z",
            b"",
        ] {
            assert_eq!(parse_basic(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn parses_http_date() {
        assert_eq!(
            parse_http_date(b"Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(SUITE)
        );
        assert_eq!(parse_http_date(b"Sun, 30 Aug 2015 12:36:00 UTC"), None);
        assert_eq!(parse_http_date(b"Sun, 30 Aug 2015 12:36:00 GMT "), None);
        assert_eq!(parse_http_date(b"Xyz, 30 Aug 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date(b"Sun, 30 Foo 2015 12:36:00 GMT"), None);
        assert_eq!(parse_http_date(b"Sunday, 30-Aug-15 12:36:00 GMT"), None);
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(&format_basic(SUITE), b"20150830T123600Z");
        assert_eq!(&format_basic(0), b"19700101T000000Z");
        // Walk a few years in uneven steps, across leap days and century rules.
        let mut t = -86_400 * 365 * 3;
        while t < 4_200_000_000 {
            assert_eq!(parse_basic(&format_basic(t)), Some(t));
            t += 86_400 * 7 + 3_607;
        }
    }
}
