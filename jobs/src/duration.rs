//! Durations written the human way, as jobs and the config write them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the human way (`90s`, `15m`, `2h30m`, `7d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobDuration(pub Duration);

impl fmt::Display for JobDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl FromStr for JobDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim()).map(Self).map_err(|e| {
            format!("invalid duration {s:?}: {e} (write e.g. \"90s\", \"15m\", \"2h30m\", \"7d\")")
        })
    }
}

impl Serialize for JobDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_and_print() {
        let d: JobDuration = "2h30m".parse().unwrap();
        assert_eq!(d.0, Duration::from_secs(9000));
        assert_eq!(d.to_string(), "2h 30m");
        assert!("soon".parse::<JobDuration>().unwrap_err().contains("90s"));
    }
}
