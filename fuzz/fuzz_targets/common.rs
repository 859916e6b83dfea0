//! The catalog every target validates against: the shipped example config's, so the fuzzer
//! meets the namespaces, node types and limits a user starts from.

use std::sync::LazyLock;

use jobs::Catalog;

pub static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let text = include_str!("../../examples/orchestrator.toml");
    match orchestrator::config::Config::from_toml_str(text, "examples/orchestrator.toml") {
        Ok(config) => config.catalog,
        Err(e) => panic!("the example config is invalid: {e}"),
    }
});
