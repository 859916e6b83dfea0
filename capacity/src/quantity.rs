//! Kubernetes resource quantities (`500m`, `7.5Gi`, `1e3`) to integers, and integers back to
//! the short forms a user reads in a "why pending" message.
//!
//! Parsing rounds **up**, like the scheduler (`Quantity.MilliValue()` / `Value()`): a request
//! of `0.1m` cpu counts as 1 millicore, never as 0.

/// Parses a quantity into millis of its unit (cpu millicores), rounding up. `None` when the
/// string is not a quantity. Negative quantities (invalid for requests) are `Some(0)`.
pub fn parse_millis(s: &str) -> Option<u64> {
    parse_scaled(s, 1000)
}

/// Parses a quantity into whole units (memory bytes, pod counts), rounding up.
pub fn parse_units(s: &str) -> Option<u64> {
    parse_scaled(s, 1)
}

/// `value × scale`, rounded up, saturating at `u64::MAX`.
fn parse_scaled(s: &str, scale: u128) -> Option<u64> {
    let s = s.trim();
    let (negative, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return None;
    }
    // The value is mantissa × 10^-frac_digits × multiplier.
    let mut mantissa: u128 = 0;
    let mut overflow = false;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(c - b'0')))
        {
            Some(m) => mantissa = m,
            None => overflow = true,
        }
    }
    let frac_digits = i32::try_from(frac_part.len()).ok()?;
    let (binary_shift, decimal_exp): (u32, i32) = match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            (0, exp.parse::<i32>().ok()?)
        }
    };
    if negative {
        return Some(0);
    }
    if overflow {
        return Some(u64::MAX);
    }
    let exp = decimal_exp - frac_digits;
    let mut numerator = mantissa.checked_mul(scale).and_then(|n| {
        if binary_shift == 0 {
            Some(n)
        } else {
            n.checked_mul(1u128 << binary_shift)
        }
    });
    let mut denominator: u128 = 1;
    if exp >= 0 {
        numerator = numerator.and_then(|n| n.checked_mul(10u128.checked_pow(exp.unsigned_abs())?));
    } else {
        match 10u128.checked_pow(exp.unsigned_abs()) {
            Some(d) => denominator = d,
            // Smaller than anything countable but not zero: one unit.
            None => return Some(u64::from(mantissa > 0)),
        }
    }
    let Some(numerator) = numerator else {
        return Some(u64::MAX);
    };
    let value = numerator.div_ceil(denominator);
    Some(u64::try_from(value).unwrap_or(u64::MAX))
}

/// CPU for humans: `7.2` (cores), `0.25`, `16`.
pub fn fmt_cpu(millis: u64) -> String {
    trim_decimals(millis / 1000, millis % 1000, 1000)
}

/// Memory for humans: `7.2Gi`, `896Mi`, `512Ki`, `100B`; two decimals at most.
pub fn fmt_memory(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            // Hundredths, rounded to nearest.
            let hundredths = (u128::from(bytes) * 100 + u128::from(size) / 2) / u128::from(size);
            let hundredths = u64::try_from(hundredths).unwrap_or(u64::MAX);
            return format!(
                "{}{unit}",
                trim_decimals(hundredths / 100, hundredths % 100, 100)
            );
        }
    }
    format!("{bytes}B")
}

/// `whole.frac` with trailing zeros (and a bare dot) removed; `frac` is in `1/denominator`.
fn trim_decimals(whole: u64, frac: u64, denominator: u64) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let width = denominator.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_like_the_scheduler() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1", Some(1000)),
            ("500m", Some(500)),
            ("0.5", Some(500)),
            ("1.5", Some(1500)),
            ("2500u", Some(3)), // rounds up
            ("0.1m", Some(1)),
            ("1k", Some(1_000_000)),
            ("1e3", Some(1_000_000)),
            ("1E-3", Some(1)),
            ("+2", Some(2000)),
            ("-1", Some(0)),
            ("", None),
            ("m", None),
            ("1x", None),
            ("1.2.3", None),
            ("99999999999999999999999999999999999999999", Some(u64::MAX)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_millis(input), *want, "{input}");
        }
    }

    #[test]
    fn parses_memory_in_bytes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("896Mi", Some(896 << 20)),
            ("1Gi", Some(1 << 30)),
            ("7.5Gi", Some(7 * (1 << 30) + (1 << 29))),
            ("1G", Some(1_000_000_000)),
            ("128974848", Some(128_974_848)),
            ("129e6", Some(129_000_000)),
            ("123Mi", Some(123 << 20)),
            ("1500m", Some(2)), // 1.5 bytes rounds up
            ("16Ei", Some(u64::MAX)),
            ("110", Some(110)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_units(input), *want, "{input}");
        }
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(fmt_cpu(7200), "7.2");
        assert_eq!(fmt_cpu(250), "0.25");
        assert_eq!(fmt_cpu(16000), "16");
        assert_eq!(fmt_cpu(1), "0.001");
        assert_eq!(fmt_memory(6 << 30), "6Gi");
        assert_eq!(fmt_memory(7 * (1 << 30) + (1 << 30) / 5), "7.2Gi");
        assert_eq!(fmt_memory(896 << 20), "896Mi");
        assert_eq!(fmt_memory(512), "512B");
        assert_eq!(fmt_memory(1536), "1.5Ki");
    }
}
