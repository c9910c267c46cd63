//! Dates for the `Date…` operators: ISO 8601 (`2024-05-01`, `2024-05-01T12:30:00Z`,
//! `2024-05-01T12:30:00.250+02:00`) or epoch seconds (`1714566600`).
//!
//! Hand-rolled civil-date arithmetic: the operators need these forms only, in UTC, and a date
//! crate would bring far more than that.

/// An instant: seconds since the Unix epoch and nanoseconds within that second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Parses a date; `None` unless it is one of the accepted forms and a real calendar date.
/// A date-time without a zone is UTC.
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let digits_only = b.strip_prefix(b"-").unwrap_or(b);
    if !digits_only.is_empty() && digits_only.iter().all(u8::is_ascii_digit) {
        return Some(Timestamp {
            secs: s.parse().ok()?,
            nanos: 0,
        });
    }
    let mut r = Reader { b, pos: 0 };
    let year = r.digits(4)?;
    r.expect(b'-')?;
    let month = r.digits(2)?;
    r.expect(b'-')?;
    let day = r.digits(2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let (mut seconds, mut nanos, mut offset) = (0i64, 0u32, 0i64);
    if r.pos < b.len() {
        if !matches!(r.next()?, b'T' | b't') {
            return None;
        }
        let hour = r.digits(2)?;
        r.expect(b':')?;
        let minute = r.digits(2)?;
        let mut second = 0;
        if r.peek() == Some(b':') {
            r.pos += 1;
            second = r.digits(2)?;
            if matches!(r.peek(), Some(b'.' | b',')) {
                r.pos += 1;
                nanos = r.fraction()?;
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        seconds = hour * 3600 + minute * 60 + second;
        offset = r.zone()?;
    }
    if r.pos != b.len() {
        return None;
    }
    Some(Timestamp {
        secs: days * 86_400 + seconds - offset,
        nanos,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            let c = self.next()?;
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }

    /// One to nine fraction digits, as nanoseconds; further digits are refused.
    fn fraction(&mut self) -> Option<u32> {
        let mut nanos = 0u32;
        let mut count = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            if count == 9 {
                return None;
            }
            nanos = nanos * 10 + u32::from(c - b'0');
            count += 1;
            self.pos += 1;
        }
        if count == 0 {
            return None;
        }
        Some(nanos * 10u32.pow(9 - count))
    }

    /// `Z`, `±hh`, `±hhmm`, `±hh:mm`, or nothing (UTC); the offset in seconds east of UTC.
    fn zone(&mut self) -> Option<i64> {
        let sign = match self.peek() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.pos += 1;
        let hours = self.digits(2)?;
        let minutes = match self.peek() {
            None => 0,
            Some(b':') => {
                self.pos += 1;
                self.digits(2)?
            }
            Some(_) => self.digits(2)?,
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 3600 + minutes * 60))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        parse(s).unwrap().secs
    }

    #[test]
    fn forms() {
        assert_eq!(secs("1970-01-01"), 0);
        assert_eq!(secs("1714566600"), 1_714_566_600);
        assert_eq!(secs("-1"), -1);
        assert_eq!(secs("2024-05-01T12:30:00Z"), 1_714_566_600);
        assert_eq!(secs("2024-05-01T12:30:00"), 1_714_566_600);
        assert_eq!(secs("2024-05-01T12:30Z"), 1_714_566_600);
        assert_eq!(secs("2024-05-01T14:30:00+02:00"), 1_714_566_600);
        assert_eq!(secs("2024-05-01T14:30:00+0200"), 1_714_566_600);
        assert_eq!(secs("2024-05-01T10:30:00-02"), 1_714_566_600);
        assert_eq!(secs("2000-02-29"), 951_782_400);
        let frac = parse("2024-05-01T12:30:00.25Z").unwrap();
        assert_eq!((frac.secs, frac.nanos), (1_714_566_600, 250_000_000));
        assert!(frac > parse("2024-05-01T12:30:00Z").unwrap());
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "-",
            "2024-5-01",
            "2024-13-01",
            "2023-02-29",
            "2024-04-31",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60Z",
            "2024-05-01T12:30:00.Z",
            "2024-05-01T12:30:00.1234567890Z",
            "2024-05-01 12:30:00Z",
            "2024-05-01T12:30:00Q",
            "2024-05-01T12:30:00+2",
            "2024-05-01Z",
            "99999999999999999999",
            "now",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
