//! What the job brings along: `deps` (jars, files, Python files, archives, Maven packages and
//! repositories), and the URI rule every file location follows.

use serde_json::Value;

use crate::model::Deps;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, JsonPath, Obj};

/// Schemes Spark can fetch from.
const URI_SCHEMES: &[&str] = &[
    "local", "file", "s3", "s3a", "s3n", "gs", "hdfs", "viewfs", "abfs", "abfss", "wasb", "wasbs",
    "oss", "cos", "http", "https",
];

/// A check of one list entry: the problem code and why, when it fails.
type EntryCheck<'a> = dyn Fn(&str) -> Result<(), (P, String)> + 'a;

/// The `deps` field; what is wrong is reported and left out.
pub(super) fn deps(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Deps {
    obj.get("deps")
        .map(|(v, at)| deps_object(ctx, v, &at))
        .unwrap_or_default()
}

/// A file location Spark can fetch: a supported scheme and a path without whitespace or commas
/// (Spark joins lists with commas).
pub(super) fn check_uri(s: &str) -> Result<(), String> {
    let accepted = || URI_SCHEMES.join(", ");
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!(
            "{s:?} is not a URI like local:///opt/app.jar or s3a://bucket/app.py (schemes: {})",
            accepted()
        ));
    };
    if !URI_SCHEMES.contains(&scheme) {
        return Err(format!(
            "scheme {scheme:?} is not supported (schemes: {})",
            accepted()
        ));
    }
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return Err(format!(
            "{s:?} has an empty path, or whitespace or commas in it"
        ));
    }
    Ok(())
}

/// A Maven coordinate of `parts` parts: `group:artifact:version` (3) or `group:artifact` (2).
fn check_coordinate(s: &str, parts: usize) -> Result<(), String> {
    let ok = s.split(':').count() == parts
        && s.split(':').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a Maven coordinate ({})",
            if parts == 3 {
                "group:artifact:version"
            } else {
                "group:artifact"
            }
        ))
    }
}

/// A Maven repository: an http(s) URL.
fn check_repository(s: &str) -> Result<(), (P, String)> {
    match check_uri(s) {
        Ok(()) if s.starts_with("http://") || s.starts_with("https://") => Ok(()),
        Ok(()) => Err((
            P::InvalidUri,
            format!("{s:?}: repositories are http(s) URLs"),
        )),
        Err(w) => Err((P::InvalidUri, w)),
    }
}

fn deps_object(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> Deps {
    let fields = [
        "jars",
        "files",
        "pyFiles",
        "archives",
        "packages",
        "excludePackages",
        "repositories",
    ];
    let Some(obj) = ctx.object(value, path, &fields, &[]) else {
        return Deps::default();
    };
    let mut list = |key: &str, max_items: usize, max_len: usize, check: &EntryCheck<'_>| {
        obj.get(key)
            .map(|(v, at)| ctx.string_list(v, &at, max_items, max_len, check))
            .unwrap_or_default()
    };
    let uri = |s: &str| check_uri(s).map_err(|w| (P::InvalidUri, w));
    let coordinate =
        |parts| move |s: &str| check_coordinate(s, parts).map_err(|w| (P::InvalidValue, w));
    Deps {
        jars: list("jars", 1000, 4096, &uri),
        files: list("files", 1000, 4096, &uri),
        py_files: list("pyFiles", 1000, 4096, &uri),
        archives: list("archives", 1000, 4096, &uri),
        packages: list("packages", 1000, 512, &coordinate(3)),
        exclude_packages: list("excludePackages", 1000, 512, &coordinate(2)),
        repositories: list("repositories", 100, 2048, &check_repository),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{problems_at, run, table};
    use super::*;

    #[test]
    fn uris_need_a_known_scheme_and_a_clean_path() {
        for (s, ok) in [
            ("local:///opt/app.jar", true),
            ("s3a://bucket/app.py", true),
            ("https://repo.example/x.jar", true),
            ("hdfs://nn:8020/a/b.zip#alias", true),
            ("/opt/app.jar", false),
            ("ftp://host/app.jar", false),
            ("S3A://bucket/app.py", false),
            ("local://", false),
            ("s3a://bucket/a b.py", false),
            ("s3a://bucket/a.py,s3a://bucket/b.py", false),
            ("s3a://bucket/a\u{0}.py", false),
            ("", false),
        ] {
            assert_eq!(check_uri(s).is_ok(), ok, "{s:?}");
        }
    }

    #[test]
    fn coordinates_have_the_right_number_of_parts() {
        for (s, parts, ok) in [
            ("org.apache.spark:spark-avro_2.12:3.5.3", 3, true),
            ("org.apache.spark:spark-avro_2.12", 2, true),
            ("org.apache.spark:spark-avro_2.12", 3, false),
            ("a:b:c", 2, false),
            ("a::c", 3, false),
            ("a:b:c d", 3, false),
            ("a:b:c;rm -rf", 3, false),
            ("", 2, false),
        ] {
            assert_eq!(check_coordinate(s, parts).is_ok(), ok, "{s:?} {parts}");
        }
    }

    #[test]
    fn repositories_are_http_urls() {
        assert!(check_repository("https://repo1.maven.org/maven2").is_ok());
        assert_eq!(
            check_repository("s3a://bucket/repo").unwrap_err().0,
            P::InvalidUri
        );
        assert_eq!(
            check_repository("repo1.maven.org").unwrap_err().0,
            P::InvalidUri
        );
    }

    #[test]
    fn each_list_reports_bad_entries_at_their_index() {
        let good = json!({"deps": {
            "jars": ["local:///a.jar"],
            "pyFiles": ["s3a://b/x.py"],
            "packages": ["g:a:1"],
            "excludePackages": ["g:b"],
            "repositories": ["https://repo.example/m2"],
        }});
        let (deps_read, problems) = run(&good, deps);
        assert_eq!(problems, vec![]);
        assert_eq!(deps_read.jars, ["local:///a.jar"]);
        assert_eq!(deps_read.py_files, ["s3a://b/x.py"]);
        assert_eq!(deps_read.packages, ["g:a:1"]);
        assert_eq!(deps_read.exclude_packages, ["g:b"]);
        assert_eq!(deps_read.repositories, ["https://repo.example/m2"]);

        let bad = json!({"deps": {
            "jars": ["local:///a.jar", "a.jar"],
            "files": ["ftp://x/y"],
            "archives": [3],
            "packages": ["g:a"],
            "excludePackages": ["g:a:1"],
            "repositories": ["s3a://b/r"],
        }});
        let (deps_read, problems) = run(&bad, deps);
        assert_eq!(deps_read.jars, ["local:///a.jar"], "good entries stay");
        assert_eq!(
            problems,
            problems_at(&[
                (P::InvalidUri, "$.deps.jars[1]"),
                (P::InvalidUri, "$.deps.files[0]"),
                (P::WrongType, "$.deps.archives[0]"),
                (P::InvalidValue, "$.deps.packages[0]"),
                (P::InvalidValue, "$.deps.excludePackages[0]"),
                (P::InvalidUri, "$.deps.repositories[0]"),
            ])
        );
    }

    #[test]
    fn deps_is_an_object_of_known_lists_within_bounds() {
        table(
            vec![
                (json!({}), Deps::default(), &[]),
                (
                    json!({"deps": []}),
                    Deps::default(),
                    &[(P::WrongType, "$.deps")],
                ),
                (
                    json!({"deps": {"jar": []}}),
                    Deps::default(),
                    &[(P::UnknownField, "$.deps.jar")],
                ),
                (
                    json!({"deps": {"repositories": vec!["https://r/x"; 101]}}),
                    Deps::default(),
                    &[(P::TooManyItems, "$.deps.repositories")],
                ),
                (
                    json!({"deps": {"packages": ["g:a:".to_owned() + &"1".repeat(510)]}}),
                    Deps::default(),
                    &[(P::ValueTooLong, "$.deps.packages[0]")],
                ),
            ],
            deps,
        );
    }
}
