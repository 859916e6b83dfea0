//! The small catalog most store and intake tests use, and a valid job body for it.

use jobs::{Catalog, CatalogConfig, JobId};

/// A catalog with one node type (`small`) and default image, plus whatever `extra` TOML adds
/// (the namespaces, at least).
pub fn catalog_with(extra: &str) -> Catalog {
    let text = format!(
        r#"
        {extra}
        [node_types.small]
        cpu = "1"
        memory = "4Gi"
        [defaults]
        image = "apache/spark:3.5.3"
        spark_version = "3.5.3"
        driver_node_type = "small"
        "#
    );
    let config: CatalogConfig = toml::from_str(&text).unwrap();
    Catalog::new(config).unwrap()
}

/// [`catalog_with`] namespaces `team-a` and `team-b`, default windows.
pub fn catalog() -> Catalog {
    catalog_with("[namespaces.team-a]\n[namespaces.team-b]\n")
}

/// A valid job body for `namespace` with the given id (two `small` executors).
pub fn job_body(namespace: &str, name: &str, id: JobId) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "id": id.to_string(),
        "name": name,
        "namespace": namespace,
        "mainApplicationFile": "local:///opt/app.jar",
        "mainClass": "com.example.Main",
        "executor": { "nodeType": "small", "instances": 2 }
    }))
    .unwrap()
}
