//! The `expiry-time=` option value: parsing and comparison with the clock.

/// One `expiry-time=` value: a date and time, UTC or local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryTime {
    /// 1970 or later.
    pub year: u32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31 (a day past the month's end runs on into the next month, as with `mktime`).
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=60.
    pub second: u32,
    /// Written with a `Z` or `UTC` suffix; otherwise local time.
    pub utc: bool,
}

impl ExpiryTime {
    /// sshd's `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`,
    /// optionally followed by `Z` or `UTC` (any case).
    pub fn parse(v: &str) -> Option<ExpiryTime> {
        let b = v.as_bytes();
        let (digits, utc) = if b.len() > 1 && b[b.len() - 1].eq_ignore_ascii_case(&b'z') {
            (&v[..v.len() - 1], true)
        } else if b.len() > 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"utc") {
            (&v[..v.len() - 3], true)
        } else {
            (v, false)
        };
        if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let field = |r: std::ops::Range<usize>| -> u32 {
            digits.get(r).and_then(|f| f.parse().ok()).unwrap_or(0)
        };
        let e = ExpiryTime {
            year: field(0..4),
            month: field(4..6),
            day: field(6..8),
            hour: field(8..10),
            minute: field(10..12),
            second: field(12..14),
            utc,
        };
        let ok = e.year >= 1970
            && (1..=12).contains(&e.month)
            && (1..=31).contains(&e.day)
            && e.hour <= 23
            && e.minute <= 59
            && e.second <= 60;
        ok.then_some(e)
    }

    /// Seconds since the Unix epoch, reading the date and time as `utc_offset` seconds east
    /// of UTC (the offset is ignored for a UTC time).
    pub fn unix_time(&self, utc_offset: i64) -> i64 {
        // Days from 1970-01-01 to the civil date (the proleptic Gregorian calendar).
        let (y, m) = if self.month <= 2 {
            (i64::from(self.year) - 1, i64::from(self.month) + 9)
        } else {
            (i64::from(self.year), i64::from(self.month) - 3)
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        if self.utc {
            secs
        } else {
            secs - utc_offset
        }
    }
}

impl std::fmt::Display for ExpiryTime {
    /// sshd's `format_absolute_time` layout, `YYYY-MM-DDTHH:MM:SS`, with ` UTC` for a UTC time.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            if self.utc { " UTC" } else { "" }
        )
    }
}
