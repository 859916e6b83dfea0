//! kubectl's protobuf: imperative commands that send `application/vnd.kubernetes.protobuf`
//! bodies and read protobuf answers, `kubectl auth can-i`, content negotiation through
//! the kube client, and malformed protobuf bodies.

use k8s_openapi::api::core::v1::{Namespace, Node, ResourceQuota};
use kube::api::Api;
use kube_sim::{AuthConfig, PoolConfig, SimConfig};
use serde_json::{Value, json};

use crate::kubectl::Kubectl;
use crate::support::*;

const PB: &str = "application/vnd.kubernetes.protobuf";

async fn fails(k: &Kubectl, args: &[&str]) -> String {
    let out = k.cmd(args).output().await.unwrap();
    assert!(!out.status.success(), "kubectl {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[tokio::test]
async fn kubectl_imperative_commands_speak_protobuf() {
    let k =
        Kubectl::new(SimConfig::default().with_pool(PoolConfig::new("general", 1, "4", "16Gi")));
    assert_eq!(
        k.run(&["create", "namespace", "pb"]).await.trim(),
        "namespace/pb created"
    );
    let out = k
        .run(&["create", "quota", "q", "--hard=pods=2", "-n", "pb"])
        .await;
    assert_eq!(out.trim(), "resourcequota/q created");
    let ns: Value =
        serde_json::from_str(&k.run(&["get", "namespace", "pb", "-o", "json"]).await).unwrap();
    assert_eq!(ns["metadata"]["name"], "pb");
    assert!(ns["metadata"].get("generation").is_none(), "{ns}");
    assert!(ns["metadata"].get("generateName").is_none(), "{ns}");
    let yaml = k
        .run(&["get", "quota", "q", "-n", "pb", "-o", "yaml"])
        .await;
    assert!(yaml.contains("pods: \"2\""), "{yaml}");
    // What kubectl stored is what a JSON client reads back, and the quota is live.
    let client = k.sim.client().unwrap();
    let q = Api::<ResourceQuota>::namespaced(client.clone(), "pb")
        .get("q")
        .await
        .unwrap();
    let hard = q.spec.unwrap().hard.unwrap();
    assert_eq!(hard["pods"].0, "2");
    Api::<Namespace>::all(client.clone())
        .get("pb")
        .await
        .unwrap();
    // More typed commands: a pod (create and read back in protobuf), a priority class,
    // RBAC objects, cordon (GET node in protobuf, then a patch).
    let out = k
        .run(&[
            "run",
            "web",
            "--image=busybox:1.36",
            "-n",
            "pb",
            "--restart=Never",
        ])
        .await;
    assert_eq!(out.trim(), "pod/web created");
    let out = k
        .run(&[
            "create",
            "priorityclass",
            "zero",
            "--value=0",
            "--description=z",
        ])
        .await;
    assert_eq!(out.trim(), "priorityclass.scheduling.k8s.io/zero created");
    let pc: Value =
        serde_json::from_str(&k.run(&["get", "priorityclass", "zero", "-o", "json"]).await)
            .unwrap();
    assert_eq!(pc["value"], 0);
    let out = k
        .run(&[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods",
            "-n",
            "pb",
        ])
        .await;
    assert_eq!(out.trim(), "role.rbac.authorization.k8s.io/reader created");
    let out = k
        .run(&[
            "create",
            "rolebinding",
            "reader",
            "--role=reader",
            "--serviceaccount=pb:bot",
            "-n",
            "pb",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "rolebinding.rbac.authorization.k8s.io/reader created"
    );
    let out = k
        .run(&[
            "create",
            "clusterrole",
            "node-reader",
            "--verb=get",
            "--resource=nodes",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "clusterrole.rbac.authorization.k8s.io/node-reader created"
    );
    let out = k.run(&["cordon", "general-0000"]).await;
    assert_eq!(out.trim(), "node/general-0000 cordoned");
    let node = Api::<Node>::all(client).get("general-0000").await.unwrap();
    assert_eq!(node.spec.unwrap().unschedulable, Some(true));
    // Errors for protobuf requests are the usual ones.
    assert_eq!(
        fails(&k, &["create", "namespace", "pb"]).await,
        r#"Error from server (AlreadyExists): namespaces "pb" already exists"#
    );
    assert_eq!(
        fails(
            &k,
            &["create", "quota", "q", "--hard=pods=2", "-n", "nowhere"]
        )
        .await,
        r#"error: failed to create quota: namespaces "nowhere" not found"#
    );
}

#[tokio::test]
async fn kubectl_auth_can_i_and_whoami() {
    let policy = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: view, namespace: team-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-view}\nsubjects: [{kind: ServiceAccount, name: bot, namespace: team-a}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: pod-view}\nrules: [{apiGroups: [\"\"], resources: [pods, pods/log], verbs: [get, list, watch]}]\n";
    let cfg = SimConfig::default()
        .with_namespace("team-a")
        .with_auth(AuthConfig::new().admin("root", "admin").service_account(
            "bot-token",
            "team-a",
            "bot",
        ))
        .with_manifest_yaml(policy)
        .unwrap();
    let k = Kubectl::new(cfg);
    let bot = k.dir.path().join("bot");
    k.sim.write_kubeconfig_as("team-a/bot", &bot).unwrap();
    let can = async |kc: Option<&std::path::Path>, args: &[&str]| {
        let mut c = k.cmd(&[]);
        if let Some(p) = kc {
            c.arg("--kubeconfig").arg(p);
        }
        let out = c.args(["auth", "can-i"]).args(args).output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(can(None, &["delete", "nodes"]).await, "yes");
    for (args, want) in [
        (&["list", "pods", "-n", "team-a"][..], "yes"),
        (&["get", "pods/log", "-n", "team-a"][..], "yes"),
        (&["delete", "pods", "-n", "team-a"][..], "no"),
        (&["list", "pods", "-n", "default"][..], "no"),
        (&["list", "pods", "-A"][..], "no"),
        (&["create", "selfsubjectaccessreviews"][..], "yes"),
    ] {
        assert_eq!(can(Some(&bot), args).await, want, "can-i {args:?}");
    }
    let whoami = async |kc: &std::path::Path| {
        let args = [
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ];
        let out = k
            .cmd(&[])
            .arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        whoami(&bot).await,
        r#"system:serviceaccount:team-a:bot ["system:serviceaccounts","system:serviceaccounts:team-a","system:authenticated"]"#
    );
    assert_eq!(
        whoami(&k.kubeconfig()).await,
        r#"admin ["system:masters","system:authenticated"]"#
    );
}

async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    ct: &str,
    accept: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ct)
        .header("accept", accept)
        .body(body)
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, ct, bytes.to_vec())
}

#[tokio::test]
async fn responses_follow_accept_and_bad_bodies_are_refused() {
    let sim = start(SimConfig::uniform(1, "4", "16Gi"));
    let c = sim.client().unwrap();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "neg"}});
    let body = kube_sim::protobuf::encode(&ns).unwrap();
    // Protobuf in, protobuf out when asked first; JSON when asked first; JSON for CRs.
    let (code, ct, out) = raw(
        &c,
        "POST",
        "/api/v1/namespaces",
        PB,
        &format!("{PB}, application/json"),
        body.clone(),
    )
    .await;
    assert_eq!((code, ct.as_str()), (201, PB));
    let back = kube_sim::protobuf::decode(&out).unwrap();
    assert_eq!(back["metadata"]["name"], "neg");
    assert_eq!(back["status"]["phase"], "Active");
    let (code, ct, out) = raw(
        &c,
        "GET",
        "/api/v1/namespaces/neg",
        "",
        "application/json, application/vnd.kubernetes.protobuf",
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap()["metadata"]["name"],
        "neg"
    );
    let (code, ct, out) = raw(&c, "GET", "/api/v1/nodes", "", PB, vec![]).await;
    assert_eq!((code, ct.as_str()), (200, PB));
    let list = kube_sim::protobuf::decode(&out).unwrap();
    assert_eq!(list["kind"], "NodeList");
    assert_eq!(list["items"][0]["metadata"]["name"], "general-0000");
    assert_eq!(list["items"][0]["status"]["allocatable"]["cpu"], "4");
    let (code, ct, _) = raw(
        &c,
        "GET",
        "/apis/sparkoperator.k8s.io/v1beta2/sparkapplications",
        "",
        &format!("{PB}, application/json"),
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    // Errors stay JSON Status objects, with clean 400/415s for bad protobuf.
    let mut unknown_kind = body.clone();
    let at = unknown_kind
        .windows(9)
        .position(|w| w == b"Namespace")
        .unwrap();
    unknown_kind[at] = b'X';
    let mut huge = kube_sim::protobuf::MAGIC.to_vec();
    huge.extend([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
    let app = kube_sim::protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
    )
    .unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "/api/v1/namespaces",
            "truncated",
            body[..body.len() - 3].to_vec(),
            400,
            "",
        ),
        (
            "/api/v1/namespaces",
            "wrong magic",
            b"k9s\0abc".to_vec(),
            400,
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ),
        (
            "/api/v1/namespaces",
            "unknown kind",
            unknown_kind,
            400,
            "no kind \"Xamespace\" is registered",
        ),
        ("/api/v1/namespaces", "huge length", huge, 400, ""),
        (
            "/api/v1/namespaces",
            "empty",
            vec![],
            400,
            "the body of the request is empty",
        ),
        (
            "/api/v1/namespaces",
            "another kind",
            kube_sim::protobuf::encode(
                &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
            )
            .unwrap(),
            400,
            "the kind in the data (Pod) does not match the expected kind (Namespace)",
        ),
        (
            "/apis/sparkoperator.k8s.io/v1beta2/namespaces/default/sparkapplications",
            "custom resource",
            app,
            415,
            "the body of the request was in an unknown format - accepted media types include: \"application/json\", \"application/yaml\"",
        ),
    ];
    for (path, what, bad, want, msg) in cases {
        let (code, ct, out) = raw(
            &c,
            "POST",
            path,
            PB,
            &format!("{PB}, application/json"),
            bad,
        )
        .await;
        assert_eq!(code, want, "{what}: {}", String::from_utf8_lossy(&out));
        assert_eq!(ct, "application/json", "{what}");
        let status: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(status["kind"], "Status", "{what}");
        assert!(
            status["message"].as_str().unwrap().contains(msg),
            "{what}: {status}"
        );
    }
    // The simulator still serves after all that.
    let (code, _, _) = raw(
        &c,
        "GET",
        "/api/v1/namespaces/neg",
        "",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 200);
}
