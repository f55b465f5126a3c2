//! Time as UTC microseconds since the Unix epoch: how it is stored, hashed and
//! compared. Rendered as RFC 3339 with microseconds.

use std::fmt;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Self(us)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This instant moved by `days` whole days (back when negative),
    /// saturating at the ends of the range.
    pub const fn plus_days(self, days: i64) -> Self {
        Self(self.0.saturating_add(days.saturating_mul(MICROS_PER_DAY)))
    }

    /// RFC 3339 text, always with six fractional digits and `Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        match OffsetDateTime::from_unix_timestamp(secs) {
            Ok(dt) => {
                let base = dt
                    .replace_nanosecond(0)
                    .unwrap_or(dt)
                    .format(&Rfc3339)
                    .unwrap_or_default();
                // base looks like 2026-11-23T09:40:00Z
                format!("{}.{micros:06}Z", base.trim_end_matches('Z'))
            }
            Err(_) => format!("@{}us", self.0),
        }
    }

    /// Parses RFC 3339 text (any offset) into a timestamp.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        let us = dt.unix_timestamp_nanos() / 1000;
        i64::try_from(us).ok().map(Self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Reads RFC 3339 text (any offset), as written by `Serialize`.
impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_move_an_instant_and_saturate() {
        let t = Timestamp::parse_rfc3339("2026-11-30T07:00:00Z").unwrap();
        assert_eq!(t.plus_days(30).to_rfc3339(), "2026-12-30T07:00:00.000000Z");
        assert_eq!(t.plus_days(-90).to_rfc3339(), "2026-09-01T07:00:00.000000Z");
        assert_eq!(t.plus_days(0), t);
        assert_eq!(t.plus_days(i64::MAX).as_micros(), i64::MAX);
        let before_epoch = Timestamp::from_micros(-1);
        assert_eq!(before_epoch.plus_days(i64::MIN).as_micros(), i64::MIN);
    }

    #[test]
    fn renders_with_micros() {
        let t = Timestamp::from_micros(1_795_000_000_123_456);
        let s = t.to_rfc3339();
        assert!(s.ends_with(".123456Z"), "{s}");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert_eq!(
            Timestamp::from_micros(0).to_rfc3339(),
            "1970-01-01T00:00:00.000000Z"
        );
    }
}
