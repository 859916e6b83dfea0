//! The HTTP API (axum): jobs, queues, dead letters, schedules, metrics, health.
//!
//! [`auth`] turns the `Authorization` header into a [`auth::Caller`] with roles and
//! namespaces; handlers check them before touching the store.

pub mod auth;
