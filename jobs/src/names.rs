//! Name rules shared by jobs and the catalog, written out by hand (no regex engine) so that
//! each refusal can say exactly what is wrong.

/// Longest job name: the SparkApplication name adds a suffix and must stay within 63.
pub const MAX_JOB_NAME: usize = 53;

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` with at most `max` characters.
fn check_lower_dns_label(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > max {
        return Err(format!(
            "it has {} characters, at most {max} are allowed",
            s.chars().count()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{c:?} is not allowed: use lowercase letters, digits and '-'"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Job names, from the seed: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 53 characters.
pub fn check_job_name(s: &str) -> Result<(), String> {
    check_lower_dns_label(s, MAX_JOB_NAME)
}

/// RFC 1123 label (namespaces, volume names, node type names): at most 63 characters.
pub fn check_dns_label(s: &str) -> Result<(), String> {
    check_lower_dns_label(s, 63)
}

/// RFC 1123 subdomain (PriorityClass, Secret, ConfigMap, claim names): dot-separated labels,
/// at most 253 characters.
pub fn check_dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!(
            "it has {} characters, at most 253 are allowed",
            s.len()
        ));
    }
    if s.is_empty() {
        return Err("it is empty".into());
    }
    for part in s.split('.') {
        check_lower_dns_label(part, 63).map_err(|why| format!("part {part:?}: {why}"))?;
    }
    Ok(())
}

/// Label name part: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn check_label_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the name part is empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "the name part has {} characters, at most 63 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{c:?} is not allowed: use letters, digits, '-', '_' and '.'"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(s.chars().next()) || !alnum(s.chars().last()) {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Kubernetes label (and annotation) key: `[prefix/]name`, prefix a DNS subdomain.
pub fn check_label_key(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        Some((prefix, name)) => {
            check_dns_subdomain(prefix).map_err(|why| format!("prefix {prefix:?}: {why}"))?;
            check_label_name(name)
        }
        None => check_label_name(s),
    }
}

/// Kubernetes label value: empty, or a label name.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Ok(())
    } else {
        check_label_name(s)
    }
}

/// Environment variable name, POSIX style: `[A-Za-z_][A-Za-z0-9_]*`, at most 256 characters.
pub fn check_env_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > 256 {
        return Err("it is longer than 256 characters".into());
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("it must not start with a digit".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!("{c:?} is not allowed: use letters, digits and '_'"));
    }
    Ok(())
}

/// Container image reference: `[registry/]repository[:tag][@digest]`, no spaces or controls.
pub fn check_image(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the image is empty".into());
    }
    if s.len() > 512 {
        return Err("the image reference is longer than 512 characters".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@')))
    {
        return Err(format!(
            "image {s:?} contains {c:?}: an image reference is [registry/]repository[:tag][@digest]"
        ));
    }
    if s.starts_with(['/', ':', '@', '.', '-']) || s.ends_with(['/', ':', '@']) {
        return Err(format!("image {s:?} is not a valid reference"));
    }
    Ok(())
}

/// Spark version: `3.5`, `3.5.3`, optionally with a suffix like `-SNAPSHOT`.
pub fn check_spark_version(s: &str) -> Result<(), String> {
    let bad = || format!("spark version {s:?} is not a version like \"3.5.3\"");
    let (core, suffix) = match s.find(['-', '+']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    if s.len() > 64
        || !suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_follow_the_seed_rule() {
        for ok in ["a", "etl-daily", "0day", "a1-b2", &"x".repeat(53)] {
            assert!(check_job_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("-a", "start and end"),
            ("a-", "start and end"),
            ("Etl", "'E'"),
            ("a_b", "'_'"),
            ("a.b", "'.'"),
            ("ünï", "'ü'"),
            (&"x".repeat(54), "54 characters"),
        ] {
            let err = check_job_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn subdomains_and_label_keys() {
        assert!(check_dns_subdomain("spark-high").is_ok());
        assert!(check_dns_subdomain("a.b.c").is_ok());
        assert!(check_dns_subdomain("a..b").is_err());
        assert!(check_dns_subdomain(&"a".repeat(254)).is_err());
        for ok in ["team", "app.kubernetes.io/name", "a_b.c-d", "x/Y"] {
            assert!(check_label_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/x",
            "x/",
            "-x",
            "a b",
            "UPPER.example/x",
            &"k".repeat(64),
        ] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_3").is_ok());
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn env_names() {
        for ok in ["PATH", "_x", "SPARK_HOME", "a1"] {
            assert!(check_env_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A=B", "A B"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_and_versions() {
        for ok in [
            "apache/spark:3.5.3",
            "registry.local:5000/spark@sha256:abc",
            "spark",
        ] {
            assert!(check_image(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "img\n", "/x", "x:", &"i".repeat(513)] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
        for ok in ["3.5", "3.5.3", "4.0.0-preview1", "3.5.3+build.1"] {
            assert!(check_spark_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "3", "three", "3..5", "3.5.3.1", "3.5-b@d"] {
            assert!(check_spark_version(bad).is_err(), "{bad}");
        }
    }
}
