//! kube-sim

#![forbid(unsafe_code)]
