//! kube-sim: an in-memory Kubernetes API server for tests and the demo, reached over
//! plain HTTP by the real `kube` client and `kubectl`.
//!
//! Data flows like this: [`server`] (axum) resolves each request to a resource and
//! verb, applies [`faults`], and calls [`api`] under the single [`cluster`] lock; `api`
//! decodes ([`validation`] for built-ins, [`crd`] for SparkApplications), defaults and
//! admits ([`admission`], [`quota`]), patches ([`patch`], server-side apply in
//! [`fields`]) and writes to the [`store`], which assigns resourceVersions, keeps
//! indexes (pods by node, allocated sums per node, quota usage) and a per-resource
//! event history, and broadcasts every change to watches ([`server::watch`]). The
//! [`controllers`] loop consumes the same changes and plays the control plane:
//! garbage collector, quota controller, scheduler, kubelet, and the Spark Operator
//! with Spark's driver (pod shapes in [`spark`]), on the virtual [`clock`]. [`config`]
//! seeds the cluster; [`admin`] and [`handle`] expose runtime controls.
//! [`eventconv`] serves `events.k8s.io/v1` as a view of core Events.
//! [`auth`] (tokens, access log) and [`rbac`] (the authorizer) guard every request
//! when the configuration turns them on (over TLS, [`tls`]); [`manifests`] loads objects
//! from YAML at start; [`protobuf`] speaks kubectl's protobuf for built-in kinds.
//! [`quantity`], [`podres`], [`selector`] and [`object`] are small helpers.

#![forbid(unsafe_code)]

pub mod admin;
pub mod admission;
pub mod api;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod controllers;
pub mod crd;
pub mod error;
pub mod eventconv;
pub mod faults;
pub mod fields;
pub mod handle;
pub mod manifests;
pub mod object;
pub mod patch;
pub mod podres;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod rbac;
pub mod resources;
pub mod selector;
pub mod server;
pub mod spark;
pub mod store;
pub mod tls;
pub mod validation;

pub use auth::{AccessEntry, AccessRecord, AuthConfig, UserConfig};
pub use config::{
    NamespaceConfig, PoolConfig, PriorityClassConfig, QuotaConfig, Scoring, SimConfig,
};
pub use error::{ApiError, Error, Result};
pub use faults::{ErrorRule, FaultConfig, LatencyRule};
pub use handle::{SimHandle, Simulator, kubeconfig, kubeconfig_with_token};
pub use rbac::Identity;
