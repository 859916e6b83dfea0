//! orchestrator

#![forbid(unsafe_code)]
