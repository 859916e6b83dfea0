//! The submitter's Kubernetes edge on kube-sim, with the real client: `create_or_adopt` sends
//! the rendered JSON as it is, adopts the application a previous run created for the same job
//! and attempt, refuses to adopt one of another attempt, and tells an invalid spec apart.

#![allow(clippy::unwrap_used, reason = "test")]

use e2e::world::{DEFAULT_CATALOG, default_cluster};
use jobs::Catalog;
use kube::api::{Api, ListParams};
use kube_sim::Simulator;
use serde_json::json;
use submitter::footprint::Footprint;
use submitter::kube_apps::{Created, SparkApplication, SubmitError, create_or_adopt};
use submitter::naming::ATTEMPT_LABEL;
use submitter::spark_app::{EmitSettings, spark_application};

#[tokio::test]
async fn create_or_adopt_creates_adopts_and_refuses_what_is_not_its_own() {
    let sim = Simulator::start(default_cluster(1), "127.0.0.1:0".parse().unwrap()).unwrap();
    let client = sim.client().unwrap();
    let catalog = Catalog::new(toml::from_str(DEFAULT_CATALOG).unwrap()).unwrap();
    let job = jobs::validate::validate_value(
        &json!({
            "apiVersion": "v1", "name": "edge", "namespace": "team-a",
            "mainApplicationFile": "local:///opt/app.jar", "mainClass": "Main",
            "executor": {"instances": 2}
        }),
        &catalog,
    )
    .unwrap();
    let footprint = Footprint::of(&job, &catalog).unwrap();
    let rendered = spark_application(&job, &footprint, 1, &EmitSettings::default());
    let name = rendered["metadata"]["name"].as_str().unwrap().to_owned();
    let api: Api<SparkApplication> = Api::namespaced(client.clone(), "team-a");

    let created = create_or_adopt(&client, "team-a", &rendered).await.unwrap();
    assert_eq!(created, Created::Created);
    let stored = api.get(&name).await.unwrap();
    assert_eq!(stored.spec, rendered["spec"], "the rendered spec, as sent");
    assert_eq!(
        serde_json::to_value(&stored.metadata.labels).unwrap(),
        rendered["metadata"]["labels"]
    );

    // A second create of the same job and attempt (a crash between create and record).
    let again = create_or_adopt(&client, "team-a", &rendered).await.unwrap();
    assert_eq!(again, Created::Adopted);

    // The same name for another attempt: not this admission's to adopt.
    let mut other = rendered.clone();
    other["metadata"]["labels"][ATTEMPT_LABEL] = json!("2");
    let taken = create_or_adopt(&client, "team-a", &other).await;
    assert!(matches!(taken, Err(SubmitError::NameTaken(_))), "{taken:?}");

    // A spec the API server refuses: invalid, not retried.
    let mut invalid = rendered.clone();
    invalid["metadata"]["name"] = json!("edge-invalid");
    invalid["spec"]["driver"]["cores"] = json!("many");
    let refused = create_or_adopt(&client, "team-a", &invalid).await;
    assert!(
        matches!(refused, Err(SubmitError::Invalid(_))),
        "{refused:?}"
    );

    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|a| a.metadata.name)
        .collect();
    assert_eq!(names, [name], "one application, never a second");
    sim.shutdown();
}
