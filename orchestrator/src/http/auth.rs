//! Bearer-token authentication: each token has roles (`read`, `submit`, `admin`) and the
//! namespaces it may touch. Tokens are configured by their SHA-256 (so the config file holds
//! no secret) or, for local demos only, in plain text.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read jobs, queues, dead letters, schedules.
    Read,
    /// Submit and cancel jobs.
    Submit,
    /// Dead-letter operations, schedules, cancelling anyone's jobs.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Submit => "submit",
            Role::Admin => "admin",
        })
    }
}

/// `[auth]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Turns authentication off (local development only; logged loudly at start).
    #[serde(default)]
    pub disabled: bool,
    /// The accepted tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (for logs and audit; never the secret).
    pub name: String,
    /// Hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// The token itself; for demos and tests only.
    #[serde(default)]
    pub token: Option<String>,
    /// Roles granted.
    pub roles: Vec<Role>,
    /// Namespaces it may touch; `"*"` for all.
    pub namespaces: Vec<String>,
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token name.
    pub name: String,
    roles: BTreeSet<Role>,
    namespaces: Option<BTreeSet<String>>,
}

impl Caller {
    /// An all-powerful caller (authentication disabled).
    pub fn anonymous_admin() -> Self {
        Self {
            name: "anonymous".into(),
            roles: [Role::Read, Role::Submit, Role::Admin].into(),
            namespaces: None,
        }
    }

    /// Whether the caller has the role (admin implies every role, submit implies read).
    pub fn has(&self, role: Role) -> bool {
        self.roles.iter().any(|r| *r >= role)
    }

    /// Whether the caller may touch the namespace.
    pub fn may_access(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
    }

    /// The namespaces the caller is limited to (`None`: all).
    pub fn namespaces(&self) -> Option<&BTreeSet<String>> {
        self.namespaces.as_ref()
    }

    /// Checks role and namespace together, with the refusal users see.
    pub fn require(&self, role: Role, namespace: Option<&str>) -> Result<(), AuthError> {
        if !self.has(role) {
            return Err(AuthError::Forbidden(format!(
                "token {:?} lacks the {role} role",
                self.name
            )));
        }
        if let Some(ns) = namespace
            && !self.may_access(ns)
        {
            return Err(AuthError::Forbidden(format!(
                "token {:?} may not access namespace {ns:?}",
                self.name
            )));
        }
        Ok(())
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No or unknown credentials (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Known caller, not allowed (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
}

/// Checks `Authorization` headers against the configured tokens.
#[derive(Debug, Clone)]
pub struct Authenticator {
    disabled: bool,
    tokens: Vec<([u8; 32], Caller)>,
}

impl Authenticator {
    /// Builds the token table; refuses malformed entries with the key at fault.
    pub fn new(config: &AuthConfig) -> Result<Self, String> {
        let mut tokens = Vec::new();
        for (i, t) in config.tokens.iter().enumerate() {
            let key = format!("auth.tokens[{i}]");
            let hash = match (&t.token_sha256, &t.token) {
                (Some(h), None) => parse_hex32(h)
                    .ok_or_else(|| format!("{key}.token_sha256: not 64 hex digits"))?,
                (None, Some(plain)) if plain.len() >= 16 => sha256(plain.as_bytes()),
                (None, Some(_)) => {
                    return Err(format!(
                        "{key}.token: tokens must be at least 16 characters"
                    ));
                }
                _ => return Err(format!("{key}: give exactly one of token_sha256 or token")),
            };
            if t.roles.is_empty() {
                return Err(format!(
                    "{key}.roles: give at least one role (read, submit, admin)"
                ));
            }
            if t.namespaces.is_empty() {
                return Err(format!(
                    "{key}.namespaces: list namespaces, or \"*\" for all"
                ));
            }
            if tokens.iter().any(|(h, _)| *h == hash) {
                return Err(format!("{key}: the same token is configured twice"));
            }
            let namespaces = (!t.namespaces.iter().any(|n| n == "*"))
                .then(|| t.namespaces.iter().cloned().collect());
            tokens.push((
                hash,
                Caller {
                    name: t.name.clone(),
                    roles: t.roles.iter().copied().collect(),
                    namespaces,
                },
            ));
        }
        Ok(Self {
            disabled: config.disabled,
            tokens,
        })
    }

    /// Whether authentication is off.
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// The caller behind an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        if self.disabled {
            return Ok(Caller::anonymous_admin());
        }
        let header = header.ok_or_else(|| {
            AuthError::Unauthenticated(
                "missing Authorization header; send \"Authorization: Bearer <token>\"".into(),
            )
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AuthError::Unauthenticated(
                    "the Authorization header is not \"Bearer <token>\"".into(),
                )
            })?;
        let presented = sha256(token.as_bytes());
        // Compare against every entry without early exit, in constant time per entry.
        let mut found = None;
        for (hash, caller) in &self.tokens {
            if constant_time_eq(hash, &presented) {
                found = Some(caller);
            }
        }
        found
            .cloned()
            .ok_or_else(|| AuthError::Unauthenticated("unknown token".into()))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            disabled: false,
            tokens: vec![
                TokenConfig {
                    name: "team-a-ci".into(),
                    token_sha256: Some(
                        "4d253df88489464f4caf405f500e02540f3f19dcc63089e1e77375b1277c390e".into(),
                    ),
                    token: None,
                    roles: vec![Role::Submit],
                    namespaces: vec!["team-a".into()],
                },
                TokenConfig {
                    name: "ops".into(),
                    token_sha256: None,
                    token: Some("ops-token-0123456789".into()),
                    roles: vec![Role::Admin],
                    namespaces: vec!["*".into()],
                },
            ],
        }
    }

    #[test]
    fn tokens_map_to_callers_with_scopes() {
        let auth = Authenticator::new(&config()).unwrap();
        // sha256("team-a-secret-token") is the configured hash.
        let ci = auth
            .authenticate(Some("Bearer team-a-secret-token"))
            .unwrap();
        assert_eq!(ci.name, "team-a-ci");
        assert!(ci.has(Role::Read) && ci.has(Role::Submit) && !ci.has(Role::Admin));
        assert!(ci.may_access("team-a") && !ci.may_access("team-b"));
        assert!(ci.require(Role::Submit, Some("team-a")).is_ok());
        assert!(
            matches!(ci.require(Role::Submit, Some("team-b")), Err(AuthError::Forbidden(m)) if m.contains("team-b"))
        );
        assert!(
            matches!(ci.require(Role::Admin, None), Err(AuthError::Forbidden(m)) if m.contains("admin"))
        );

        let ops = auth
            .authenticate(Some("Bearer ops-token-0123456789"))
            .unwrap();
        assert!(ops.has(Role::Admin) && ops.may_access("anything"));
    }

    #[test]
    fn bad_credentials_are_unauthenticated() {
        let auth = Authenticator::new(&config()).unwrap();
        for header in [
            None,
            Some(""),
            Some("Basic dXNlcjpwYXNz"),
            Some("Bearer "),
            Some("Bearer wrong-token-xxxxxxxx"),
            Some("team-a-secret-token"),
        ] {
            assert!(
                matches!(
                    auth.authenticate(header),
                    Err(AuthError::Unauthenticated(_))
                ),
                "{header:?}"
            );
        }
    }

    #[test]
    fn malformed_token_config_is_refused_with_its_key() {
        let mut c = config();
        c.tokens[0].token_sha256 = Some("xyz".into());
        assert!(
            Authenticator::new(&c)
                .unwrap_err()
                .contains("auth.tokens[0].token_sha256")
        );
        let mut c = config();
        c.tokens[1].token = Some("short".into());
        assert!(Authenticator::new(&c).unwrap_err().contains("at least 16"));
        let mut c = config();
        c.tokens[1].roles.clear();
        assert!(
            Authenticator::new(&c)
                .unwrap_err()
                .contains("auth.tokens[1].roles")
        );
        let mut c = config();
        c.tokens[0].token = Some("x".repeat(20));
        assert!(Authenticator::new(&c).unwrap_err().contains("exactly one"));
        let mut c = config();
        c.tokens[0].token_sha256 = None;
        c.tokens[0].token = Some("ops-token-0123456789".into());
        assert!(Authenticator::new(&c).unwrap_err().contains("twice"));
    }

    #[test]
    fn disabled_auth_admits_everyone_as_admin() {
        let auth = Authenticator::new(&AuthConfig {
            disabled: true,
            tokens: vec![],
        })
        .unwrap();
        assert!(auth.authenticate(None).unwrap().has(Role::Admin));
    }
}
