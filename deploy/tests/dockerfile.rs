//! The repository's Dockerfile follows the image rules (deploy::dockerfile::check), builds with
//! the toolchain the workspace declares, runs the daemon the way the Deployment does, and its
//! .dockerignore keeps every workspace member in the build context.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

use deploy::dockerfile::{self, Dockerfile, Expect};
use deploy::render::repo_root;

fn dockerfile() -> Dockerfile {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    Dockerfile::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn workspace() -> toml::Value {
    toml::from_str(&std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap()).unwrap()
}

#[test]
fn the_image_recipe_follows_the_rules() {
    let problems = dockerfile::check(
        &dockerfile(),
        Expect {
            package: "orchestrator",
            bin: "orchestrator",
        },
    );
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn the_build_stage_uses_the_workspace_toolchain_and_the_runtime_its_debian() {
    let f = dockerfile();
    let rust_version = workspace()["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap()
        .to_owned();
    let build = &f.stages[0];
    let tag = build
        .base
        .strip_prefix("rust:")
        .unwrap_or_else(|| panic!("{}", build.base));
    assert!(
        tag.starts_with(&format!("{rust_version}."))
            || tag.starts_with(&format!("{rust_version}-")),
        "build image {} is not Rust {rust_version}",
        build.base
    );
    // The binary links glibc dynamically: the runtime must be the Debian release it was built on.
    let release = [("trixie", "13."), ("bookworm", "12.")]
        .into_iter()
        .find(|(name, _)| tag.ends_with(name))
        .unwrap_or_else(|| panic!("build image {} names no Debian release", build.base));
    let runtime = &f.image().base;
    assert!(
        runtime.starts_with(&format!("debian:{}", release.1)),
        "{runtime} is not Debian {}",
        release.0
    );
}

#[test]
fn the_image_runs_the_daemon_with_the_config_the_deployment_mounts() {
    let f = dockerfile();
    let cmd = f
        .image()
        .instructions
        .iter()
        .rfind(|i| i.keyword == "CMD")
        .unwrap();
    let cmd: Vec<String> = serde_json::from_str(&cmd.args).unwrap();
    assert_eq!(
        cmd,
        ["run", "--config", "/etc/orchestrator/orchestrator.toml"]
    );
    let cli = <orchestrator::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("orchestrator").chain(cmd.iter().map(String::as_str)),
    )
    .unwrap();
    assert!(matches!(cli.command, orchestrator::cli::Command::Run(_)));
    let user = f
        .image()
        .instructions
        .iter()
        .rfind(|i| i.keyword == "USER")
        .unwrap();
    let base = std::fs::read_to_string(repo_root().join("deploy/base/deployment.yaml")).unwrap();
    let uid = user.args.split(':').next().unwrap();
    assert!(
        base.contains(&format!("runAsUser: {uid}")),
        "the pod runs as the image's uid {uid}"
    );
}

#[test]
fn dockerignore_keeps_what_cargo_needs_and_drops_build_output() {
    let text = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", ".git"] {
        assert!(patterns.contains(&needed), ".dockerignore lacks {needed}");
    }
    let ws = workspace();
    let members = ws["workspace"]["members"].as_array().unwrap();
    let mut needed: Vec<String> = vec!["Cargo.toml".into(), "Cargo.lock".into()];
    for m in members {
        let m = m.as_str().unwrap();
        needed.push(format!("{m}/Cargo.toml"));
        needed.push(format!("{m}/src"));
    }
    for path in &needed {
        assert!(
            repo_root().join(path).exists() || path.ends_with("/src"),
            "{path}"
        );
        for p in &patterns {
            let p = p.trim_start_matches('/').trim_end_matches('/');
            let excluded = path == p || path.starts_with(&format!("{p}/"));
            assert!(
                !excluded,
                ".dockerignore pattern {p:?} drops {path}, which the build needs"
            );
        }
    }
}
