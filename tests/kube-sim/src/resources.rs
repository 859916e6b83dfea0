//! The resource table: every kind the simulator serves, with the names, scope and
//! verbs that discovery advertises and that the router resolves URLs against.

use serde_json::{Value, json};

/// The resources the simulator serves. The discriminant indexes the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Res {
    /// core/v1 Namespace.
    Namespace = 0,
    /// core/v1 Node.
    Node,
    /// core/v1 Pod.
    Pod,
    /// core/v1 ResourceQuota.
    ResourceQuota,
    /// core/v1 Event.
    Event,
    /// events.k8s.io/v1 Event.
    EventV1,
    /// scheduling.k8s.io/v1 PriorityClass.
    PriorityClass,
    /// coordination.k8s.io/v1 Lease.
    Lease,
    /// sparkoperator.k8s.io/v1beta2 SparkApplication.
    SparkApplication,
    /// rbac.authorization.k8s.io/v1 Role.
    Role,
    /// rbac.authorization.k8s.io/v1 ClusterRole.
    ClusterRole,
    /// rbac.authorization.k8s.io/v1 RoleBinding.
    RoleBinding,
    /// rbac.authorization.k8s.io/v1 ClusterRoleBinding.
    ClusterRoleBinding,
}

/// How many resources there are (the store's array length).
pub const RES_COUNT: usize = 13;

/// All resources, in discovery order.
pub const ALL: [Res; RES_COUNT] = [
    Res::Namespace,
    Res::Node,
    Res::Pod,
    Res::ResourceQuota,
    Res::Event,
    Res::EventV1,
    Res::PriorityClass,
    Res::Lease,
    Res::SparkApplication,
    Res::Role,
    Res::ClusterRole,
    Res::RoleBinding,
    Res::ClusterRoleBinding,
];

/// Static description of one resource.
#[derive(Debug)]
pub struct ResourceDef {
    /// Which resource.
    pub res: Res,
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// URL segment, e.g. `pods`.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// The `kind`.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Whether a `/status` subresource exists.
    pub has_status: bool,
    /// Whether it is a custom resource (CRD-backed).
    pub custom: bool,
    /// Fields a field selector may use, besides `metadata.name`/`metadata.namespace`.
    pub field_selectors: &'static [&'static str],
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

static DEFS: [ResourceDef; RES_COUNT] = [
    ResourceDef {
        res: Res::Namespace,
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        has_status: true,
        custom: false,
        field_selectors: &["status.phase"],
    },
    ResourceDef {
        res: Res::Node,
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        has_status: true,
        custom: false,
        field_selectors: &["spec.unschedulable"],
    },
    ResourceDef {
        res: Res::Pod,
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        has_status: true,
        custom: false,
        field_selectors: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    ResourceDef {
        res: Res::ResourceQuota,
        group: "",
        version: "v1",
        plural: "resourcequotas",
        singular: "resourcequota",
        kind: "ResourceQuota",
        namespaced: true,
        short_names: &["quota"],
        has_status: true,
        custom: false,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::Event,
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        has_status: false,
        custom: false,
        field_selectors: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    ResourceDef {
        res: Res::EventV1,
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        has_status: false,
        custom: false,
        field_selectors: &[
            "reason",
            "type",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
        ],
    },
    ResourceDef {
        res: Res::PriorityClass,
        group: "scheduling.k8s.io",
        version: "v1",
        plural: "priorityclasses",
        singular: "priorityclass",
        kind: "PriorityClass",
        namespaced: false,
        short_names: &["pc"],
        has_status: false,
        custom: false,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::Lease,
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        has_status: false,
        custom: false,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::SparkApplication,
        group: "sparkoperator.k8s.io",
        version: "v1beta2",
        plural: "sparkapplications",
        singular: "sparkapplication",
        kind: "SparkApplication",
        namespaced: true,
        short_names: &["sparkapp"],
        has_status: true,
        custom: true,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::Role,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        has_status: false,
        custom: false,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::ClusterRole,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        has_status: false,
        custom: false,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::RoleBinding,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        has_status: false,
        custom: false,
        field_selectors: &[],
    },
    ResourceDef {
        res: Res::ClusterRoleBinding,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        has_status: false,
        custom: false,
        field_selectors: &[],
    },
];

impl Res {
    /// The static definition.
    pub fn def(self) -> &'static ResourceDef {
        &DEFS[self as usize]
    }

    /// The resource whose storage serves this one (events.k8s.io Events are a view of core Events).
    pub fn storage(self) -> Res {
        if self == Res::EventV1 {
            Res::Event
        } else {
            self
        }
    }

    /// Index into per-resource arrays.
    pub fn idx(self) -> usize {
        self as usize
    }
}

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `leases.coordination.k8s.io`, as error messages name it.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether `field` may be used in a field selector.
    pub fn field_selectable(&self, field: &str) -> bool {
        field == "metadata.name"
            || (self.namespaced && field == "metadata.namespace")
            || self.field_selectors.contains(&field)
    }
}

/// Find a resource by group, version and plural.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<Res> {
    ALL.iter().copied().find(|r| {
        let d = r.def();
        d.group == group && d.version == version && d.plural == plural
    })
}

/// The `/version` body (Kubernetes 1.33).
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-kube-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32"
    })
}

/// The `/api` body.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
    })
}

fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in ALL {
        let d = r.def();
        if !d.group.is_empty() && !out.iter().any(|(g, _)| *g == d.group) {
            out.push((d.group, d.version));
        }
    }
    out.push(("authorization.k8s.io", "v1"));
    out.push(("authentication.k8s.io", "v1"));
    out
}

/// The `/apis` body (an `APIGroupList`).
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(g, v)| {
            let gv = format!("{g}/{v}");
            json!({
                "name": g,
                "versions": [{"groupVersion": gv, "version": v}],
                "preferredVersion": {"groupVersion": gv, "version": v}
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The `/apis/{group}` body, if the group is served.
pub fn group(group: &str) -> Option<Value> {
    groups()
        .into_iter()
        .find(|(g, _)| *g == group)
        .map(|(g, v)| {
            let gv = format!("{g}/{v}");
            json!({
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": g,
                "versions": [{"groupVersion": gv, "version": v}],
                "preferredVersion": {"groupVersion": gv, "version": v}
            })
        })
}

/// The `APIResourceList` for `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in ALL {
        let d = r.def();
        if d.group != group || d.version != version {
            continue;
        }
        let mut entry = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": VERBS,
        });
        if !d.short_names.is_empty() {
            entry["shortNames"] = json!(d.short_names);
        }
        if d.custom {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        if d.has_status {
            resources.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r == Res::Pod {
            resources.push(json!({
                "name": "pods/binding",
                "singularName": "",
                "namespaced": true,
                "kind": "Binding",
                "verbs": ["create"],
            }));
        }
    }
    if (group, version) == ("authorization.k8s.io", "v1") {
        // Not stored: a review is answered and forgotten (server::authz).
        resources.push(json!({
            "name": "selfsubjectaccessreviews",
            "singularName": "selfsubjectaccessreview",
            "namespaced": false,
            "kind": "SelfSubjectAccessReview",
            "verbs": ["create"],
        }));
    }
    if (group, version) == ("authentication.k8s.io", "v1") {
        resources.push(json!({
            "name": "selfsubjectreviews",
            "singularName": "selfsubjectreview",
            "namespaced": false,
            "kind": "SelfSubjectReview",
            "verbs": ["create"],
        }));
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `/openapi/v3` root listing one document per group-version.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut seen = Vec::new();
    for r in ALL {
        let d = r.def();
        let p = gv_path(d.group, d.version);
        if !seen.contains(&p) {
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=kube-sim-1")}),
            );
            seen.push(p);
        }
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for a group-version: the item paths with their
/// `x-kubernetes-group-version-kind` and the `fieldValidation` parameter, which is what
/// kubectl reads to decide that the server validates fields itself.
pub fn openapi_v3_doc(path: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for r in ALL {
        let d = r.def();
        if gv_path(d.group, d.version) != path {
            continue;
        }
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
        ]);
        let op = json!({"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch", "parameters": params,
            "responses": {"200": {"description": "OK"}}});
        let post = json!({"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "post", "parameters": params,
            "responses": {"201": {"description": "Created"}}});
        let base = if d.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("/{path}/{}", d.plural)
        };
        paths.insert(base.clone(), json!({"post": post}));
        paths.insert(format!("{base}/{{name}}"), json!({"patch": op}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "components": {"schemas": {}}}),
    )
}
