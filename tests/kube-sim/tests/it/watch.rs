//! Watch semantics through kube's raw watch, `watcher` and reflector.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{reflector, watcher};

use crate::support::*;

fn cfg() -> kube_sim::SimConfig {
    fast(kube_sim::SimConfig::uniform(2, "4", "16Gi"))
}

async fn next_event(
    s: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Pod>>> + Unpin),
) -> WatchEvent<Pod> {
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("watch event in time")
        .expect("stream open")
        .expect("event ok")
}

#[tokio::test]
async fn raw_watch_from_resource_version_sees_add_modify_delete_and_bookmarks() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    pods.create(&PostParams::default(), &pod("w1", "10m", "1Mi"))
        .await
        .unwrap();
    let mut saw = (false, false, false);
    while !(saw.0 && saw.1 && saw.2) {
        match next_event(&mut stream).await {
            WatchEvent::Added(p) if p.metadata.name.as_deref() == Some("w1") => saw.0 = true,
            WatchEvent::Modified(p) if node_of(&p).is_some() => {
                if !saw.1 {
                    pods.delete("w1", &kube::api::DeleteParams::default().grace_period(0))
                        .await
                        .unwrap();
                }
                saw.1 = true
            }
            WatchEvent::Deleted(p) => {
                assert_eq!(p.metadata.name.as_deref(), Some("w1"));
                saw.2 = true
            }
            WatchEvent::Error(e) => panic!("unexpected {e:?}"),
            _ => {}
        }
    }
    // with nothing happening, a bookmark arrives
    loop {
        if let WatchEvent::Bookmark(b) = next_event(&mut stream).await {
            assert!(!b.metadata.resource_version.is_empty());
            break;
        }
    }
}

#[tokio::test]
async fn too_old_resource_version_is_a_410_error_event() {
    let mut c = cfg();
    c.simulation.watch_history = 3;
    let sim = start(c);
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..5 {
        pods.create(&PostParams::default(), &pod(&format!("h{i}"), "10m", "1Mi"))
            .await
            .unwrap();
    }
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {rv} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_with_paging_then_forced_410_relists_and_drops_resume() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    for i in 0..7 {
        pods.create(&PostParams::default(), &pod(&format!("r{i}"), "10m", "1Mi"))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store::<Pod>();
    let stream = reflector(
        writer,
        watcher(pods.clone(), watcher::Config::default().page_size(3)),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut s = stream.boxed();
        while let Some(ev) = s.next().await {
            if tx
                .send(ev.map(|e| matches!(e, watcher::Event::InitDone)))
                .is_err()
            {
                break;
            }
        }
    });
    let inits =
        async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<bool, watcher::Error>>| loop {
            match tokio::time::timeout(WAIT, rx.recv())
                .await
                .expect("watcher event")
                .expect("open")
            {
                Ok(true) => break,
                Ok(false) => {}
                // the forced 410 surfaces once, then the watcher relists
                Err(e) if e.to_string().contains("Expired") => {}
                Err(e) => panic!("watcher error {e}"),
            }
        };
    inits(&mut rx).await;
    assert_eq!(reader.state().len(), 7);
    // forced 410 on the next watch + dropping the current one: the watcher relists
    sim.expire_next_watches(1);
    sim.drop_watches();
    inits(&mut rx).await;
    pods.create(&PostParams::default(), &pod("after", "10m", "1Mi"))
        .await
        .unwrap();
    eventually("reflector sees the new pod", async || {
        (reader.state().len() == 8).then_some(())
    })
    .await;
    // a plain drop resumes from the last version without a relist
    sim.drop_watches_after(Some(1));
    sim.drop_watches();
    pods.create(&PostParams::default(), &pod("after2", "10m", "1Mi"))
        .await
        .unwrap();
    eventually("reflector sees the second pod", async || {
        (reader.state().len() == 9).then_some(())
    })
    .await;
    let stats = sim.stats();
    assert!(
        stats["watches"]["dropped"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    task.abort();
}

#[tokio::test]
async fn streaming_list_and_timeout_seconds() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("s1", "10m", "1Mi"))
        .await
        .unwrap();
    let events: Vec<_> = watcher(pods.clone(), watcher::Config::default().streaming_lists())
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_collect()
        .await
        .unwrap();
    assert!(events.iter().any(
        |e| matches!(e, watcher::Event::InitApply(p) if p.metadata.name.as_deref() == Some("s1"))
    ));
    // a watch with timeoutSeconds=1 ends by itself
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let stream = pods
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap();
    let all: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("stream ended");
    assert!(all.iter().all(|e| e.is_ok()));
}

#[tokio::test]
async fn label_selected_watch_sees_objects_leave_as_deleted() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = pods
        .watch(&WatchParams::default().labels("team=x"), &rv)
        .await
        .unwrap()
        .boxed();
    let mut p = pod("sel", "10m", "1Mi");
    p.metadata
        .labels
        .get_or_insert_default()
        .insert("team".into(), "x".into());
    pods.create(&PostParams::default(), &p).await.unwrap();
    assert!(matches!(
        next_event(&mut stream).await,
        WatchEvent::Added(_)
    ));
    pods.patch(
        "sel",
        &Default::default(),
        &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "y"}}})),
    )
    .await
    .unwrap();
    loop {
        match next_event(&mut stream).await {
            WatchEvent::Deleted(p) => {
                assert_eq!(p.metadata.labels.unwrap()["team"], "y");
                break;
            }
            WatchEvent::Modified(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn metadata_watcher_as_controller_owns_uses_it() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("m1", "10m", "1Mi"))
        .await
        .unwrap();
    let meta: Api<kube::core::PartialObjectMeta<Pod>> = Api::namespaced(client(&sim), "default");
    let mut s = watcher(meta, watcher::Config::default()).boxed();
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, s.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok")
        {
            watcher::Event::InitApply(m) => names.push(m.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, vec!["m1".to_string()]);
    pods.create(&PostParams::default(), &pod("m2", "10m", "1Mi"))
        .await
        .unwrap();
    loop {
        if let watcher::Event::Apply(m) = tokio::time::timeout(WAIT, s.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok")
            && m.metadata.name.as_deref() == Some("m2")
        {
            assert_eq!(
                m.types.map(|t| t.kind).as_deref(),
                Some("PartialObjectMetadata")
            );
            break;
        }
    }
}
