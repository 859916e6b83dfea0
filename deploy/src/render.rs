//! Running the real tools on the real files: `deploy/render` (kubectl's kustomize, plus the
//! PrometheusRule step), `kubectl kustomize`, and `kubernetes-validate --strict`. Used by the
//! integration tests; each failure carries the tool's own message.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{Error, Result};

/// The Kubernetes version built-in kinds are validated against: the API the project targets
/// (k8s-openapi's `v1_33`, kube-sim, kubectl 1.33).
pub const KUBERNETES_VERSION: &str = "1.33.0";

/// The repository root (this crate lives in `deploy/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn run(what: &str, command: &mut Command, stdin: Option<&[u8]>) -> Result<String> {
    let fail = |message: String| Error::Invalid {
        what: what.into(),
        message,
    };
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes)
            .map_err(|e| fail(format!("cannot write its input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("did not finish: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(fail(format!(
            "{}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// `deploy/render TARGET`: the YAML an operator applies.
pub fn render(target: &str) -> Result<String> {
    let script = repo_root().join("deploy/render");
    run(
        &format!("deploy/render {target}"),
        Command::new(script).arg(target),
        None,
    )
}

/// `kubectl kustomize DIR`: what `kubectl apply -k DIR` applies.
pub fn kustomize(dir: &Path) -> Result<String> {
    run(
        &format!("kubectl kustomize {}", dir.display()),
        Command::new("kubectl").arg("kustomize").arg(dir),
        None,
    )
}

/// Validates objects of built-in kinds with `kubernetes-validate --strict` (unknown fields are
/// errors) against [`KUBERNETES_VERSION`]. Fails unless the tool passed each object: a kind
/// it has no schema for is a warning to it and a failure here.
pub fn kubernetes_validate(objects: &[Value]) -> Result<()> {
    let mut text = String::new();
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_json::to_string(o).unwrap_or_default());
        text.push('\n');
    }
    let what = format!("kubernetes-validate --strict -k {KUBERNETES_VERSION}");
    let out = run(
        &what,
        Command::new("kubernetes-validate")
            .args(["--strict", "-k", KUBERNETES_VERSION, "-"])
            .env("NO_COLOR", "1"),
        Some(text.as_bytes()),
    )?;
    let passed = out
        .lines()
        .filter(|l| l.contains("passed for resource"))
        .count();
    if passed != objects.len() {
        return Err(Error::Invalid {
            what,
            message: format!("{passed} of {} objects passed:\n{out}", objects.len()),
        });
    }
    Ok(())
}
