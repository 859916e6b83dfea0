//! Untrusted bytes → a normalised [`Job`], or every problem at once.
//!
//! The bytes go through four gates — size, UTF-8, JSON syntax (duplicate keys included), then
//! the field rules in `rules` — and each problem carries a machine-readable [`ProblemCode`],
//! the JSON path of the offending field (`$.executor.dynamicAllocation.minExecutors`) and a
//! sentence for humans. Nothing here panics, whatever the input; the property tests in
//! `tests/validation.rs` (the `proptest!` block) hold it to that.

mod reader;
pub(crate) mod rules;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::model::{Job, JobId, Priority};

/// What kind of problem a field has; stable strings for machines (kebab-case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemCode {
    /// The message is larger than `limits.max_message_bytes`.
    TooLarge,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not JSON, or not a JSON object.
    MalformedJson,
    /// A JSON object repeats a key (ambiguous: parsers disagree on which wins).
    DuplicateKey,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field the model does not have.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// `apiVersion` is not `v1`.
    UnsupportedApiVersion,
    /// `id` is not a usable UUID.
    InvalidId,
    /// `name` breaks the name rule.
    InvalidName,
    /// `namespace` is not served by this orchestrator.
    UnknownNamespace,
    /// A value outside its allowed set or shape.
    InvalidValue,
    /// A cpu or memory amount that does not parse.
    InvalidQuantity,
    /// A number outside its bounds.
    OutOfRange,
    /// A node type the catalog does not define.
    UnknownNodeType,
    /// Two fields that cannot be given together.
    ConflictingFields,
    /// An environment variable name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidEnvName,
    /// A tag or annotation key that is not a Kubernetes label key.
    InvalidLabelKey,
    /// A tag value that is not a Kubernetes label value.
    InvalidLabelValue,
    /// A key the orchestrator sets itself (use the structured field named in the message).
    ReservedKey,
    /// A duration that does not parse.
    InvalidDuration,
    /// A timestamp that is not RFC 3339.
    InvalidTimestamp,
    /// A list or map with more entries than allowed.
    TooManyItems,
    /// A string longer than allowed.
    ValueTooLong,
    /// A string with a NUL or other control character where none is allowed.
    InvalidCharacter,
    /// `spot: true` but no spot placement is configured for the executor's node type.
    SpotUnavailable,
    /// Something a job may never do (e.g. a hostPath volume, `-Xmx` in javaOptions).
    Forbidden,
    /// A name that must be unique appears twice.
    Duplicate,
    /// A file or repository location that is not a supported URI.
    InvalidUri,
    /// A container image reference that does not parse.
    InvalidImage,
}

impl ProblemCode {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::TooLarge => "too-large",
            ProblemCode::NotUtf8 => "not-utf8",
            ProblemCode::MalformedJson => "malformed-json",
            ProblemCode::DuplicateKey => "duplicate-key",
            ProblemCode::WrongType => "wrong-type",
            ProblemCode::UnknownField => "unknown-field",
            ProblemCode::MissingField => "missing-field",
            ProblemCode::UnsupportedApiVersion => "unsupported-api-version",
            ProblemCode::InvalidId => "invalid-id",
            ProblemCode::InvalidName => "invalid-name",
            ProblemCode::UnknownNamespace => "unknown-namespace",
            ProblemCode::InvalidValue => "invalid-value",
            ProblemCode::InvalidQuantity => "invalid-quantity",
            ProblemCode::OutOfRange => "out-of-range",
            ProblemCode::UnknownNodeType => "unknown-node-type",
            ProblemCode::ConflictingFields => "conflicting-fields",
            ProblemCode::InvalidEnvName => "invalid-env-name",
            ProblemCode::InvalidLabelKey => "invalid-label-key",
            ProblemCode::InvalidLabelValue => "invalid-label-value",
            ProblemCode::ReservedKey => "reserved-key",
            ProblemCode::InvalidDuration => "invalid-duration",
            ProblemCode::InvalidTimestamp => "invalid-timestamp",
            ProblemCode::TooManyItems => "too-many-items",
            ProblemCode::ValueTooLong => "value-too-long",
            ProblemCode::InvalidCharacter => "invalid-character",
            ProblemCode::SpotUnavailable => "spot-unavailable",
            ProblemCode::Forbidden => "forbidden",
            ProblemCode::Duplicate => "duplicate",
            ProblemCode::InvalidUri => "invalid-uri",
            ProblemCode::InvalidImage => "invalid-image",
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with a job message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// Machine-readable kind.
    pub code: ProblemCode,
    /// JSON path of the field, `$` for the whole message.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.path, self.code, self.message)
    }
}

/// A refused message: all its problems, never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Rejection {
    /// Every problem found, in field order.
    pub problems: Vec<Problem>,
}

impl Rejection {
    /// A rejection with one problem about the whole message.
    pub fn single(code: ProblemCode, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                code,
                path: "$".into(),
                message: message.into(),
            }],
        }
    }

    /// Whether any problem has this code.
    pub fn has(&self, code: ProblemCode) -> bool {
        self.problems.iter().any(|p| p.code == code)
    }

    /// One line for logs and dead-letter headers: the first problem and how many more.
    pub fn summary(&self) -> String {
        match self.problems.as_slice() {
            [] => "invalid job".into(),
            [one] => one.to_string(),
            [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// What the transport knows about a message, used only where the body is silent: the AMQP
/// `message_id` when the body has no `id` (so a redelivered copy gets the same id), the
/// queue's priority when the body has no `priority`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageDefaults {
    /// Id for a body without `id` (otherwise a fresh UUID v7 is generated).
    pub id: Option<JobId>,
    /// Priority for a body without `priority` (otherwise `normal`).
    pub priority: Option<Priority>,
}

/// Parses and validates a job message body against the catalog.
pub fn parse_job(bytes: &[u8], catalog: &Catalog) -> Result<Job, Rejection> {
    parse_job_with(bytes, catalog, MessageDefaults::default())
}

/// [`parse_job`] with transport-supplied defaults for fields the body leaves out.
pub fn parse_job_with(
    bytes: &[u8],
    catalog: &Catalog,
    defaults: MessageDefaults,
) -> Result<Job, Rejection> {
    let limit = catalog.limits().max_message_bytes;
    if bytes.len() > limit {
        return Err(Rejection::single(
            ProblemCode::TooLarge,
            format!(
                "the message has {} bytes; at most {limit} are accepted",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::single(
            ProblemCode::NotUtf8,
            format!(
                "the message is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Rejection::single(
            ProblemCode::MalformedJson,
            "the message is empty; send a JSON object",
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::single(
            ProblemCode::MalformedJson,
            format!("the message is not valid JSON: {e}"),
        )
    })?;
    reader::check_no_duplicate_keys(text)
        .map_err(|message| Rejection::single(ProblemCode::DuplicateKey, message))?;
    validate_value_with(&value, catalog, defaults)
}

/// Validates an already-parsed JSON value (HTTP bodies arrive parsed; AMQP bodies use
/// [`parse_job`]).
pub fn validate_value(value: &Value, catalog: &Catalog) -> Result<Job, Rejection> {
    validate_value_with(value, catalog, MessageDefaults::default())
}

/// [`validate_value`] with defaults for fields the body leaves out.
pub fn validate_value_with(
    value: &Value,
    catalog: &Catalog,
    defaults: MessageDefaults,
) -> Result<Job, Rejection> {
    let mut ctx = reader::Ctx::new(catalog, defaults);
    match rules::job(&mut ctx, value) {
        Some(job) if ctx.is_clean() => Ok(job),
        _ => Err(Rejection {
            problems: ctx.into_problems(),
        }),
    }
}
