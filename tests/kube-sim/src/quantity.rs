//! Kubernetes `resource.Quantity` parsing and canonical printing, for the two
//! dimensions the simulator accounts: CPU in millicores and memory (and counts) in units.

/// Parse a quantity into thousandths of a unit (so `500m` → 500, `2` → 2000,
/// `1Gi` → 1073741824000). `None` when the string is not a quantity.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (1, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    // value = digits * 10^(-frac_len) * multiplier; compute in milli-units.
    let digits: String = format!("{int_part}{frac_part}");
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let frac_len = frac_part.len() as i32;
    let (num_mul, exp10): (i128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        e if e.starts_with('e') || e.starts_with('E') => (1, e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    // milli: multiply by 1000 → exponent +3
    let exp = exp10 - frac_len + 3;
    let mut v = mantissa.checked_mul(num_mul)?;
    if exp >= 0 {
        v = v.checked_mul(10i128.checked_pow(exp as u32)?)?;
    } else {
        let d = 10i128.checked_pow((-exp) as u32)?;
        // Kubernetes rounds up fractional values to the smallest unit.
        v = (v + d - 1) / d;
    }
    Some(sign * v)
}

/// Parse CPU into millicores.
pub fn cpu_millis(s: &str) -> Option<i64> {
    parse_milli(s).and_then(|m| i64::try_from(m).ok())
}

/// Parse memory (or a count) into whole units, rounding up.
pub fn units(s: &str) -> Option<i64> {
    parse_milli(s).and_then(|m| i64::try_from((m + 999).div_euclid(1000)).ok())
}

/// Canonical CPU string: `2`, `500m`.
pub fn format_cpu(millis: i64) -> String {
    if millis % 1000 == 0 {
        format!("{}", millis / 1000)
    } else {
        format!("{millis}m")
    }
}

/// Canonical memory string in binary SI when it divides evenly (`896Mi`, `4Gi`),
/// else decimal SI (`1G`, `500k`), else plain bytes.
pub fn format_mem(bytes: i64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    const BIN: [(&str, i64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (suf, f) in BIN {
        if bytes % f == 0 {
            return format!("{}{suf}", bytes / f);
        }
    }
    const DEC: [(&str, i64); 5] = [
        ("P", 1_000_000_000_000_000),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ];
    for (suf, f) in DEC {
        if bytes % f == 0 {
            return format!("{}{suf}", bytes / f);
        }
    }
    bytes.to_string()
}

/// Print a quantity of the named resource canonically.
pub fn format_resource(resource: &str, value: i64) -> String {
    if resource.ends_with("cpu") {
        format_cpu(value)
    } else if resource.ends_with("memory") || resource.ends_with("storage") {
        format_mem(value)
    } else {
        value.to_string()
    }
}

/// Parse a quantity of the named resource into the unit [`format_resource`] prints.
pub fn parse_resource(resource: &str, s: &str) -> Option<i64> {
    if resource.ends_with("cpu") {
        cpu_millis(s)
    } else {
        units(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_kubernetes() {
        assert_eq!(cpu_millis("500m"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(cpu_millis("100u"), Some(1));
        assert_eq!(units("1Gi"), Some(1 << 30));
        assert_eq!(units("896Mi"), Some(896 << 20));
        assert_eq!(units("1e3"), Some(1000));
        assert_eq!(units("1k"), Some(1000));
        assert_eq!(units("1.5Gi"), Some(1536 << 20));
        assert_eq!(units("abc"), None);
        assert_eq!(units("1Qi"), None);
        assert_eq!(units(""), None);
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(format_cpu(1000), "1");
        assert_eq!(format_cpu(1500), "1500m");
        assert_eq!(format_mem(1 << 30), "1Gi");
        assert_eq!(format_mem(1536 << 20), "1536Mi");
        assert_eq!(format_mem(1_000_000_000), "1G");
        assert_eq!(format_mem(1023), "1023");
        assert_eq!(format_resource("requests.cpu", 3000), "3");
        assert_eq!(format_resource("pods", 10), "10");
    }
}
