//! The RBAC authorizer as the real API server runs it, as a pure decision:
//! [`authorize`] takes who asks ([`Identity`]), what they ask ([`Attributes`], built from
//! the request as `k8s.io/apiserver`'s request-info resolver does) and the policy
//! ([`Policy`], the Role/ClusterRole/RoleBinding/ClusterRoleBinding objects indexed by
//! subject) and returns a [`Decision`] with the real reason strings; [`forbidden`] turns a
//! denial into the real 403 `Status`.
//!
//! Semantics follow `plugin/pkg/auth/authorizer/rbac` and
//! `pkg/registry/rbac/validation`: ClusterRoleBindings first, then RoleBindings of the
//! request's namespace (a ClusterRole bound by a RoleBinding grants only there);
//! `*` in verbs, apiGroups, resources and nonResourceURLs; `*/sub` matches any
//! resource's subresource; `resourceNames` only match requests that carry a name; a
//! trailing `*` in a nonResourceURL is a prefix. `system:masters` bypasses RBAC.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::ApiError;

/// The group whose members bypass authorization (as the real server's privileged group).
pub const MASTERS: &str = "system:masters";

/// Who is asking: a user name and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Identity {
    /// `system:serviceaccount:NS:NAME` for a ServiceAccount.
    pub name: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl Identity {
    /// A user with the given groups (`system:authenticated` is added).
    pub fn user(name: &str, groups: &[&str]) -> Identity {
        let mut g: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        if !g.iter().any(|x| x == "system:authenticated") {
            g.push("system:authenticated".into());
        }
        Identity {
            name: name.to_string(),
            groups: g,
        }
    }

    /// A ServiceAccount's identity, with the groups the token authenticator gives it.
    pub fn service_account(namespace: &str, name: &str) -> Identity {
        Identity {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// Member of `system:masters`: every request is allowed.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }
}

/// What a request asks to do (`authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request for an API resource.
    Resource {
        /// get, list, watch, create, update, patch, delete, deletecollection.
        verb: String,
        /// `""` for the core group.
        group: String,
        /// Plural resource, e.g. `pods`.
        resource: String,
        /// e.g. `status`, `binding`, `log`; `""` for none.
        subresource: String,
        /// `""` for cluster scope.
        namespace: String,
        /// `""` when the request names no object (list, create, deletecollection).
        name: String,
    },
    /// A request for a path outside the resource tree (`/version`, `/apis`, ...).
    NonResource {
        /// The lower-cased HTTP method.
        verb: String,
        /// The URL path.
        path: String,
    },
}

impl Attributes {
    /// Resource attributes from borrowed parts.
    pub fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
        Attributes::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Non-resource attributes.
    pub fn non_resource(verb: &str, path: &str) -> Attributes {
        Attributes::NonResource {
            verb: verb.into(),
            path: path.into(),
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Attributes::Resource { namespace, .. } => namespace,
            Attributes::NonResource { .. } => "",
        }
    }
}

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    /// Verbs (`*` for all).
    pub verbs: Vec<String>,
    /// API groups (`""` core, `*` all).
    pub api_groups: Vec<String>,
    /// Resources, `res/sub`, `*/sub` or `*`.
    pub resources: Vec<String>,
    /// Object names; empty means any.
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/healthz`, `/apis/*`, `*`).
    pub non_resource_urls: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

impl PolicyRule {
    /// A rule from its JSON form.
    pub fn from_json(v: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(v.get("verbs")),
            api_groups: strings(v.get("apiGroups")),
            resources: strings(v.get("resources")),
            resource_names: strings(v.get("resourceNames")),
            non_resource_urls: strings(v.get("nonResourceURLs")),
        }
    }

    /// Whether this rule allows the request (`RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        let has = |list: &[String], x: &str| list.iter().any(|v| v == "*" || v == x);
        match a {
            Attributes::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                has(&self.verbs, verb)
                    && has(&self.api_groups, group)
                    && self.resource_matches(resource, subresource)
                    && (self.resource_names.is_empty()
                        || (!name.is_empty() && self.resource_names.iter().any(|n| n == name)))
            }
            Attributes::NonResource { verb, path } => {
                has(&self.verbs, verb)
                    && self.non_resource_urls.iter().any(|u| {
                        u == "*"
                            || u == path
                            || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
        }
    }

    fn resource_matches(&self, resource: &str, sub: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || (sub.is_empty() && r == resource)
                || (!sub.is_empty()
                    && (r.strip_prefix(resource).and_then(|x| x.strip_prefix('/')) == Some(sub)
                        || r.strip_prefix("*/") == Some(sub)))
        })
    }
}

/// Who a binding names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectKey {
    /// A user name (ServiceAccounts as `system:serviceaccount:NS:NAME`).
    User(String),
    /// A group.
    Group(String),
}

/// A RoleBinding (namespace set) or ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `None` for a ClusterRoleBinding.
    pub namespace: Option<String>,
    /// Binding name.
    pub name: String,
    /// `Role` or `ClusterRole`.
    pub role_kind: String,
    /// Role name.
    pub role_name: String,
    /// Subjects with the form the allow reason describes them in (`User "x"`).
    pub subjects: Vec<(SubjectKey, String)>,
    /// Part of the default policy every cluster has (label
    /// `kubernetes.io/bootstrapping: rbac-defaults`).
    pub bootstrap: bool,
}

impl Binding {
    /// A binding from its JSON form; `namespaced` is false for a ClusterRoleBinding.
    pub fn from_json(v: &Value, namespaced: bool) -> Binding {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
        let ns = s("/metadata/namespace").to_string();
        let subjects = v
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|sub| {
                        let kind = sub.get("kind").and_then(Value::as_str)?;
                        let name = sub.get("name").and_then(Value::as_str)?;
                        let sns = sub.get("namespace").and_then(Value::as_str).unwrap_or("");
                        match kind {
                            "User" => {
                                Some((SubjectKey::User(name.into()), format!("User {name:?}")))
                            }
                            "Group" => {
                                Some((SubjectKey::Group(name.into()), format!("Group {name:?}")))
                            }
                            "ServiceAccount" => {
                                // A namespace-less subject means the binding's own namespace.
                                let sns = if sns.is_empty() { ns.as_str() } else { sns };
                                if sns.is_empty() {
                                    return None;
                                }
                                Some((
                                    SubjectKey::User(format!("system:serviceaccount:{sns}:{name}")),
                                    format!("ServiceAccount {:?}", format!("{name}/{sns}")),
                                ))
                            }
                            _ => None,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Binding {
            namespace: namespaced.then_some(ns),
            name: s("/metadata/name").to_string(),
            role_kind: s("/roleRef/kind").to_string(),
            role_name: s("/roleRef/name").to_string(),
            subjects,
            bootstrap: s("/metadata/labels/kubernetes.io~1bootstrapping") == "rbac-defaults",
        }
    }

    fn describe(&self, subject: &str) -> String {
        match &self.namespace {
            None => format!(
                "ClusterRoleBinding {:?} of {} {:?} to {subject}",
                self.name, self.role_kind, self.role_name
            ),
            Some(ns) => format!(
                "RoleBinding {:?} of {} {:?} to {subject}",
                format!("{}/{ns}", self.name),
                self.role_kind,
                self.role_name
            ),
        }
    }
}

/// The RBAC objects, indexed so that a decision looks only at the bindings that name
/// the identity or one of its groups.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    bindings: Vec<Binding>,
    /// Namespace (`""` for ClusterRoleBindings) → subject → bindings, so a request
    /// looks only at the cluster bindings and those of its own namespace.
    by_subject: HashMap<String, HashMap<SubjectKey, Vec<usize>>>,
}

/// The verdict and the reason the real authorizer gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// `RBAC: allowed by ...`, or on denial the errors met (missing roles), or `""`.
    pub reason: String,
}

impl Policy {
    /// Build from the JSON objects of the four RBAC kinds.
    pub fn build<'a>(
        roles: impl IntoIterator<Item = &'a Value>,
        cluster_roles: impl IntoIterator<Item = &'a Value>,
        role_bindings: impl IntoIterator<Item = &'a Value>,
        cluster_role_bindings: impl IntoIterator<Item = &'a Value>,
    ) -> Policy {
        let rules = |v: &Value| -> Vec<PolicyRule> {
            v.get("rules")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(PolicyRule::from_json).collect())
                .unwrap_or_default()
        };
        let key = |v: &Value| {
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            (s("/metadata/namespace"), s("/metadata/name"))
        };
        let mut p = Policy::default();
        for r in roles {
            p.roles.insert(key(r), rules(r));
        }
        for r in cluster_roles {
            p.cluster_roles.insert(key(r).1, rules(r));
        }
        let mut add = |b: Binding| {
            let i = p.bindings.len();
            for (k, _) in &b.subjects {
                let ns = b.namespace.clone().unwrap_or_default();
                let ids = p
                    .by_subject
                    .entry(ns)
                    .or_default()
                    .entry(k.clone())
                    .or_default();
                if ids.last() != Some(&i) {
                    ids.push(i);
                }
            }
            p.bindings.push(b);
        };
        // ClusterRoleBindings are visited before RoleBindings, as the real authorizer does.
        for b in cluster_role_bindings {
            add(Binding::from_json(b, false));
        }
        for b in role_bindings {
            add(Binding::from_json(b, true));
        }
        p
    }

    /// How many bindings the policy holds.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    fn rules_of(&self, b: &Binding) -> Result<&[PolicyRule], String> {
        match (b.role_kind.as_str(), &b.namespace) {
            ("ClusterRole", _) => self
                .cluster_roles
                .get(&b.role_name)
                .map(Vec::as_slice)
                .ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        b.role_name
                    )
                }),
            ("Role", Some(ns)) => self
                .roles
                .get(&(ns.clone(), b.role_name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| {
                    format!("role.rbac.authorization.k8s.io {:?} not found", b.role_name)
                }),
            (kind, _) => Err(format!("unsupported role reference kind: {kind:?}")),
        }
    }
}

/// Decide a request as the RBAC authorizer does (members of `system:masters` are
/// allowed before RBAC is consulted).
pub fn authorize(who: &Identity, what: &Attributes, policy: &Policy) -> Decision {
    if who.is_master() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut candidates: Vec<usize> = Vec::new();
    let keys = std::iter::once(SubjectKey::User(who.name.clone()))
        .chain(who.groups.iter().cloned().map(SubjectKey::Group));
    for k in keys {
        for scope in ["", what.namespace()] {
            if let Some(ids) = policy.by_subject.get(scope).and_then(|m| m.get(&k)) {
                candidates.extend(ids);
            }
            if what.namespace().is_empty() {
                break;
            }
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let ns = what.namespace();
    let mut errors: Vec<String> = Vec::new();
    for i in candidates {
        let b = &policy.bindings[i];
        if let Some(bns) = &b.namespace
            && (ns.is_empty() || bns != ns)
        {
            continue;
        }
        let subject = b
            .subjects
            .iter()
            .find(|(k, _)| match k {
                SubjectKey::User(u) => *u == who.name,
                SubjectKey::Group(g) => who.groups.contains(g),
            })
            .map(|(_, d)| d.as_str())
            .unwrap_or("");
        match policy.rules_of(b) {
            Ok(rules) => {
                if rules.iter().any(|r| r.allows(what)) {
                    return Decision {
                        allowed: true,
                        reason: format!("RBAC: allowed by {}", b.describe(subject)),
                    };
                }
            }
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    let reason = match errors.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", errors[0]),
        _ => format!("RBAC: [{}]", errors.join(", ")),
    };
    Decision {
        allowed: false,
        reason,
    }
}

/// The 403 the real server sends when a request is not allowed (`responsewriters.Forbidden`).
pub fn forbidden(who: &Identity, what: &Attributes, reason: &str) -> ApiError {
    let user = &who.name;
    let (msg, group, resource, name) = match what {
        Attributes::NonResource { verb, path } => (
            format!("User {user:?} cannot {verb} path {path:?}"),
            "",
            "",
            "",
        ),
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            name,
        } => {
            let full = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {namespace:?}")
            };
            (
                format!(
                    "User {user:?} cannot {verb} resource {full:?} in API group {group:?} {scope}"
                ),
                group.as_str(),
                resource.as_str(),
                name.as_str(),
            )
        }
    };
    let err = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let gr = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if gr.is_empty() {
        format!("forbidden: {err}")
    } else if name.is_empty() {
        format!("{gr} is forbidden: {err}")
    } else {
        format!("{gr} {name:?} is forbidden: {err}")
    };
    let mut details = serde_json::Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !resource.is_empty() {
        details.insert("kind".into(), json!(resource));
    }
    ApiError {
        code: 403,
        reason: "Forbidden".into(),
        message,
        details: Some(Value::Object(details)),
    }
}

mod grants;

pub use grants::{Grant, grants, unused};

#[cfg(test)]
mod tests;
