//! The admission loop: turns pending jobs into running Spark applications, in a fair,
//! priority-respecting order, only when the cluster can hold the driver and its executors.
//!
//! Data flow: pending jobs → [`footprint`] (each job's pods, sized exactly as Spark sizes them)
//! → [`ordering::decide`] (who goes next, over the capacity checker's view: priority, fair
//! shares, FIFO, reservations and backfill, never-fits) → for each admission the
//! [`spark_app`] emitter renders the `SparkApplication` from the same footprint, named and
//! labelled by [`naming`] so a retried create adopts instead of duplicating → [`tracking`]
//! classifies what the application and its pods do (states, failure categories, stuck
//! detection) and decides retries that learn from the failure.

#![forbid(unsafe_code)]

pub mod footprint;
pub mod kube_apps;
pub mod naming;
pub mod ordering;
pub mod room;
pub mod spark_app;
pub mod tracking;
