//! queues

#![forbid(unsafe_code)]
