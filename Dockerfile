# syntax=docker/dockerfile:1.10
# The orchestrator daemon's image: built with the toolchain the workspace pins
# (`rust-version` in Cargo.toml), run as a non-root user on a slim Debian of the same release
# (glibc matches). Build from the repository root:
#
#     docker build -t spark-orchestrator:0.1.0 .
#
# deploy/tests/dockerfile.rs checks this file's structure (pinned bases, non-root user, the
# binary built is the one the entrypoint runs). Pin the bases by digest (`@sha256:…`) in
# your own registry mirror if you need reproducible images.

FROM rust:1.95.0-slim-trixie AS build
WORKDIR /src
# The whole workspace: cargo needs every member's manifest to resolve the lock file.
COPY . .
# sqlx macros must not reach for a database at build time.
ENV SQLX_OFFLINE=true CARGO_TERM_COLOR=never
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked -p orchestrator --bin orchestrator

FROM debian:13.2-slim AS runtime
# TLS roots for amqps:// and PostgreSQL sslmode=verify-full (the in-cluster Kubernetes CA
# comes from the service account mount).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/orchestrator /usr/local/bin/orchestrator
# The config is mounted here (deploy/base: a ConfigMap); secrets come from the environment.
WORKDIR /etc/orchestrator
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/orchestrator"]
CMD ["run", "--config", "/etc/orchestrator/orchestrator.toml"]
