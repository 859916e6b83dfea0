//! Every verb and error through the real kube client.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::params::Preconditions;
use serde_json::json;

use crate::support::*;

fn cfg() -> kube_sim::SimConfig {
    fast(kube_sim::SimConfig::uniform(2, "4", "16Gi"))
}

#[tokio::test]
async fn discovery_finds_every_resource() {
    let sim = start(cfg());
    let client = client(&sim);
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, _caps) in group.recommended_resources() {
            found.push(format!("{}/{}", ar.api_version, ar.plural));
        }
    }
    for want in [
        "v1/pods",
        "v1/nodes",
        "v1/namespaces",
        "v1/resourcequotas",
        "v1/events",
        "events.k8s.io/v1/events",
        "scheduling.k8s.io/v1/priorityclasses",
        "coordination.k8s.io/v1/leases",
        "sparkoperator.k8s.io/v1beta2/sparkapplications",
    ] {
        assert!(
            found.iter().any(|f| f == want),
            "{want} missing from {found:?}"
        );
    }
}

#[tokio::test]
async fn create_get_replace_delete_and_their_errors() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let created = pods
        .create(&PostParams::default(), &pod("p1", "100m", "64Mi"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert_eq!(phase(&created), "Pending");
    assert_eq!(
        created.status.as_ref().unwrap().qos_class.as_deref(),
        Some("Burstable")
    );
    assert_eq!(created.spec.as_ref().unwrap().priority, Some(0));

    let e = api_error(
        pods.create(&PostParams::default(), &pod("p1", "100m", "64Mi"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "pods \"p1\" already exists");

    let e = api_error(pods.get("nope").await.unwrap_err());
    assert!(e.is_not_found());
    assert_eq!(e.message, "pods \"nope\" not found");
    assert_eq!(e.details.as_ref().unwrap().kind, "pods");

    // replace with the current resourceVersion works, a stale one conflicts
    // (once the pod is Running nothing else writes to it)
    wait_for(&pods, "p1", "Running", pod_is(|p| phase(p) == "Running")).await;
    let mut fresh = pods.get("p1").await.unwrap();
    fresh
        .metadata
        .labels
        .get_or_insert_default()
        .insert("x".into(), "1".into());
    let replaced = pods
        .replace("p1", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    let mut stale = created.clone();
    stale
        .metadata
        .labels
        .get_or_insert_default()
        .insert("x".into(), "2".into());
    let e = api_error(
        pods.replace("p1", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on pods \"p1\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // 422 with causes
    let bad = pod_json(
        json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c"}]}}),
    );
    let e = api_error(pods.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("Pod \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);
    let causes = &e.details.as_ref().unwrap().causes;
    assert!(
        causes
            .iter()
            .any(|c| c.field == "spec.containers[0].image" && c.reason == "FieldValueRequired")
    );

    // delete with a wrong uid precondition: 409; then for real
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = api_error(pods.delete("p1", &dp).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .contains("Precondition failed: UID in precondition: wrong"),
        "{}",
        e.message
    );
    let gone = pods
        .delete("p1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(gone.is_left(), "deleting a pod returns the pod");
    let e = api_error(
        pods.delete("p1", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert!(e.is_not_found());
}

#[tokio::test]
async fn missing_namespace_is_404_and_generate_name_works() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "ghost");
    let e = api_error(
        pods.create(&PostParams::default(), &pod("p", "1", "1Gi"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.message, "namespaces \"ghost\" not found");
    let pods: Api<Pod> = Api::default_namespaced(client(&sim));
    let mut p = pod("", "10m", "1Mi");
    p.metadata.name = None;
    p.metadata.generate_name = Some("gen-".into());
    let created = pods.create(&PostParams::default(), &p).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert_eq!(name.len(), 9);
    assert!(
        name[4..]
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{name}"
    );
}

#[tokio::test]
async fn selectors_and_paging() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    for i in 0..25 {
        let mut p = pod(&format!("p{i:02}"), "10m", "1Mi");
        let labels = p.metadata.labels.get_or_insert_default();
        labels.insert("tier".into(), ["a", "b", "c"][i % 3].into());
        if i % 5 == 0 {
            labels.insert("special".into(), "yes".into());
        }
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<Pod>| {
        l.items
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("tier in (a,b)"))
                .await
                .unwrap()
        )
        .len(),
        17
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("tier notin (a,b)"))
                .await
                .unwrap()
        )
        .len(),
        8
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("!special"))
                .await
                .unwrap()
        )
        .len(),
        20
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("special,tier=a"))
                .await
                .unwrap()
        ),
        vec!["p00", "p15"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().fields("metadata.name=p07"))
                .await
                .unwrap()
        ),
        vec!["p07"]
    );
    assert_eq!(
        names(
            pods.list(
                &ListParams::default().fields("metadata.namespace=default,status.phase!=Failed")
            )
            .await
            .unwrap()
        )
        .len(),
        25
    );
    let e = api_error(
        pods.list(&ListParams::default().fields("spec.bogus=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.bogus")
    );

    // paging
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = pods.list(&lp).await.unwrap();
        pages += 1;
        let cont = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        seen.extend(names(page));
        match cont {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 25);

    // spec.nodeName once they are bound
    let bound = eventually("all pods bound", async || {
        let l = pods
            .list(&ListParams::default().fields("spec.nodeName=general-0000"))
            .await
            .unwrap();
        let m = pods
            .list(&ListParams::default().fields("spec.nodeName=general-0001"))
            .await
            .unwrap();
        (l.items.len() + m.items.len() == 25).then_some(l.items.len())
    })
    .await;
    assert!(bound > 0);
    assert!(
        pods.list(&ListParams::default().fields("spec.nodeName=nowhere"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn dry_run_admits_but_stores_and_schedules_nothing() {
    let sim = start(cfg().with_priority_class("high", 1000, false));
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let mut p = pod("dry", "1", "1Gi");
    p.spec.as_mut().unwrap().priority_class_name = Some("high".into());
    let out = pods
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &p,
        )
        .await
        .unwrap();
    assert_eq!(phase(&out), "Pending");
    assert_eq!(out.spec.as_ref().unwrap().priority, Some(1000));
    assert!(out.metadata.resource_version.is_none());
    assert!(node_of(&out).is_none());
    let tolerations = out.spec.as_ref().unwrap().tolerations.clone().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")
                && t.toleration_seconds == Some(300))
    );
    assert!(pods.get_opt("dry").await.unwrap().is_none());
    // unknown priority class: 403 even in dry-run
    p.spec.as_mut().unwrap().priority_class_name = Some("nope".into());
    let e = api_error(
        pods.create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &p,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"dry\" is forbidden: no PriorityClass with name nope was found"
    );
}

#[tokio::test]
async fn patches_merge_json_strategic_and_415() {
    let sim = start(cfg());
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p", "10m", "1Mi"))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let p = pods
        .patch(
            "p",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"m": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.as_ref().unwrap()["m"], "1");
    let p = pods
        .patch(
            "p",
            &pp,
            &Patch::Strategic(json!({"metadata": {"labels": {"s": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.as_ref().unwrap()["s"], "1");
    let path = "/api/v1/namespaces/default/pods/p";
    let p = json_patch(
        &client,
        path,
        json!([{"op": "add", "path": "/metadata/labels/j", "value": "1"}]),
    )
    .await
    .unwrap();
    assert_eq!(p["metadata"]["labels"]["j"], "1");
    let e = api_error(
        json_patch(
            &client,
            path,
            json!([{"op": "test", "path": "/metadata/labels/j", "value": "2"}]),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    // pod spec is immutable (except images etc.)
    let e = api_error(
        pods.patch(
            "p",
            &pp,
            &Patch::Merge(json!({"spec": {"restartPolicy": "Never"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("pod updates may not change fields"),
        "{}",
        e.message
    );

    let apps = spark_api(&client, "default");
    apps.create(
        &PostParams::default(),
        &spark_app("sp", json!({"kube-sim.dev/runtime": "1h"}), 1),
    )
    .await
    .unwrap();
    let e = api_error(
        apps.patch(
            "sp",
            &pp,
            &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 415);
    // status subresource: the main endpoint ignores status, /status ignores the rest
    let out = apps
        .patch(
            "sp",
            &pp,
            &Patch::Merge(json!({"status": {"applicationState": {"state": "HACKED"}}})),
        )
        .await
        .unwrap();
    assert_ne!(app_state(&out), "HACKED");
    let out = apps
        .patch_status("sp", &pp, &Patch::Merge(json!({"metadata": {"labels": {"ignored": "x"}}, "status": {"applicationState": {"state": "UNKNOWN"}, "driverInfo": {}}})))
        .await
        .unwrap();
    assert_eq!(app_state(&out), "UNKNOWN");
    assert!(
        out.metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key("ignored"))
    );
    assert_eq!(out.metadata.generation, Some(1));
    let out = apps
        .patch(
            "sp",
            &pp,
            &Patch::Merge(json!({"spec": {"arguments": ["10"]}})),
        )
        .await
        .unwrap();
    assert_eq!(out.metadata.generation, Some(2));
}

#[tokio::test]
async fn events_v1_recorder_and_core_events() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let sim = start(cfg());
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods
        .create(&PostParams::default(), &pod("ev", "10m", "1Mi"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test-ctl".into(),
            instance: None,
        },
    );
    let oref = kube::Resource::object_ref(&p, &());
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Tested".into(),
                note: Some("hello".into()),
                action: "Test".into(),
                secondary: None,
            },
            &oref,
        )
        .await
        .unwrap();
    let evs: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let list = evs.list(&ListParams::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Tested") && e.note.as_deref() == Some("hello"))
    );
    // the scheduler's own events are core/v1
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let found = eventually("Scheduled event", async || {
        let l = core
            .list(&ListParams::default().fields("reason=Scheduled"))
            .await
            .unwrap();
        l.items
            .into_iter()
            .find(|e| e.involved_object.name.as_deref() == Some("ev"))
    })
    .await;
    assert_eq!(
        found.source.unwrap().component.as_deref(),
        Some("default-scheduler")
    );
}
