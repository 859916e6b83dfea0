//! capacity

#![forbid(unsafe_code)]
