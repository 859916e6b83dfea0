//! Real kubectl bodies, round trips of every built-in kind, and hostile input.

use serde_json::json;

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `kubectl create namespace x` (kubectl 1.33), captured on the wire.
const KUBECTL_NAMESPACE: &str = "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a0032003800420012001a020a001a002200";
/// `kubectl create quota q --hard=pods=2 -n default`.
const KUBECTL_QUOTA: &str = "6b3873000a130a027631120d5265736f7572636551756f7461122b0a180a017112001a0764656661756c7422002a00320038004200120d0a0b0a04706f647312030a01321a001a002200";

#[test]
fn kubectl_bodies_decode_to_what_json_would_say() {
    let ns = decode(&unhex(KUBECTL_NAMESPACE)).unwrap();
    assert_eq!(
        ns,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spec": {}, "status": {}})
    );
    let q = decode(&unhex(KUBECTL_QUOTA)).unwrap();
    assert_eq!(
        q,
        json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "q", "namespace": "default"},
            "spec": {"hard": {"pods": "2"}}, "status": {}})
    );
}

#[test]
fn built_in_objects_round_trip() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "a", "labels": {"app": "x"}, "uid": "u1",
                "resourceVersion": "12", "creationTimestamp": "2026-01-02T03:04:05Z",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u2", "controller": true}],
                "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                    "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]},
            "spec": {"terminationGracePeriodSeconds": 0, "priority": 100,
                "containers": [{"name": "c", "image": "busybox:1.36",
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                    "readinessProbe": {"tcpSocket": {"port": 8080}}}],
                "volumes": [{"name": "v", "emptyDir": {}}, {"name": "cm", "configMap": {"name": "conf", "defaultMode": 420}}],
                "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
                "hostNetwork": false},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "a"},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                "renewTime": "2026-01-02T03:04:05.123456Z"}}),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "zero"}, "value": 0, "globalDefault": false, "preemptionPolicy": "Never"}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "a"}]}),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {}, "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "a"}},
            "status": {"allowed": true, "reason": "why"}}),
        json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "a"}, "status": {"phase": "Active"}}]}),
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": "m", "reason": "NotFound", "code": 404,
            "details": {"name": "x", "kind": "pods"}}),
    ];
    for o in objects {
        let bytes = encode(&o).unwrap_or_else(|| panic!("no protobuf form: {o}"));
        assert!(bytes.starts_with(&MAGIC));
        assert_eq!(decode(&bytes).unwrap(), o);
    }
}

#[test]
fn custom_resources_have_no_protobuf_form() {
    let app = json!({"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication", "metadata": {"name": "a"}});
    assert!(encode(&app).is_none());
    assert!(message_for("sparkoperator.k8s.io/v1beta2", "SparkApplication").is_none());
    assert!(message_for("v1", "Pod").is_some());
    assert!(message_for("events.k8s.io/v1", "Event").is_some());
}

#[test]
fn hostile_bodies_are_clean_errors() {
    let good = unhex(KUBECTL_NAMESPACE);
    let mut wrong_kind =
        encode(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}))
            .unwrap();
    // Rewrite "Namespace" in the envelope to "Namespacf": an unregistered kind.
    let at = wrong_kind
        .windows(9)
        .position(|w| w == b"Namespace")
        .unwrap();
    wrong_kind[at + 8] = b'f';
    let mut huge = MAGIC.to_vec();
    huge.extend([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]); // raw: 4 GiB claimed, nothing follows
    let mut deep = MAGIC.to_vec();
    deep.extend([0x0a, 0x00, 0x12]);
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..200 {
        // metadata { ownerReferences?.. } nest "spec" fields endlessly: field 1 (metadata) of itself is wrong type but keeps nesting
        let mut m = vec![0x0a];
        m.push(inner.len() as u8);
        m.extend(&inner);
        inner = m;
        if inner.len() > 120 {
            break;
        }
    }
    deep.push(inner.len() as u8);
    deep.extend(&inner);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "empty",
            vec![],
            "provided data does not appear to be a protobuf message",
        ),
        (
            "wrong magic",
            b"k8s\x01rest".to_vec(),
            "provided data does not appear to be a protobuf message",
        ),
        (
            "json",
            br#"{"kind":"Namespace"}"#.to_vec(),
            "provided data does not appear",
        ),
        ("magic only", MAGIC.to_vec(), "Object 'Kind' is missing"),
        ("truncated", good[..good.len() - 7].to_vec(), ""),
        ("truncated envelope", good[..10].to_vec(), ""),
        (
            "unknown kind",
            wrong_kind,
            "no kind \"Namespacf\" is registered for version \"v1\"",
        ),
        ("huge length", huge, ""),
        (
            "garbage",
            vec![
                0x6b, 0x38, 0x73, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff,
            ],
            "",
        ),
    ];
    for (what, body, want) in cases {
        let e = decode(&body).expect_err(what);
        assert!(e.contains(want), "{what}: {e}");
    }
    // Deep nesting is refused or decoded, never a stack overflow.
    let _ = decode(&deep);
}
