//! Table-driven cases for the RBAC decision and the 403 wording.

use serde_json::{Value, json};

use super::*;

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name}, "rules": rules})
}

fn crole(name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name}, "rules": rules})
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects})
}

fn crb(name: &str, role: &str, subjects: Value) -> Value {
    json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects})
}

fn sa(ns: &str, name: &str) -> Value {
    json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}])
}

/// The daemon's policy as a test fixture: cluster-wide node reads, pods in team-a via a
/// ClusterRole bound by a RoleBinding, leases by name, sparkapplications/status.
fn policy() -> Policy {
    let roles = [
        role(
            "ops",
            "lease",
            json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "verbs": ["get", "update", "patch"], "resourceNames": ["orchestrator-leader"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}]),
        ),
        role(
            "team-a",
            "apps",
            json!([{"apiGroups": ["sparkoperator.k8s.io"], "resources": ["sparkapplications", "sparkapplications/status"],
                "verbs": ["get", "list", "watch", "create", "delete"]}]),
        ),
        role("team-b", "dangling", json!([])),
    ];
    let croles = [
        crole(
            "node-reader",
            json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]),
        ),
        crole(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        ),
        crole(
            "evictor",
            json!([{"apiGroups": [""], "resources": ["*/eviction"], "verbs": ["create"]}]),
        ),
        crole(
            "everything",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        crole(
            "health",
            json!([{"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}]),
        ),
        crole(
            "pc-by-name",
            json!([{"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"],
                "verbs": ["get", "list", "watch"], "resourceNames": ["spark-high"]}]),
        ),
    ];
    let rbs = [
        rb(
            "team-a",
            "pods",
            "ClusterRole",
            "pod-reader",
            sa("ops", "orch"),
        ),
        rb("team-a", "apps", "Role", "apps", sa("ops", "orch")),
        rb("ops", "lease", "Role", "lease", sa("ops", "orch")),
        rb("team-b", "missing", "Role", "nope", sa("ops", "orch")),
        rb(
            "team-b",
            "evict",
            "ClusterRole",
            "evictor",
            json!([{"kind": "Group", "name": "evictors"}]),
        ),
        // A ServiceAccount subject without a namespace means the binding's namespace.
        rb(
            "team-c",
            "local",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "local"}]),
        ),
    ];
    let crbs = [
        crb("nodes", "node-reader", sa("ops", "orch")),
        crb(
            "alice-all",
            "everything",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        crb(
            "health",
            "health",
            json!([{"kind": "Group", "name": "system:authenticated"}]),
        ),
        crb("pcs", "pc-by-name", sa("ops", "orch")),
        crb(
            "ghost",
            "no-such-role",
            json!([{"kind": "User", "name": "bob"}]),
        ),
    ];
    Policy::build(&roles, &croles, &rbs, &crbs)
}

fn orch() -> Identity {
    Identity::service_account("ops", "orch")
}

#[test]
fn decisions() {
    let p = policy();
    let res = Attributes::resource;
    let bob = Identity::user("bob", &[]);
    let eve = Identity::user("eve", &["evictors"]);
    let root = Identity::user("root", &[MASTERS]);
    let local = Identity::service_account("team-c", "local");
    #[rustfmt::skip]
    let cases: Vec<(&str, Identity, Attributes, bool)> = vec![
        ("cluster role via crb: list nodes", orch(), res("list", "", "nodes", "", "", ""), true),
        ("cluster role via crb: watch nodes", orch(), res("watch", "", "nodes", "", "", ""), true),
        ("verb not granted", orch(), res("delete", "", "nodes", "", "", "n1"), false),
        ("subresource not granted by the plain resource", orch(), res("get", "", "nodes", "status", "", "n1"), false),
        ("clusterrole via rolebinding: in its namespace", orch(), res("list", "", "pods", "", "team-a", ""), true),
        ("clusterrole via rolebinding: other namespace", orch(), res("list", "", "pods", "", "team-b", ""), false),
        ("clusterrole via rolebinding: not cluster-wide", orch(), res("list", "", "pods", "", "", ""), false),
        ("role: create apps", orch(), res("create", "sparkoperator.k8s.io", "sparkapplications", "", "team-a", ""), true),
        ("role: status subresource listed", orch(), res("get", "sparkoperator.k8s.io", "sparkapplications", "status", "team-a", "x"), true),
        ("role: update not granted", orch(), res("update", "sparkoperator.k8s.io", "sparkapplications", "", "team-a", "x"), false),
        ("wrong api group", orch(), res("create", "", "sparkapplications", "", "team-a", ""), false),
        ("resourceNames: named get", orch(), res("get", "coordination.k8s.io", "leases", "", "ops", "orchestrator-leader"), true),
        ("resourceNames: other name", orch(), res("get", "coordination.k8s.io", "leases", "", "ops", "other"), false),
        ("resourceNames: list without a name", orch(), res("list", "scheduling.k8s.io", "priorityclasses", "", "", ""), false),
        ("resourceNames: list with metadata.name selector", orch(), res("list", "scheduling.k8s.io", "priorityclasses", "", "", "spark-high"), true),
        ("resourceNames: create has no name, other rule", orch(), res("create", "coordination.k8s.io", "leases", "", "ops", ""), true),
        ("*/eviction matches pods/eviction", eve.clone(), res("create", "", "pods", "eviction", "team-b", "p"), true),
        ("*/eviction does not match pods", eve.clone(), res("create", "", "pods", "", "team-b", ""), false),
        ("*/eviction only in team-b", eve.clone(), res("create", "", "pods", "eviction", "team-a", "p"), false),
        ("wildcards: anything", Identity::user("alice", &[]), res("deletecollection", "rbac.authorization.k8s.io", "roles", "", "x", ""), true),
        ("wildcards: subresources too", Identity::user("alice", &[]), res("update", "", "pods", "status", "x", "p"), true),
        ("wildcards: not non-resource", Identity::user("alice", &[]), Attributes::non_resource("get", "/metrics"), false),
        ("masters bypass", root.clone(), res("delete", "", "nodes", "", "", "n1"), true),
        ("masters bypass non-resource", root.clone(), Attributes::non_resource("post", "/x"), true),
        ("unknown user", bob.clone(), res("get", "", "pods", "", "team-a", "p"), false),
        ("group binding: non-resource exact", bob.clone(), Attributes::non_resource("get", "/healthz"), true),
        ("group binding: non-resource prefix", bob.clone(), Attributes::non_resource("get", "/apis/apps/v1"), true),
        ("non-resource: verb", bob.clone(), Attributes::non_resource("post", "/healthz"), false),
        ("non-resource: other path", bob.clone(), Attributes::non_resource("get", "/healthz/ping"), false),
        ("sa subject without namespace", local.clone(), res("get", "", "pods", "", "team-c", "p"), true),
        ("sa of another namespace, same name", Identity::service_account("team-a", "local"), res("get", "", "pods", "", "team-c", "p"), false),
        ("sa groups are not users", Identity::user("system:serviceaccounts:ops", &[]), res("list", "", "nodes", "", "", ""), false),
    ];
    for (what, who, attrs, want) in cases {
        let d = authorize(&who, &attrs, &p);
        assert_eq!(d.allowed, want, "{what}: {d:?}");
    }
}

#[test]
fn allow_reasons_name_the_binding() {
    let p = policy();
    let d = authorize(
        &orch(),
        &Attributes::resource("list", "", "nodes", "", "", ""),
        &p,
    );
    assert_eq!(
        d.reason,
        r#"RBAC: allowed by ClusterRoleBinding "nodes" of ClusterRole "node-reader" to ServiceAccount "orch/ops""#
    );
    let d = authorize(
        &orch(),
        &Attributes::resource("get", "", "pods", "", "team-a", "p"),
        &p,
    );
    assert_eq!(
        d.reason,
        r#"RBAC: allowed by RoleBinding "pods/team-a" of ClusterRole "pod-reader" to ServiceAccount "orch/ops""#
    );
}

#[test]
fn missing_roles_are_the_denial_reason() {
    let p = policy();
    let d = authorize(
        &orch(),
        &Attributes::resource("get", "", "pods", "", "team-b", "p"),
        &p,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        r#"RBAC: role.rbac.authorization.k8s.io "nope" not found"#
    );
    let bob = Identity::user("bob", &[]);
    let d = authorize(
        &bob,
        &Attributes::resource("get", "", "pods", "", "", ""),
        &p,
    );
    assert_eq!(
        d.reason,
        r#"RBAC: clusterrole.rbac.authorization.k8s.io "no-such-role" not found"#
    );
    // Nothing applies: no reason at all.
    let d = authorize(
        &orch(),
        &Attributes::resource("get", "", "pods", "", "team-z", "p"),
        &p,
    );
    assert_eq!(d.reason, "");
}

#[test]
fn forbidden_messages_match_the_api_server() {
    let who = orch();
    let cases = [
        (
            Attributes::resource("list", "", "pods", "", "", ""),
            "",
            r#"pods is forbidden: User "system:serviceaccount:ops:orch" cannot list resource "pods" in API group "" at the cluster scope"#,
            json!({"kind": "pods"}),
        ),
        (
            Attributes::resource("get", "coordination.k8s.io", "leases", "", "ops", "l1"),
            "",
            r#"leases.coordination.k8s.io "l1" is forbidden: User "system:serviceaccount:ops:orch" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "ops""#,
            json!({"kind": "leases", "group": "coordination.k8s.io", "name": "l1"}),
        ),
        (
            Attributes::resource(
                "patch",
                "sparkoperator.k8s.io",
                "sparkapplications",
                "status",
                "team-a",
                "a",
            ),
            r#"RBAC: role.rbac.authorization.k8s.io "x" not found"#,
            r#"sparkapplications.sparkoperator.k8s.io "a" is forbidden: User "system:serviceaccount:ops:orch" cannot patch resource "sparkapplications/status" in API group "sparkoperator.k8s.io" in the namespace "team-a": RBAC: role.rbac.authorization.k8s.io "x" not found"#,
            json!({"kind": "sparkapplications", "group": "sparkoperator.k8s.io", "name": "a"}),
        ),
        (
            Attributes::non_resource("get", "/metrics"),
            "",
            r#"forbidden: User "system:serviceaccount:ops:orch" cannot get path "/metrics""#,
            json!({}),
        ),
    ];
    for (attrs, reason, message, details) in cases {
        let e = forbidden(&who, &attrs, reason);
        assert_eq!(e.code, 403);
        assert_eq!(e.reason, "Forbidden");
        assert_eq!(e.message, message);
        assert_eq!(e.details, Some(details));
        let status = e.to_status();
        assert_eq!(status["status"], "Failure");
    }
}

#[test]
fn service_account_identity() {
    let id = Identity::service_account("ns1", "sa1");
    assert_eq!(id.name, "system:serviceaccount:ns1:sa1");
    assert_eq!(
        id.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:ns1",
            "system:authenticated"
        ]
    );
    assert!(!id.is_master());
    assert!(Identity::user("admin", &[MASTERS]).is_master());
}

#[test]
fn hostile_objects_do_not_grant() {
    // Malformed rules and subjects are ignored, never widen access.
    let croles = [
        json!({"metadata": {"name": "bad"}, "rules": [{"verbs": "get"}, 7, {"apiGroups": [""], "resources": [1], "verbs": ["get"]}]}),
    ];
    let crbs = [
        json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "bad"},
        "subjects": [{"kind": "ServiceAccount", "name": "x"}, {"kind": "User"}, {"kind": "Martian", "name": "m"}]}),
    ];
    let p = Policy::build(&[], &croles, &[], &crbs);
    for who in [
        Identity::user("x", &[]),
        Identity::user("m", &[]),
        Identity::user("", &[]),
    ] {
        let d = authorize(
            &who,
            &Attributes::resource("get", "", "pods", "", "", "p"),
            &p,
        );
        assert!(!d.allowed, "{who:?}");
    }
    // A role kind the authorizer does not know is an error, not a grant.
    let crbs = [
        json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Gadget", "name": "bad"},
        "subjects": [{"kind": "User", "name": "x"}]}),
    ];
    let p = Policy::build(&[], &croles, &[], &crbs);
    let d = authorize(
        &Identity::user("x", &[]),
        &Attributes::resource("get", "", "pods", "", "", "p"),
        &p,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        r#"RBAC: unsupported role reference kind: "Gadget""#
    );
}
