//! Fault injection: error rates and latency per verb and resource, dropped watch
//! streams and forced `410 Gone`, plus the request counters behind `GET /sim/stats`.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::resources::ResourceDef;

/// Injected errors: with probability `rate`, a request matching `verb` and `resource`
/// (`"*"` for any) fails with `code`. kube's client retries 429, 503 and 504 on its own
/// (up to 15 times, exponential back-off), so those codes surface as latency, not errors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection` or `*`.
    #[serde(default = "any")]
    pub verb: String,
    /// Plural resource name (`pods`, `sparkapplications`, ...) or `*`.
    #[serde(default = "any")]
    pub resource: String,
    /// Probability in `[0, 1]`.
    pub rate: f64,
    /// HTTP code: 500 (default), 409, 403, 429, 503, 504, ...
    #[serde(default = "default_code")]
    pub code: u16,
    /// Stop after this many injections (unlimited when absent).
    #[serde(default)]
    pub count: Option<u64>,
}

/// Added latency for matching requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencyRule {
    /// Verb or `*`.
    #[serde(default = "any")]
    pub verb: String,
    /// Plural resource or `*`.
    #[serde(default = "any")]
    pub resource: String,
    /// Delay before the server answers (wall clock).
    #[serde(with = "crate::config::humantime_serde_compat")]
    pub delay: Duration,
}

fn any() -> String {
    "*".into()
}

fn default_code() -> u16 {
    500
}

/// `[faults]` in config and the body of `PUT /sim/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Error rules, first match wins.
    pub errors: Vec<ErrorRule>,
    /// Latency rules, all matches add up.
    pub latency: Vec<LatencyRule>,
    /// Close every watch stream after it has sent this many events.
    pub drop_watches_after: Option<u64>,
}

impl FaultConfig {
    /// Check rates and codes.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.errors.iter().enumerate() {
            if !(0.0..=1.0).contains(&r.rate) {
                return Err(format!("errors[{i}].rate: {} is not in [0, 1]", r.rate));
            }
            if !(400..=599).contains(&r.code) {
                return Err(format!(
                    "errors[{i}].code: {} is not an HTTP error code",
                    r.code
                ));
            }
        }
        Ok(())
    }
}

fn matches(rule_verb: &str, rule_res: &str, verb: &str, res: &str) -> bool {
    (rule_verb == "*" || rule_verb == verb) && (rule_res == "*" || rule_res == res)
}

/// Live fault state and counters.
#[derive(Debug)]
pub struct Faults {
    /// Current rules.
    pub config: FaultConfig,
    injected: Vec<u64>,
    rng: StdRng,
    /// Watches still to be answered with a 410 ERROR event.
    pub forced_gone: u64,
    /// Incremented to close every open watch.
    pub drop_generation: u64,
    /// Request counters: `"verb resource code"` → count.
    pub requests: BTreeMap<String, u64>,
    /// Errors injected so far.
    pub injected_total: u64,
}

impl Faults {
    /// New state from config.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        let injected = vec![0; config.errors.len()];
        Faults {
            config,
            injected,
            rng: StdRng::seed_from_u64(seed),
            forced_gone: 0,
            drop_generation: 0,
            requests: BTreeMap::new(),
            injected_total: 0,
        }
    }

    /// Replace the rules (counters of the old rules are dropped).
    pub fn set(&mut self, config: FaultConfig) {
        self.injected = vec![0; config.errors.len()];
        self.config = config;
    }

    /// The total added latency for a request.
    pub fn latency(&self, verb: &str, res: &str) -> Duration {
        self.config
            .latency
            .iter()
            .filter(|r| matches(&r.verb, &r.resource, verb, res))
            .map(|r| r.delay)
            .sum()
    }

    /// Decide whether this request fails, and how.
    pub fn error(&mut self, verb: &str, def: &ResourceDef, name: &str) -> Option<ApiError> {
        let idx = self.config.errors.iter().enumerate().position(|(i, r)| {
            matches(&r.verb, &r.resource, verb, def.plural)
                && r.count.is_none_or(|c| self.injected[i] < c)
        })?;
        let rule = self.config.errors[idx].clone();
        if !self.rng.random_bool(rule.rate.clamp(0.0, 1.0)) {
            return None;
        }
        self.injected[idx] += 1;
        self.injected_total += 1;
        Some(injected_error(rule.code, def, name))
    }

    /// Count a finished request.
    pub fn count(&mut self, verb: &str, res: &str, code: u16) {
        *self
            .requests
            .entry(format!("{verb} {res} {code}"))
            .or_insert(0) += 1;
    }
}

/// The error a fault of `code` produces, shaped like the real server's.
pub fn injected_error(code: u16, def: &ResourceDef, name: &str) -> ApiError {
    let name = if name.is_empty() { "unknown" } else { name };
    match code {
        409 => ApiError::conflict(def, name),
        403 => ApiError::forbidden(def, name, "injected fault (kube-sim)"),
        404 => ApiError::not_found(def, name),
        429 => ApiError::new(
            429,
            "TooManyRequests",
            "injected fault (kube-sim): too many requests, please try again later",
        ),
        503 => ApiError::new(
            503,
            "ServiceUnavailable",
            "injected fault (kube-sim): the server is currently unable to handle the request",
        ),
        504 => ApiError::new(
            504,
            "Timeout",
            "injected fault (kube-sim): the server was unable to return a response in the time allotted",
        ),
        500 => ApiError::internal("injected fault (kube-sim)"),
        other => ApiError::new(
            other,
            "InternalError",
            format!("injected fault (kube-sim) with code {other}"),
        ),
    }
}
