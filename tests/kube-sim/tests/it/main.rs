//! Integration tests: each test starts its own simulator on 127.0.0.1:0 and talks to it
//! with the real kube client (or kubectl) over HTTP.

#[cfg(test)]
mod api;
#[cfg(test)]
mod binary;
#[cfg(test)]
mod deletion;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod fidelity;
#[cfg(test)]
mod kubectl;
#[cfg(test)]
mod leases;
#[cfg(test)]
mod least_privilege;
#[cfg(test)]
mod protobuf;
#[cfg(test)]
mod quota;
#[cfg(test)]
mod rbac;
#[cfg(test)]
mod scheduler;
#[cfg(test)]
mod spark;
#[cfg(test)]
mod support;
#[cfg(test)]
mod watch;
