//! Dates for the clock (`time` answers seconds since the epoch): a UTC date and time, to and
//! from seconds since 1970-01-01 00:00:00 UTC, in the proleptic Gregorian calendar, for years
//! 1970 to 9999.

use core::fmt;

/// A UTC date and time to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    /// 1970 to 9999.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to the month's length.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 59.
    pub second: u8,
}

fn leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Days in `month` of `year`.
pub fn month_days(year: u16, month: u8) -> u8 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl DateTime {
    /// Whether every field is in its range (the day within its month).
    pub fn is_valid(&self) -> bool {
        (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=month_days(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }

    /// Seconds since the epoch, or `None` for an invalid date.
    pub fn to_unix(&self) -> Option<u64> {
        if !self.is_valid() {
            return None;
        }
        // Years counted from March, so the leap day ends a year.
        let (year, month, day) = (u64::from(self.year), u64::from(self.month), u64::from(self.day));
        let y = if month <= 2 { year - 1 } else { year };
        let (era, yoe) = (y / 400, y % 400);
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + u64::from(self.hour) * 3600 + u64::from(self.minute) * 60 + u64::from(self.second))
    }

    /// The date `seconds` after the epoch, or `None` past 9999-12-31T23:59:59.
    pub fn from_unix(seconds: u64) -> Option<DateTime> {
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        let z = days + 719_468;
        let (era, doe) = (z / 146_097, z % 146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = era * 400 + yoe + u64::from(month <= 2);
        let date = DateTime {
            year: u16::try_from(year).ok()?,
            month: month as u8,
            day: day as u8,
            hour: (rest / 3600) as u8,
            minute: (rest / 60 % 60) as u8,
            second: (rest % 60) as u8,
        };
        date.is_valid().then_some(date)
    }
}

/// ISO 8601: `2030-01-02T03:04:05Z`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> DateTime {
        DateTime { year, month, day, hour, minute, second }
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(1970, 1, 1, 0, 0, 0).to_unix(), Some(0));
        assert_eq!(at(2000, 3, 1, 0, 0, 0).to_unix(), Some(951_868_800));
        assert_eq!(at(2024, 2, 29, 12, 0, 0).to_unix(), Some(1_709_208_000));
        assert_eq!(at(2030, 1, 2, 3, 4, 5).to_unix(), Some(1_893_553_445));
        assert_eq!(at(2030, 1, 2, 3, 4, 5).to_string(), "2030-01-02T03:04:05Z");
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        // Every day from 1970 to 2500 at a moving time of day, both ways.
        let mut seconds = 0u64;
        while seconds < 16_725_225_600 {
            let date = DateTime::from_unix(seconds).unwrap();
            assert_eq!(date.to_unix(), Some(seconds), "{date}");
            seconds += 86_400 + 3_607;
        }
    }

    #[test]
    fn invalid_dates_are_refused() {
        assert_eq!(at(2023, 2, 29, 0, 0, 0).to_unix(), None);
        assert_eq!(at(2100, 2, 29, 0, 0, 0).to_unix(), None);
        assert!(at(2000, 2, 29, 0, 0, 0).to_unix().is_some());
        assert_eq!(at(2024, 4, 31, 0, 0, 0).to_unix(), None);
        assert_eq!(at(2024, 13, 1, 0, 0, 0).to_unix(), None);
        assert_eq!(at(2024, 1, 0, 0, 0, 0).to_unix(), None);
        assert_eq!(at(2024, 1, 1, 24, 0, 0).to_unix(), None);
        assert_eq!(at(1969, 12, 31, 0, 0, 0).to_unix(), None);
        assert_eq!(DateTime::from_unix(u64::MAX), None);
        assert_eq!(DateTime::from_unix(253_402_300_799).map(|d| d.year), Some(9999));
        assert_eq!(DateTime::from_unix(253_402_300_800), None);
    }
}
