//! The names of a console's log files: number 0 is the current one, higher numbers are older.

/// The log file number `n`: `console.log`, then `console.log.1` …
pub fn log_name(n: u32) -> String {
    match n {
        0 => "console.log".to_owned(),
        n => format!("console.log.{n}"),
    }
}

/// The time index of log file number `n`: `console.idx`, then `console.idx.1` …
pub fn index_name(n: u32) -> String {
    match n {
        0 => "console.idx".to_owned(),
        n => format!("console.idx.{n}"),
    }
}

/// The number of a log file's name, if it is one (`console.log` is 0).
pub(crate) fn log_number(name: &str) -> Option<u32> {
    if name == "console.log" {
        return Some(0);
    }
    let digits = name.strip_prefix("console.log.")?;
    let canonical = matches!(digits.as_bytes(), [b'1'..=b'9', ..])
        && digits.len() <= 9
        && digits.bytes().all(|b| b.is_ascii_digit());
    if canonical { digits.parse().ok() } else { None }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in [0, 1, 2, 17] {
            assert_eq!(log_number(&log_name(n)), Some(n));
        }
        for other in [
            "console.idx",
            "console.log.0",
            "console.log.01",
            "console.log.x",
            "x",
        ] {
            assert_eq!(log_number(other), None, "{other}");
        }
        assert_eq!(index_name(3), "console.idx.3");
    }
}
