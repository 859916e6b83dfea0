//! What a policy grants one identity, rule by rule, and which of those grants an access
//! log never used: the other half of least privilege (the authorizer already refuses
//! what is not granted).

use serde::Serialize;

use super::{Identity, Policy, SubjectKey};
use crate::auth::AccessRecord;

/// One (verb, apiGroup, resource) a binding grants, in a namespace or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// `None`: cluster-wide (a ClusterRoleBinding); else the RoleBinding's namespace.
    pub namespace: Option<String>,
    /// Verb (`*` possible).
    pub verb: String,
    /// API group (`*` possible).
    #[serde(rename = "apiGroup")]
    pub group: String,
    /// Resource as the rule names it: `pods`, `pods/status`, `*/scale`, `*`.
    pub resource: String,
    /// The rule's resourceNames (empty: any).
    #[serde(rename = "resourceNames")]
    pub resource_names: Vec<String>,
    /// `ClusterRoleBinding NAME` or `RoleBinding NS/NAME`, and the role.
    pub via: String,
}

impl Grant {
    /// Whether a request recorded in the access log used this grant.
    pub fn covers(&self, r: &AccessRecord) -> bool {
        let any = |pat: &str, v: &str| pat == "*" || pat == v;
        let full = if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let resource_ok = self.resource == "*"
            || self.resource == full
            || (!r.subresource.is_empty()
                && self.resource.strip_prefix("*/") == Some(r.subresource.as_str()));
        let scope_ok = match &self.namespace {
            None => true,
            Some(ns) => r.namespace.as_deref() == Some(ns.as_str()),
        };
        any(&self.verb, &r.verb) && any(&self.group, &r.group) && resource_ok && scope_ok
    }
}

/// Every resource grant the policy gives `who` (non-resource URLs and the default
/// policy every cluster has left out), sorted. A binding to a missing role grants nothing.
pub fn grants(who: &Identity, policy: &Policy) -> Vec<Grant> {
    let mut out = Vec::new();
    for b in &policy.bindings {
        let applies = b.subjects.iter().any(|(k, _)| match k {
            SubjectKey::User(u) => *u == who.name,
            SubjectKey::Group(g) => who.groups.contains(g),
        });
        if !applies || b.bootstrap {
            continue;
        }
        let Ok(rules) = policy.rules_of(b) else {
            continue;
        };
        let via = match &b.namespace {
            None => format!(
                "ClusterRoleBinding {} ({} {})",
                b.name, b.role_kind, b.role_name
            ),
            Some(ns) => format!(
                "RoleBinding {ns}/{} ({} {})",
                b.name, b.role_kind, b.role_name
            ),
        };
        for r in rules {
            for verb in &r.verbs {
                for group in &r.api_groups {
                    for resource in &r.resources {
                        out.push(Grant {
                            namespace: b.namespace.clone(),
                            verb: verb.clone(),
                            group: group.clone(),
                            resource: resource.clone(),
                            resource_names: r.resource_names.clone(),
                            via: via.clone(),
                        });
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The grants no request in `log` used.
pub fn unused<'a>(granted: &'a [Grant], log: &[AccessRecord]) -> Vec<&'a Grant> {
    granted
        .iter()
        .filter(|g| !log.iter().any(|r| g.covers(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn grants_and_unused() {
        let croles = [json!({"metadata": {"name": "c"}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]})];
        let roles = [
            json!({"metadata": {"namespace": "a", "name": "r"}, "rules": [
            {"apiGroups": ["sparkoperator.k8s.io"], "resources": ["sparkapplications", "sparkapplications/status"], "verbs": ["get"]}]}),
        ];
        let sa = json!([{"kind": "ServiceAccount", "name": "o", "namespace": "ops"}]);
        let crbs = [
            json!({"metadata": {"name": "c"}, "roleRef": {"kind": "ClusterRole", "name": "c"}, "subjects": sa}),
        ];
        let rbs = [
            json!({"metadata": {"namespace": "a", "name": "r"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": sa}),
            json!({"metadata": {"namespace": "a", "name": "gone"}, "roleRef": {"kind": "Role", "name": "gone"}, "subjects": sa}),
            json!({"metadata": {"namespace": "a", "name": "other"}, "roleRef": {"kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "someone"}]}),
        ];
        let p = Policy::build(&roles, &croles, &rbs, &crbs);
        let who = Identity::service_account("ops", "o");
        let g = grants(&who, &p);
        let short: Vec<(Option<&str>, &str, &str)> = g
            .iter()
            .map(|g| (g.namespace.as_deref(), g.verb.as_str(), g.resource.as_str()))
            .collect();
        assert_eq!(
            short,
            vec![
                (None, "list", "nodes"),
                (None, "watch", "nodes"),
                (Some("a"), "get", "sparkapplications"),
                (Some("a"), "get", "sparkapplications/status"),
            ]
        );
        let rec = |verb: &str, group: &str, res: &str, sub: &str, ns: Option<&str>| AccessRecord {
            user: who.name.clone(),
            verb: verb.into(),
            group: group.into(),
            resource: res.into(),
            subresource: sub.into(),
            namespace: ns.map(String::from),
        };
        let log = [
            rec("list", "", "nodes", "", None),
            rec(
                "get",
                "sparkoperator.k8s.io",
                "sparkapplications",
                "status",
                Some("a"),
            ),
            // Same verb and resource in another namespace does not use the grant in "a".
            rec(
                "get",
                "sparkoperator.k8s.io",
                "sparkapplications",
                "",
                Some("b"),
            ),
        ];
        let left: Vec<(&str, &str)> = unused(&g, &log)
            .into_iter()
            .map(|g| (g.verb.as_str(), g.resource.as_str()))
            .collect();
        assert_eq!(left, vec![("watch", "nodes"), ("get", "sparkapplications")]);
        // Wildcards are covered by any matching use.
        let star = Grant {
            namespace: None,
            verb: "*".into(),
            group: "*".into(),
            resource: "*/status".into(),
            resource_names: vec![],
            via: String::new(),
        };
        assert!(star.covers(&log[1]));
        assert!(!star.covers(&log[0]));
    }
}
