//! CPU and memory amounts as users write them in job messages and the catalog.
//!
//! CPU follows Kubernetes: whole or fractional cores (`2`, `0.5`) or millicores (`500m`).
//! Memory follows Spark, because job memory becomes `spark.driver.memory` /
//! `spark.executor.memory`: a one-letter suffix `k`, `m`, `g`, `t`, `p` (any case, optional
//! trailing `b`) is binary, like the JVM reads it, so `512m` is 512 MiB and `2g` is 2 GiB.
//! Kubernetes binary suffixes `Ki`, `Mi`, `Gi`, `Ti`, `Pi` are accepted with the same values.
//! A bare number is refused: Spark would read it as MiB and Kubernetes as bytes, and a silent
//! factor of a million is worse than an error. Kubernetes decimal suffixes (`G` = 10⁹) are not
//! accepted for the same reason: `2G` means 2 GiB to Spark.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;
const PIB: u64 = 1024 * TIB;

/// Largest CPU amount we parse: far beyond any node, small enough to never overflow sums.
const MAX_CPU_MILLIS: u64 = 1 << 40;
/// Largest memory amount we parse (1 EiB): beyond any node, no overflow when summed.
const MAX_MEMORY_BYTES: u64 = 1 << 60;

/// Why a quantity string was refused; the message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(String);

/// CPU in millicores (1 core = 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CpuMillis(pub u64);

/// Memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MemoryBytes(pub u64);

impl CpuMillis {
    /// Whole cores, rounded up: what `spark.*.cores` needs (an integer ≥ 1).
    pub fn ceil_cores(self) -> u64 {
        self.0.div_ceil(1000).max(1)
    }
}

impl MemoryBytes {
    /// Builds an amount from MiB.
    pub const fn from_mib(mib: u64) -> Self {
        Self(mib * MIB)
    }

    /// Whole MiB, rounded down (Spark truncates memory settings to MiB).
    pub fn mib(self) -> u64 {
        self.0 / MIB
    }

    /// Whole MiB, rounded up: never asks for less than was written.
    pub fn ceil_mib(self) -> u64 {
        self.0.div_ceil(MIB)
    }
}

/// Parses a CPU amount: `2`, `0.5`, `1.25`, `500m`.
pub fn parse_cpu(input: &str) -> Result<CpuMillis, QuantityError> {
    let s = input.trim();
    let bad = |why: &str| {
        QuantityError(format!(
            "invalid cpu quantity {input:?}: {why} (write cores like \"2\" or \"0.5\", or millicores like \"500m\")"
        ))
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let millis = if let Some(digits) = s.strip_suffix('m') {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("millicores must be a whole number"));
        }
        digits
            .parse::<u64>()
            .map_err(|_| bad("the number is too large"))?
    } else {
        let (whole, frac) = split_decimal(s).ok_or_else(|| bad("it is not a number"))?;
        if frac.len() > 3 && frac[3..].bytes().any(|b| b != b'0') {
            return Err(bad("it is more precise than 1m (a thousandth of a core)"));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("the number is too large"))?
        };
        let mut frac_millis = 0u64;
        for (i, b) in frac.bytes().take(3).enumerate() {
            frac_millis += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
        }
        whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(frac_millis))
            .ok_or_else(|| bad("the number is too large"))?
    };
    if millis > MAX_CPU_MILLIS {
        return Err(bad("the number is too large"));
    }
    Ok(CpuMillis(millis))
}

/// Parses a memory amount: `512m`, `2g`, `2G`, `1.5g`, `2Gi`, `4096Mi`, `64k`.
pub fn parse_memory(input: &str) -> Result<MemoryBytes, QuantityError> {
    let s = input.trim();
    let bad = |why: &str| {
        QuantityError(format!(
            "invalid memory quantity {input:?}: {why} (write e.g. \"512m\", \"2g\" or \"2Gi\"; one-letter units are binary, as in Spark)"
        ))
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let (whole, frac) = split_decimal(number).ok_or_else(|| bad("it is not a number"))?;
    if unit.is_empty() {
        return Err(bad("it has no unit"));
    }
    let multiplier = match unit {
        "Ki" => KIB,
        "Mi" => MIB,
        "Gi" => GIB,
        "Ti" => TIB,
        "Pi" => PIB,
        _ => match unit.to_ascii_lowercase().as_str() {
            "b" => 1,
            "k" | "kb" => KIB,
            "m" | "mb" => MIB,
            "g" | "gb" => GIB,
            "t" | "tb" => TIB,
            "p" | "pb" => PIB,
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        },
    };
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad("the number is too large"))?
    };
    let mut bytes = whole
        .checked_mul(u128::from(multiplier))
        .ok_or_else(|| bad("the number is too large"))?;
    // Fractions are exact down to a byte; anything finer is dropped.
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let digits: u128 = frac.parse().map_err(|_| bad("it is not a number"))?;
        bytes += digits * u128::from(multiplier) / 10u128.pow(frac.len() as u32);
    }
    if bytes > u128::from(MAX_MEMORY_BYTES) {
        return Err(bad("the number is too large"));
    }
    Ok(MemoryBytes(bytes as u64))
}

/// Splits `12.5` into (`12`, `5`); `None` unless it is digits with at most one dot and a digit.
fn split_decimal(s: &str) -> Option<(&str, &str)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    (digits(whole) && digits(frac) && !(whole.is_empty() && frac.is_empty()))
        .then_some((whole, frac))
}

impl fmt::Display for CpuMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl fmt::Display for MemoryBytes {
    /// Spark/JVM notation, exact: `2g`, `512m`, `1536k`, or bytes as `123b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b != 0 && b.is_multiple_of(GIB) {
            write!(f, "{}g", b / GIB)
        } else if b != 0 && b.is_multiple_of(MIB) {
            write!(f, "{}m", b / MIB)
        } else if b != 0 && b.is_multiple_of(KIB) {
            write!(f, "{}k", b / KIB)
        } else {
            write!(f, "{b}b")
        }
    }
}

impl FromStr for CpuMillis {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_cpu(s)
    }
}

impl FromStr for MemoryBytes {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_memory(s)
    }
}

impl Serialize for CpuMillis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for MemoryBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// CPU may be written as a JSON/TOML number (`2`, `0.5`) or a string (`"500m"`).
impl<'de> Deserialize<'de> for CpuMillis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match NumberOrString::deserialize(d)? {
            NumberOrString::Integer(n) => n.to_string(),
            NumberOrString::Float(x) => {
                if !x.is_finite() || x < 0.0 {
                    return Err(de::Error::custom(format!("invalid cpu quantity {x}")));
                }
                format!("{x}")
            }
            NumberOrString::String(s) => s,
        };
        parse_cpu(&text).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for MemoryBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_memory(&s).map_err(de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Integer(u64),
    Float(f64),
    String(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_kubernetes_forms() {
        for (input, millis) in [
            ("2", 2000),
            ("0.5", 500),
            (".5", 500),
            ("1.25", 1250),
            ("500m", 500),
            ("1m", 1),
            (" 3 ", 3000),
            ("1.500", 1500),
            ("0", 0),
        ] {
            assert_eq!(parse_cpu(input), Ok(CpuMillis(millis)), "{input}");
        }
    }

    #[test]
    fn cpu_refuses_with_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("-1", "not a number"),
            ("1.0005", "more precise than 1m"),
            ("0.5m", "whole number"),
            ("m", "whole number"),
            ("2k", "not a number"),
            ("1e3", "not a number"),
            ("abc", "not a number"),
            ("1.2.3", "not a number"),
            ("99999999999999999999", "too large"),
            ("9999999999999m", "too large"),
        ] {
            let err = parse_cpu(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
            assert!(err.contains("500m"), "message teaches the format: {err}");
        }
    }

    #[test]
    fn memory_accepts_spark_and_kubernetes_forms() {
        for (input, bytes) in [
            ("512m", 512 * MIB),
            ("512M", 512 * MIB),
            ("512mb", 512 * MIB),
            ("2g", 2 * GIB),
            ("2G", 2 * GIB),
            ("2Gi", 2 * GIB),
            ("4096Mi", 4 * GIB),
            ("1.5g", 3 * GIB / 2),
            ("0.5Gi", 512 * MIB),
            ("64k", 64 * KIB),
            ("1t", TIB),
            ("100b", 100),
        ] {
            assert_eq!(parse_memory(input), Ok(MemoryBytes(bytes)), "{input}");
        }
    }

    #[test]
    fn memory_refuses_with_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("2048", "no unit"),
            ("2 g", "unknown unit"),
            ("2x", "unknown unit"),
            ("2GiB", "unknown unit"),
            ("g", "not a number"),
            ("-1g", "not a number"),
            ("1..5g", "not a number"),
            ("99999999999999999999999p", "too large"),
            ("2000000p", "too large"),
        ] {
            let err = parse_memory(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["2", "500m", "1500m"] {
            assert_eq!(parse_cpu(text).unwrap().to_string(), text);
        }
        for text in ["2g", "512m", "1536k", "100b"] {
            assert_eq!(parse_memory(text).unwrap().to_string(), text);
        }
        assert_eq!(parse_memory("1.5g").unwrap().to_string(), "1536m");
    }

    #[test]
    fn serde_accepts_numbers_for_cpu() {
        let cpu: CpuMillis = serde_json::from_str("0.5").unwrap();
        assert_eq!(cpu, CpuMillis(500));
        let cpu: CpuMillis = serde_json::from_str("\"250m\"").unwrap();
        assert_eq!(cpu, CpuMillis(250));
        assert!(serde_json::from_str::<CpuMillis>("-2").is_err());
        assert!(serde_json::from_str::<MemoryBytes>("2048").is_err());
    }

    #[test]
    fn rounding_helpers() {
        assert_eq!(CpuMillis(1).ceil_cores(), 1);
        assert_eq!(CpuMillis(2001).ceil_cores(), 3);
        assert_eq!(CpuMillis(0).ceil_cores(), 1);
        assert_eq!(MemoryBytes(MIB + 1).ceil_mib(), 2);
        assert_eq!(MemoryBytes(MIB + 1).mib(), 1);
    }
}
