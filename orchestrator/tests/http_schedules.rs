//! `/v1/schedules`: create, list, show, replace, pause, resume, delete, next fire times, and
//! every validation problem reported at once with its path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, ADMIN_A, READ_A, READ_AB, SUBMIT_A, TestApi, job};

fn template(namespace: &str) -> Value {
    let mut t = job(namespace, "nightly-etl");
    t.as_object_mut().unwrap().remove("id");
    t
}

fn schedule(name: &str, namespace: &str) -> Value {
    json!({
        "name": name,
        "cron": "30 2 * * *",
        "timeZone": "Europe/Berlin",
        "jobTemplate": template(namespace),
        "missedRunPolicy": "catch-up",
        "catchUpLimit": 3,
        "concurrencyPolicy": "forbid"
    })
}

fn problems(v: &Value) -> HashSet<(String, String)> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_owned(),
                p["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_created_listed_shown_paused_resumed_replaced_and_deleted() {
    let api = TestApi::start().await;
    let created = api
        .post("/v1/schedules", ADMIN, &schedule("nightly", "team-a"))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["location"], "/v1/schedules/nightly");
    let s = &created.body;
    assert_eq!(s["namespace"], "team-a", "taken from the template");
    assert_eq!(s["timeZone"], "Europe/Berlin");
    assert_eq!(s["missedRunPolicy"], "catch-up");
    assert_eq!(s["catchUpLimit"], 3);
    assert_eq!(s["concurrencyPolicy"], "forbid");
    assert_eq!(s["startingDeadlineSeconds"], 300);
    assert_eq!(s["suspended"], false);
    assert_eq!(s["jobTemplate"], template("team-a"), "stored as given");
    let fires = s["nextFires"].as_array().unwrap();
    assert_eq!(fires.len(), 5);
    let now = Utc::now();
    let mut previous = now;
    for f in fires {
        assert!(f["nominal"].as_str().unwrap().ends_with("02:30:00"), "{f}");
        let at: DateTime<Utc> = f["at"].as_str().unwrap().parse().unwrap();
        assert!(at > previous, "increasing, in the future: {f}");
        // 02:30 in Berlin is 00:30 or 01:30 UTC.
        assert!(
            at.format("%M").to_string() == "30"
                && ["00", "01"].contains(&at.format("%H").to_string().as_str()),
            "{at}"
        );
        previous = at;
    }

    assert_eq!(
        api.post("/v1/schedules", ADMIN, &schedule("nightly", "team-a"))
            .await
            .status,
        409,
        "name taken"
    );
    let hourly = json!({"name": "hourly-b", "cron": "@hourly", "jobTemplate": template("team-b")});
    let b = api.post("/v1/schedules", ADMIN, &hourly).await;
    assert_eq!(b.status, 201, "{}", b.text);
    assert_eq!(b.body["timeZone"], "UTC");
    assert_eq!(b.body["missedRunPolicy"], "skip");
    assert_eq!(b.body["concurrencyPolicy"], "allow");

    let listed = api.get("/v1/schedules", READ_AB).await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hourly-b", "nightly"]);
    let a_only = api.get("/v1/schedules?fires=1", READ_A).await;
    let items = a_only.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "scoped to team-a");
    assert_eq!(items[0]["nextFires"].as_array().unwrap().len(), 1);

    let shown = api.get("/v1/schedules/nightly?fires=12", READ_A).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["nextFires"].as_array().unwrap().len(), 12);
    assert_eq!(shown.body["recentFires"], json!([]));
    assert_eq!(api.get("/v1/schedules/hourly-b", READ_A).await.status, 403);
    assert_eq!(api.get("/v1/schedules/nope", READ_A).await.status, 404);
    assert_eq!(
        api.get("/v1/schedules/nightly?fires=101", READ_A)
            .await
            .status,
        400
    );

    let paused = api.post_empty("/v1/schedules/nightly/pause", ADMIN_A).await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    assert_eq!(paused.body["suspended"], true);
    assert_eq!(
        paused.body["nextFires"],
        json!([]),
        "nothing fires while suspended"
    );
    let stored = api.store.schedule("nightly").await.unwrap().unwrap();
    assert!(stored.definition.suspended);
    let resumed = api
        .post_empty("/v1/schedules/nightly/resume", ADMIN_A)
        .await;
    assert_eq!(resumed.body["suspended"], false);
    assert_eq!(resumed.body["nextFires"].as_array().unwrap().len(), 5);
    assert_eq!(
        api.post_empty("/v1/schedules/hourly-b/pause", ADMIN_A)
            .await
            .status,
        403
    );

    let mut replacement = schedule("nightly", "team-a");
    replacement["cron"] = json!("0 */6 * * *");
    replacement["timeZone"] = json!("UTC");
    let replaced = api
        .request(
            Method::PUT,
            "/v1/schedules/nightly",
            Some(ADMIN),
            Some((
                "application/json",
                serde_json::to_vec(&replacement).unwrap(),
            )),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.body["cron"], "0 */6 * * *");
    assert_eq!(replaced.body["id"], created.body["id"], "same schedule");
    let into_b = {
        let mut r = schedule("nightly", "team-b");
        r["cron"] = json!("0 1 * * *");
        r
    };
    let moved = api
        .request(
            Method::PUT,
            "/v1/schedules/nightly",
            Some(ADMIN_A),
            Some(("application/json", serde_json::to_vec(&into_b).unwrap())),
        )
        .await;
    assert_eq!(moved.status, 403, "a team-a admin cannot move it to team-b");
    let missing = api
        .request(
            Method::PUT,
            "/v1/schedules/none",
            Some(ADMIN),
            Some((
                "application/json",
                serde_json::to_vec(&replacement).unwrap(),
            )),
        )
        .await;
    assert_eq!(missing.status, 404);

    assert_eq!(
        api.request(Method::DELETE, "/v1/schedules/nightly", Some(READ_A), None)
            .await
            .status,
        403
    );
    let deleted = api
        .request(Method::DELETE, "/v1/schedules/nightly", Some(ADMIN_A), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(api.store.schedule("nightly").await.unwrap().is_none());
    assert_eq!(
        api.request(Method::DELETE, "/v1/schedules/nightly", Some(ADMIN), None)
            .await
            .status,
        404
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_problem_of_a_schedule_is_reported_with_its_path() {
    let api = TestApi::start().await;
    let mut t = template("team-a");
    t["id"] = json!("0190d3c4-0000-7000-8000-000000000001");
    t["executor"] = json!({"nodeType": "enormous", "instances": 1});
    let bad = json!({
        "name": "Bad Name!",
        "cron": "61 * * * *",
        "timeZone": "Mars/Olympus",
        "jobTemplate": t,
        "missedRunPolicy": "whenever",
        "catchUpLimit": 0,
        "startingDeadlineSeconds": 0,
        "concurrencyPolicy": "sometimes",
    });
    let a = api.post("/v1/schedules", ADMIN, &bad).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.body["error"], "invalid-schedule");
    let found = problems(&a.body);
    for expected in [
        ("invalid-name", "$.name"),
        ("invalid-value", "$.timeZone"),
        ("out-of-range", "$.catchUpLimit"),
        ("invalid-value", "$.missedRunPolicy"),
        ("out-of-range", "$.startingDeadlineSeconds"),
        ("invalid-value", "$.concurrencyPolicy"),
        ("forbidden", "$.jobTemplate.id"),
        ("unknown-node-type", "$.jobTemplate.executor.nodeType"),
    ] {
        assert!(
            found.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing in {found:?}"
        );
    }
    // A bad expression in a good zone: 422 (the schema cannot tell), 400 when empty.
    for (cron, status) in [
        ("61 * * * *", 422),
        ("* * * *", 422),
        ("0 0 30 2 *", 422),
        ("\u{0}", 422),
        ("", 400),
    ] {
        let mut s = schedule("x", "team-a");
        s["cron"] = json!(cron);
        let a = api.post("/v1/schedules", ADMIN, &s).await;
        assert_eq!(a.status, status, "{cron:?}: {}", a.text);
        assert!(
            problems(&a.body).contains(&("invalid-value".into(), "$.cron".into())),
            "{cron:?}: {}",
            a.text
        );
    }
    // Six fields (with seconds) are fine.
    let mut s = schedule("every-ten-seconds", "team-a");
    s["cron"] = json!("*/10 * * * * *");
    assert_eq!(api.post("/v1/schedules", ADMIN, &s).await.status, 201);
    // Template problems: structural ones 400, the config's 422.
    for (tpl, code, path, status) in [
        (json!("not an object"), "wrong-type", "$.jobTemplate", 400),
        (
            json!({"name": "x"}),
            "missing-field",
            "$.jobTemplate.namespace",
            400,
        ),
        (
            template("team-zz"),
            "unknown-namespace",
            "$.jobTemplate.namespace",
            422,
        ),
    ] {
        let mut s = schedule("y", "team-a");
        s["jobTemplate"] = tpl;
        let a = api.post("/v1/schedules", ADMIN, &s).await;
        assert_eq!(a.status, status, "{}", a.text);
        let p = problems(&a.body);
        assert!(
            p.iter().any(|(c, pa)| c == code && pa == path)
                || p.iter().any(|(_, pa)| pa.starts_with(path)),
            "{code} {path}: {p:?}"
        );
    }
    let mut s = schedule("z", "team-a");
    s["namespace"] = json!("team-b");
    let a = api.post("/v1/schedules", ADMIN, &s).await;
    assert!(problems(&a.body).contains(&("conflicting-fields".into(), "$.namespace".into())));
    // Body-level problems.
    let mut s = schedule("z", "team-a");
    s["colour"] = json!("blue");
    let a = api.post("/v1/schedules", ADMIN, &s).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["problems"][0]["code"], "unknown-field");
    let a = api
        .post(
            "/v1/schedules",
            ADMIN,
            &json!({"name": "n", "jobTemplate": template("team-a")}),
        )
        .await;
    assert_eq!(a.body["problems"][0]["code"], "missing-field");
    let a = api
        .post(
            "/v1/schedules",
            ADMIN,
            &json!({"name": 5, "cron": "* * * * *", "jobTemplate": {}}),
        )
        .await;
    assert_eq!(a.body["problems"][0]["code"], "wrong-type");
    assert_eq!(a.body["problems"][0]["path"], "$.name");
    // Scope: a team-a admin cannot create for team-b; a submitter cannot create at all.
    assert_eq!(
        api.post("/v1/schedules", ADMIN_A, &schedule("b-one", "team-b"))
            .await
            .status,
        403
    );
    assert_eq!(
        api.post("/v1/schedules", SUBMIT_A, &schedule("a-one", "team-a"))
            .await
            .status,
        403
    );
    let names: Vec<String> = api
        .store
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.definition.name)
        .collect();
    assert_eq!(names, ["every-ten-seconds"], "nothing invalid was stored");
    api.finish().await;
}
