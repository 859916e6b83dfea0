//! Integration tests: each test starts its own simulator on 127.0.0.1:0 and talks to it
//! with the real kube client (or kubectl) over HTTP.

mod api;
mod faults;
mod fidelity;
mod kubectl;
mod leases;
mod quota;
mod scheduler;
mod spark;
mod support;
mod watch;
