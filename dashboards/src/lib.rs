//! dashboards

#![forbid(unsafe_code)]
