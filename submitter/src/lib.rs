//! The admission loop: turns pending jobs into running Spark applications, in a fair,
//! priority-respecting order, only when the cluster can hold the driver and its executors.
//!
//! [`footprint`] sizes a job's pods exactly as Spark will; [`spark_app`] renders the
//! `SparkApplication` from that same footprint and [`naming`] gives it a deterministic name and
//! labels, so the capacity demand and the pods Spark creates agree.

#![forbid(unsafe_code)]

pub mod footprint;
pub mod naming;
pub mod ordering;
pub mod spark_app;
