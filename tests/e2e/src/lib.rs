//! End-to-end harness: one test's world made of the real parts — a fresh PostgreSQL database
//! (`test_support::pg`), a unique topology on the shared RabbitMQ, a private kube-sim cluster
//! enforcing `deploy/base`'s RBAC, and the real daemon on them as that ServiceAccount
//! ([`world`]), held as a standby until the test lets it lead ([`lease`]). Tests wait with `test_support::eventually`: on a condition, with a deadline.
//! The suites in `tests/` drive it the way publishers and operators would.

#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a panic is how a test fails, loudly"
)]

pub mod lease;
pub mod world;
