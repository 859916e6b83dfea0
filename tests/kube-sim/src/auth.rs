//! Authentication and authorization, off unless the configuration has an `[auth]`
//! section: static bearer tokens map to identities ([`AuthConfig`]), unknown or missing
//! tokens get the real `401 Unauthorized`, and every API request is decided by the
//! RBAC authorizer ([`crate::rbac`]) against the RBAC objects in the store (policy
//! rebuilt only when one of them changes). Allowed resource requests are counted in an
//! access log ([`AccessRecord`]) so tests can compare what a client used with what its
//! roles grant. The default ClusterRoles and bindings a real cluster bootstraps
//! (`cluster-admin`, `system:discovery`, `system:basic-user`,
//! `system:public-info-viewer`) are created at start.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::rbac::{self, Attributes, Decision, Identity, Policy};
use crate::resources::Res;
use crate::store::Store;

/// `[auth]`: who may call the API, by bearer token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `[[auth.users]]`: token → identity.
    pub users: Vec<UserConfig>,
}

/// `[[auth.users]]`: one bearer token and the identity it authenticates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The bearer token (any non-empty string without whitespace).
    pub token: String,
    /// A user name (exclusive with `service_account`).
    #[serde(default)]
    pub name: Option<String>,
    /// `NAMESPACE/NAME` of a ServiceAccount: the identity is
    /// `system:serviceaccount:NAMESPACE:NAME` with the ServiceAccount groups.
    #[serde(default)]
    pub service_account: Option<String>,
    /// Extra groups (`system:masters` makes an administrator that bypasses RBAC).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl UserConfig {
    /// The identity this token authenticates, or why the entry is invalid.
    pub fn identity(&self) -> Result<Identity, String> {
        if self.token.is_empty() || self.token.chars().any(char::is_whitespace) {
            return Err("auth.users.token: must be non-empty and without whitespace".into());
        }
        let mut id = match (&self.name, &self.service_account) {
            (Some(n), None) if !n.is_empty() => Identity::user(n, &[]),
            (None, Some(sa)) => match sa.split_once('/') {
                Some((ns, n))
                    if crate::validation::is_dns_label(ns)
                        && crate::validation::is_dns_subdomain(n) =>
                {
                    Identity::service_account(ns, n)
                }
                _ => {
                    return Err(format!(
                        "auth.users.service_account: {sa:?} is not NAMESPACE/NAME"
                    ));
                }
            },
            _ => {
                return Err(
                    "auth.users: exactly one of name or service_account must be set".into(),
                );
            }
        };
        for g in &self.groups {
            if !id.groups.contains(g) {
                id.groups.insert(id.groups.len() - 1, g.clone());
            }
        }
        Ok(id)
    }

    /// The names this entry answers to in [`AuthConfig::token_for`]: the user name, or
    /// both `NS/NAME` and `system:serviceaccount:NS:NAME`.
    fn answers_to(&self, who: &str) -> bool {
        match (&self.name, &self.service_account) {
            (Some(n), _) => n == who,
            (_, Some(sa)) => {
                sa == who
                    || sa
                        .split_once('/')
                        .is_some_and(|(ns, n)| who == format!("system:serviceaccount:{ns}:{n}"))
            }
            _ => false,
        }
    }
}

impl AuthConfig {
    /// An empty configuration (auth on, nobody can call yet).
    pub fn new() -> AuthConfig {
        AuthConfig::default()
    }

    /// Add an administrator (group `system:masters`, bypasses RBAC).
    pub fn admin(mut self, token: &str, name: &str) -> AuthConfig {
        self.users.push(UserConfig {
            token: token.into(),
            name: Some(name.into()),
            service_account: None,
            groups: vec![rbac::MASTERS.into()],
        });
        self
    }

    /// Add a user with groups.
    pub fn user(mut self, token: &str, name: &str, groups: &[&str]) -> AuthConfig {
        self.users.push(UserConfig {
            token: token.into(),
            name: Some(name.into()),
            service_account: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        });
        self
    }

    /// Add a ServiceAccount's token.
    pub fn service_account(mut self, token: &str, namespace: &str, name: &str) -> AuthConfig {
        self.users.push(UserConfig {
            token: token.into(),
            name: None,
            service_account: Some(format!("{namespace}/{name}")),
            groups: Vec::new(),
        });
        self
    }

    /// Check every entry; tokens must be unique.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            u.identity()?;
            if !seen.insert(&u.token) {
                return Err("auth.users: the same token is given twice".into());
            }
        }
        Ok(())
    }

    /// The token of a user (`name`), a ServiceAccount (`NS/NAME` or
    /// `system:serviceaccount:NS:NAME`); `None` if no entry matches.
    pub fn token_for(&self, who: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.answers_to(who))
            .map(|u| u.token.as_str())
    }

    /// The first administrator's token (what [`crate::SimHandle::client`] uses).
    pub fn admin_token(&self) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.groups.iter().any(|g| g == rbac::MASTERS))
            .map(|u| u.token.as_str())
    }
}

/// One kind of request a client made and was allowed: what the access log counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The user name (`system:serviceaccount:NS:NAME` for a ServiceAccount).
    pub user: String,
    /// The RBAC verb.
    pub verb: String,
    /// API group (`""` core).
    #[serde(rename = "apiGroup")]
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource, `""` for none.
    pub subresource: String,
    /// Namespace, `None` for a cluster-scope request.
    pub namespace: Option<String>,
}

/// An [`AccessRecord`] with how many requests it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// What was done.
    #[serde(flatten)]
    pub record: AccessRecord,
    /// How many times.
    pub count: u64,
}

/// Runtime state: tokens, the cached policy and the access log.
#[derive(Debug)]
pub struct AuthState {
    tokens: HashMap<String, Identity>,
    /// The configuration it was built from.
    pub config: AuthConfig,
    policy: Arc<Policy>,
    policy_key: [u64; 4],
    access: BTreeMap<AccessRecord, u64>,
}

const RBAC_KINDS: [Res; 4] = [
    Res::Role,
    Res::ClusterRole,
    Res::RoleBinding,
    Res::ClusterRoleBinding,
];

impl AuthState {
    /// Build from a validated configuration.
    pub fn new(config: AuthConfig) -> AuthState {
        let tokens = config
            .users
            .iter()
            .filter_map(|u| u.identity().ok().map(|id| (u.token.clone(), id)))
            .collect();
        AuthState {
            tokens,
            config,
            policy: Arc::new(Policy::default()),
            policy_key: [u64::MAX; 4],
            access: BTreeMap::new(),
        }
    }

    /// Who the `Authorization` header authenticates, or the real 401.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, ApiError> {
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        token
            .and_then(|t| self.tokens.get(t))
            .cloned()
            .ok_or_else(unauthorized)
    }

    /// The policy for the current RBAC objects (rebuilt only after one of them changed).
    pub fn policy(&mut self, store: &Store) -> Arc<Policy> {
        let key = RBAC_KINDS.map(|r| store.kind(r).last_rv);
        if key != self.policy_key {
            let values = |r: Res| store.kind(r).objects.values().map(|o| &o.value);
            self.policy = Arc::new(Policy::build(
                values(Res::Role),
                values(Res::ClusterRole),
                values(Res::RoleBinding),
                values(Res::ClusterRoleBinding),
            ));
            self.policy_key = key;
        }
        self.policy.clone()
    }

    /// Decide a request and, when allowed, count it.
    pub fn authorize(&mut self, store: &Store, who: &Identity, what: &Attributes) -> Decision {
        let policy = self.policy(store);
        let d = rbac::authorize(who, what, &policy);
        if d.allowed
            && let Attributes::Resource {
                verb,
                group,
                resource,
                subresource,
                namespace,
                ..
            } = what
        {
            let rec = AccessRecord {
                user: who.name.clone(),
                verb: verb.clone(),
                group: group.clone(),
                resource: resource.clone(),
                subresource: subresource.clone(),
                namespace: (!namespace.is_empty()).then(|| namespace.clone()),
            };
            *self.access.entry(rec).or_default() += 1;
        }
        d
    }

    /// The access log, sorted.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        self.access
            .iter()
            .map(|(r, n)| AccessEntry {
                record: r.clone(),
                count: *n,
            })
            .collect()
    }

    /// The identity a configured user or ServiceAccount authenticates as (`who` as in
    /// [`AuthConfig::token_for`]).
    pub fn identity_of(&self, who: &str) -> Option<Identity> {
        let token = self.config.token_for(who)?;
        self.tokens.get(token).cloned()
    }

    /// What the current policy grants `who`, each with whether the access log shows it
    /// used: the input of a least-privilege check.
    pub fn grants_of(&mut self, store: &Store, who: &str) -> Option<Vec<(rbac::Grant, bool)>> {
        let id = self.identity_of(who)?;
        let policy = self.policy(store);
        let log: Vec<AccessRecord> = self
            .access
            .keys()
            .filter(|r| r.user == id.name)
            .cloned()
            .collect();
        Some(
            rbac::grants(&id, &policy)
                .into_iter()
                .map(|g| {
                    let used = log.iter().any(|r| g.covers(r));
                    (g, used)
                })
                .collect(),
        )
    }

    /// Forget the access log.
    pub fn clear_access_log(&mut self) {
        self.access.clear();
    }
}

/// The real `401 Unauthorized` Status.
pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The default policy a real API server bootstraps that matters here: administrators,
/// discovery for every authenticated user, access reviews of oneself, version/health.
pub fn bootstrap_objects() -> Vec<Value> {
    let meta = |name: &str| {
        json!({"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
    };
    let role = |name: &str, rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": meta(name), "rules": rules})
    };
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
            .collect();
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subjects})
    };
    vec![
        role(
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        binding("cluster-admin", &[rbac::MASTERS]),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        binding("system:discovery", &["system:authenticated"]),
        role(
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        ),
        binding("system:basic-user", &["system:authenticated"]),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                "verbs": ["get"]}]),
        ),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_identities() {
        let cfg = AuthConfig::new()
            .admin("root-token", "admin")
            .service_account("sa-token", "ops", "orch")
            .user("u-token", "alice", &["devs"]);
        cfg.validate().unwrap();
        let st = AuthState::new(cfg.clone());
        let cases: Vec<(Option<&str>, Result<&str, u16>)> = vec![
            (Some("Bearer root-token"), Ok("admin")),
            (
                Some("bearer sa-token"),
                Ok("system:serviceaccount:ops:orch"),
            ),
            (Some("Bearer  u-token "), Ok("alice")),
            (None, Err(401)),
            (Some(""), Err(401)),
            (Some("Bearer"), Err(401)),
            (Some("Bearer "), Err(401)),
            (Some("Basic cm9vdC10b2tlbg=="), Err(401)),
            (Some("Bearer nope"), Err(401)),
            (Some("Bearer root-token-and-more"), Err(401)),
        ];
        for (header, want) in cases {
            let got = st.authenticate(header).map(|i| i.name).map_err(|e| e.code);
            assert_eq!(got.as_deref().map_err(|c| *c), want, "{header:?}");
        }
        let admin = st.authenticate(Some("Bearer root-token")).unwrap();
        assert!(admin.is_master());
        assert_eq!(admin.groups, ["system:masters", "system:authenticated"]);
        let alice = st.authenticate(Some("Bearer u-token")).unwrap();
        assert_eq!(alice.groups, ["devs", "system:authenticated"]);
        assert_eq!(cfg.token_for("ops/orch"), Some("sa-token"));
        assert_eq!(
            cfg.token_for("system:serviceaccount:ops:orch"),
            Some("sa-token")
        );
        assert_eq!(cfg.token_for("alice"), Some("u-token"));
        assert_eq!(cfg.token_for("bob"), None);
        assert_eq!(cfg.admin_token(), Some("root-token"));
        let e = unauthorized().to_status();
        assert_eq!(
            e,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        let bad = [
            AuthConfig::new().user("", "a", &[]),
            AuthConfig::new().user("has space", "a", &[]),
            AuthConfig::new().user("t", "", &[]),
            AuthConfig::new().service_account("t", "Bad_NS", "x"),
            AuthConfig::new().service_account("t", "ns", ""),
            AuthConfig {
                users: vec![UserConfig {
                    token: "t".into(),
                    name: Some("a".into()),
                    service_account: Some("ns/x".into()),
                    groups: vec![],
                }],
            },
            AuthConfig::new().user("t", "a", &[]).user("t", "b", &[]),
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}
