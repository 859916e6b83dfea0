//! submitter

#![forbid(unsafe_code)]
