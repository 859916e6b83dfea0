//! What runs: `type`, `imagePullPolicy`, `image`, `sparkVersion`, `imagePullSecrets`,
//! `mainApplicationFile`, `mainClass` and `arguments`, with the catalog's defaults applied.

use super::deps::check_uri;
use super::fields::{defaulted_str, optional_enum, required_str};
use crate::model::{AppType, PullPolicy};
use crate::names;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, MAX_STRING, Obj};

/// The program part of a job.
#[derive(Debug, PartialEq)]
pub(super) struct Program {
    pub(super) app_type: AppType,
    pub(super) image: String,
    pub(super) image_pull_policy: Option<PullPolicy>,
    pub(super) image_pull_secrets: Vec<String>,
    pub(super) main_application_file: String,
    pub(super) main_class: Option<String>,
    pub(super) arguments: Vec<String>,
    pub(super) spark_version: String,
}

/// Every program field, all checked before any is given up on.
pub(super) fn program(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Program> {
    let defaults = ctx.catalog.defaults();
    let app_type = optional_enum(
        ctx,
        obj,
        "type",
        &[
            ("Scala", AppType::Scala),
            ("Java", AppType::Java),
            ("Python", AppType::Python),
            ("R", AppType::R),
        ],
    )
    .unwrap_or(Some(defaults.app_type));
    let image_pull_policy = optional_enum(
        ctx,
        obj,
        "imagePullPolicy",
        &[
            ("Always", PullPolicy::Always),
            ("IfNotPresent", PullPolicy::IfNotPresent),
            ("Never", PullPolicy::Never),
        ],
    )
    .unwrap_or(defaults.image_pull_policy);
    let image = defaulted_str(
        ctx,
        obj,
        "image",
        defaults.image.as_deref(),
        "set image, or defaults.image in the config",
        names::check_image,
        P::InvalidImage,
    );
    let spark_version = defaulted_str(
        ctx,
        obj,
        "sparkVersion",
        defaults.spark_version.as_deref(),
        "set sparkVersion, or defaults.spark_version in the config",
        names::check_spark_version,
        P::InvalidValue,
    );
    let image_pull_secrets = image_pull_secrets(ctx, obj);
    let main_application_file = main_application_file(ctx, obj);
    let main_class = main_class(ctx, obj, app_type);
    let arguments = obj
        .get("arguments")
        .map(|(v, at)| ctx.string_list(v, &at, 1000, MAX_STRING, |_| Ok(())))
        .unwrap_or_default();
    Some(Program {
        app_type: app_type?,
        image: image?,
        image_pull_policy,
        image_pull_secrets,
        main_application_file: main_application_file?,
        main_class,
        arguments,
        spark_version: spark_version?,
    })
}

fn image_pull_secrets(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Vec<String> {
    obj.get("imagePullSecrets")
        .map(|(v, at)| {
            ctx.string_list(v, &at, 16, 253, |s| {
                names::check_dns_subdomain(s)
                    .map_err(|w| (P::InvalidValue, format!("{s:?} is not a Secret name: {w}")))
            })
        })
        .unwrap_or_default()
}

fn main_application_file(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<String> {
    let (s, at) = required_str(ctx, obj, "mainApplicationFile", 4096)?;
    match check_uri(s) {
        Ok(()) => Some(s.to_owned()),
        Err(why) => {
            ctx.push(P::InvalidUri, &at, why);
            None
        }
    }
}

/// A JVM entry point; `app_type` is `None` when `type` itself was invalid.
fn main_class(ctx: &mut Ctx<'_>, obj: &Obj<'_>, app_type: Option<AppType>) -> Option<String> {
    let (v, at) = obj.get("mainClass")?;
    let s = ctx.string(v, &at, 1024, false)?;
    if let Err(why) = check_class_name(s) {
        ctx.push(P::InvalidValue, &at, why);
        return None;
    }
    if matches!(app_type, Some(t) if !t.is_jvm()) {
        ctx.push(
            P::ConflictingFields,
            &at,
            "mainClass applies to Java and Scala applications only",
        );
        return None;
    }
    Some(s.to_owned())
}

fn check_class_name(s: &str) -> Result<(), String> {
    let ident = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    if s.split('.').all(ident) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a class name like org.example.Main"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{bare_catalog, problems_at, run_in, strings, table};
    use super::*;
    use crate::validate::MessageDefaults;

    #[test]
    fn class_names_are_dotted_identifiers() {
        for (s, ok) in [
            ("Main", true),
            ("org.example.Main", true),
            ("org.example.Main$Inner", true),
            ("_x.Y1", true),
            ("", false),
            ("org..Main", false),
            ("1org.Main", false),
            ("org.example.Main;rm", false),
            ("org example", false),
        ] {
            assert_eq!(check_class_name(s).is_ok(), ok, "{s:?}");
        }
    }

    #[test]
    fn main_class_is_for_jvm_applications_only() {
        let read =
            |t: Option<AppType>| move |ctx: &mut Ctx<'_>, obj: &Obj<'_>| main_class(ctx, obj, t);
        let jvm = Some(AppType::Java);
        table(
            vec![
                (json!({}), None, &[]),
                (json!({"mainClass": "a.B"}), Some("a.B".to_owned()), &[]),
                (
                    json!({"mainClass": "a..B"}),
                    None,
                    &[(P::InvalidValue, "$.mainClass")],
                ),
                (
                    json!({"mainClass": 1}),
                    None,
                    &[(P::WrongType, "$.mainClass")],
                ),
            ],
            read(jvm),
        );
        table(
            vec![(
                json!({"mainClass": "a.B"}),
                None,
                &[(P::ConflictingFields, "$.mainClass")],
            )],
            read(Some(AppType::Python)),
        );
        // An invalid type is reported on its own; mainClass is not blamed for it.
        table(
            vec![(json!({"mainClass": "a.B"}), Some("a.B".to_owned()), &[])],
            read(None),
        );
    }

    #[test]
    fn the_application_file_is_a_supported_uri() {
        table(
            vec![
                (
                    json!({"mainApplicationFile": "s3a://b/app.py"}),
                    Some("s3a://b/app.py".to_owned()),
                    &[],
                ),
                (
                    json!({}),
                    None,
                    &[(P::MissingField, "$.mainApplicationFile")],
                ),
                (
                    json!({"mainApplicationFile": "/opt/app.jar"}),
                    None,
                    &[(P::InvalidUri, "$.mainApplicationFile")],
                ),
                (
                    json!({"mainApplicationFile": "x".repeat(4097)}),
                    None,
                    &[(P::ValueTooLong, "$.mainApplicationFile")],
                ),
            ],
            main_application_file,
        );
    }

    #[test]
    fn pull_secrets_are_secret_names() {
        table(
            vec![
                (json!({}), vec![], &[]),
                (
                    json!({"imagePullSecrets": ["reg-cred"]}),
                    strings(&["reg-cred"]),
                    &[],
                ),
                (
                    json!({"imagePullSecrets": ["ok", "Not_OK"]}),
                    strings(&["ok"]),
                    &[(P::InvalidValue, "$.imagePullSecrets[1]")],
                ),
                (
                    json!({"imagePullSecrets": vec!["a"; 17]}),
                    vec![],
                    &[(P::TooManyItems, "$.imagePullSecrets")],
                ),
                (
                    json!({"imagePullSecrets": "a"}),
                    vec![],
                    &[(P::WrongType, "$.imagePullSecrets")],
                ),
            ],
            image_pull_secrets,
        );
    }

    fn minimal(extra: Value) -> Value {
        let mut v = json!({"mainApplicationFile": "local:///opt/app.jar"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    }

    #[test]
    fn defaults_fill_what_the_body_leaves_out() {
        let (got, problems) = run_in(
            &super::super::testing::catalog(),
            MessageDefaults::default(),
            &minimal(json!({"arguments": ["--day", "2026-01-31"]})),
            program,
        );
        assert_eq!(problems, vec![]);
        assert_eq!(
            got,
            Some(Program {
                app_type: AppType::Scala,
                image: "apache/spark:3.5.3".into(),
                image_pull_policy: None,
                image_pull_secrets: vec![],
                main_application_file: "local:///opt/app.jar".into(),
                main_class: None,
                arguments: strings(&["--day", "2026-01-31"]),
                spark_version: "3.5.3".into(),
            })
        );
    }

    #[test]
    fn without_catalog_defaults_image_and_version_are_required() {
        let (got, problems) = run_in(
            &bare_catalog(),
            MessageDefaults::default(),
            &minimal(json!({})),
            program,
        );
        assert_eq!(got, None);
        assert_eq!(
            problems,
            problems_at(&[
                (P::MissingField, "$.image"),
                (P::MissingField, "$.sparkVersion")
            ])
        );
    }

    #[test]
    fn program_reports_every_field_in_order() {
        let body = minimal(json!({
            "type": "Go",
            "imagePullPolicy": "Sometimes",
            "image": "bad image",
            "sparkVersion": "three",
            "arguments": [1],
        }));
        let (got, problems) = run_in(
            &super::super::testing::catalog(),
            MessageDefaults::default(),
            &body,
            program,
        );
        assert_eq!(got, None);
        assert_eq!(
            problems,
            problems_at(&[
                (P::InvalidValue, "$.type"),
                (P::InvalidValue, "$.imagePullPolicy"),
                (P::InvalidImage, "$.image"),
                (P::InvalidValue, "$.sparkVersion"),
                (P::WrongType, "$.arguments[0]"),
            ])
        );
    }
}
