//! A Dockerfile's structure and the rules our image recipe must follow.
//!
//! There is no container engine on the machines that test this project, so the recipe is
//! checked by reading it: [`Dockerfile::parse`] splits it into stages of instructions (line
//! continuations and comments handled as BuildKit does), and [`check`] says everything that
//! breaks the rules — every base image pinned to a version (never `latest`, never a bare
//! name), a numeric non-root `USER` in the final stage, an exec-form `ENTRYPOINT` running the
//! binary that a `cargo build --release --locked -p PACKAGE --bin BIN` in an earlier stage
//! produced and that the final stage copies from there.

use crate::{Error, Result};

/// Largest Dockerfile we read (ours is a few KiB).
pub const MAX_BYTES: usize = 256 * 1024;

/// One instruction, continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// Upper-cased keyword (`RUN`, `COPY`, …).
    pub keyword: String,
    /// Everything after the keyword, trimmed.
    pub args: String,
}

/// A build stage: a `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Line of the `FROM`.
    pub line: usize,
    /// The base: an image reference or an earlier stage's name.
    pub base: String,
    /// `AS name`, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The stages in order; the last one is the image.
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Parses Dockerfile text. Refuses what it cannot check: oversized or non-text input,
    /// instructions before the first `FROM` (an `ARG` there could make a base unpinnable),
    /// unknown keywords and a `FROM` without an image.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |message: String| Error::Invalid {
            what: "Dockerfile".into(),
            message,
        };
        if text.len() > MAX_BYTES {
            return Err(invalid(format!(
                "{} bytes is more than the {MAX_BYTES} a Dockerfile may have",
                text.len()
            )));
        }
        if text.contains('\0') {
            return Err(invalid("contains NUL bytes: not a text file".into()));
        }
        let mut stages: Vec<Stage> = Vec::new();
        for ins in instructions(text) {
            if !KEYWORDS.contains(&ins.keyword.as_str()) {
                return Err(invalid(format!(
                    "line {}: unknown instruction {:?}",
                    ins.line, ins.keyword
                )));
            }
            if ins.keyword == "FROM" {
                stages.push(parse_from(&ins).map_err(invalid)?);
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(ins);
            } else {
                return Err(invalid(format!(
                    "line {}: {} before the first FROM",
                    ins.line, ins.keyword
                )));
            }
        }
        if stages.is_empty() {
            return Err(invalid("no FROM: not a Dockerfile".into()));
        }
        Ok(Self { stages })
    }

    /// The final stage (the image).
    pub fn image(&self) -> &Stage {
        // `parse` refuses a file without stages.
        &self.stages[self.stages.len() - 1]
    }

    /// The stage a `--from=` value names: a stage name or an index.
    pub fn stage(&self, reference: &str) -> Option<(usize, &Stage)> {
        let reference = reference.to_ascii_lowercase();
        if let Ok(i) = reference.parse::<usize>() {
            return self.stages.get(i).map(|s| (i, s));
        }
        self.stages
            .iter()
            .enumerate()
            .find(|(_, s)| s.name.as_deref() == Some(reference.as_str()))
    }
}

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Splits text into instructions: `#` lines are comments (also inside a continuation), a
/// trailing `\` continues the instruction on the next line.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (line, false),
        };
        let (start, mut joined) = current.take().unwrap_or((i + 1, String::new()));
        if !joined.is_empty() && !body.is_empty() {
            joined.push(' ');
        }
        joined.push_str(body);
        if continues {
            current = Some((start, joined));
        } else if !joined.is_empty() {
            out.push(split(start, &joined));
        }
    }
    if let Some((start, joined)) = current.filter(|(_, j)| !j.is_empty()) {
        out.push(split(start, &joined));
    }
    out
}

fn split(line: usize, text: &str) -> Instruction {
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_owned(),
    }
}

fn parse_from(ins: &Instruction) -> std::result::Result<Stage, String> {
    let words: Vec<&str> = ins
        .args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let (base, name) = match words.as_slice() {
        [base] => (*base, None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => (*base, Some(*name)),
        _ => {
            return Err(format!(
                "line {}: FROM {:?} is not `FROM IMAGE [AS NAME]`",
                ins.line, ins.args
            ));
        }
    };
    Ok(Stage {
        line: ins.line,
        base: base.to_owned(),
        name: name.map(str::to_ascii_lowercase),
        instructions: Vec::new(),
    })
}

/// What the image must build and run.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The cargo package (`-p`).
    pub package: &'a str,
    /// The binary (`--bin`), which the entrypoint must run.
    pub bin: &'a str,
}

/// Every way the Dockerfile breaks the rules (empty: it follows them).
pub fn check(file: &Dockerfile, expect: Expect<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    if file.stages.len() < 2 {
        problems.push(
            "one stage only: build in one stage and copy the binary into a minimal runtime stage"
                .to_owned(),
        );
    }
    for (i, stage) in file.stages.iter().enumerate() {
        let earlier = file.stages[..i]
            .iter()
            .any(|s| s.name.as_deref() == Some(stage.base.to_ascii_lowercase().as_str()));
        if !earlier && let Err(why) = pinned(&stage.base) {
            problems.push(format!("line {}: FROM {}: {why}", stage.line, stage.base));
        }
    }
    let image = file.image();
    check_user(image, &mut problems);
    let Some(entry) = exec_form(image, "ENTRYPOINT", &mut problems) else {
        return problems;
    };
    let Some(program) = entry.first() else {
        problems.push("ENTRYPOINT is an empty list".to_owned());
        return problems;
    };
    if program.rsplit('/').next() != Some(expect.bin) {
        problems.push(format!(
            "ENTRYPOINT runs {program:?}, not the {:?} binary",
            expect.bin
        ));
    }
    if exec_form(image, "CMD", &mut problems).is_some_and(|cmd| cmd.is_empty()) {
        problems.push("CMD is an empty list".to_owned());
    }
    check_copy(file, expect, program, &mut problems);
    problems
}

/// `Ok` when an image reference names a version: a tag with a digit that is not `latest`, or
/// a digest.
pub fn pinned(reference: &str) -> std::result::Result<(), String> {
    if reference.contains('$') {
        return Err("a variable in FROM cannot be checked; write the version".into());
    }
    if let Some((_, digest)) = reference.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        return if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err(format!("digest {digest:?} is not sha256:<64 hex digits>"))
        };
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let Some((_, tag)) = last.split_once(':') else {
        return Err("no tag: pin a version (a bare name means latest)".into());
    };
    if tag.is_empty() {
        return Err("empty tag".into());
    }
    if tag.eq_ignore_ascii_case("latest") || tag.to_ascii_lowercase().contains("latest") {
        return Err(format!("tag {tag:?} moves: pin a version"));
    }
    if !tag.bytes().any(|b| b.is_ascii_digit()) {
        return Err(format!(
            "tag {tag:?} names no version (e.g. slim, stable, nonroot); pin one"
        ));
    }
    Ok(())
}

fn check_user(image: &Stage, problems: &mut Vec<String>) {
    let Some(user) = image.instructions.iter().rfind(|i| i.keyword == "USER") else {
        problems.push("the final stage has no USER: the image would run as root".to_owned());
        return;
    };
    let (uid, gid) = match user.args.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user.args.as_str(), None),
    };
    match uid.parse::<u32>() {
        Ok(0) => problems.push(format!("line {}: USER {} is root", user.line, user.args)),
        Ok(_) => {}
        Err(_) => problems.push(format!(
            "line {}: USER {:?} is not a numeric uid (Kubernetes' runAsNonRoot cannot verify a name)",
            user.line, user.args
        )),
    }
    if let Some(g) = gid
        && g.parse::<u32>().is_ok_and(|g| g == 0)
    {
        problems.push(format!(
            "line {}: USER {} runs in the root group",
            user.line, user.args
        ));
    }
}

/// The last `keyword` of the stage as an exec-form list, or a problem.
fn exec_form(stage: &Stage, keyword: &str, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let Some(ins) = stage.instructions.iter().rfind(|i| i.keyword == keyword) else {
        problems.push(format!("the final stage has no {keyword}"));
        return None;
    };
    match serde_json::from_str::<Vec<String>>(&ins.args) {
        Ok(list) => Some(list),
        Err(_) => {
            problems.push(format!(
                "line {}: {keyword} {:?} is not exec form (a JSON list of strings): a shell form runs /bin/sh as PID 1, which does not pass SIGTERM on",
                ins.line, ins.args
            ));
            None
        }
    }
}

/// The final stage copies `program` from an earlier stage whose `cargo build` made it.
fn check_copy(file: &Dockerfile, expect: Expect<'_>, program: &str, problems: &mut Vec<String>) {
    let image = file.image();
    let copies: Vec<(&Instruction, &str, Vec<&str>)> = image
        .instructions
        .iter()
        .filter(|i| i.keyword == "COPY")
        .filter_map(|i| {
            let mut from = None;
            let mut paths = Vec::new();
            for w in i.args.split_whitespace() {
                if let Some(f) = w.strip_prefix("--from=") {
                    from = Some(f);
                } else if !w.starts_with("--") {
                    paths.push(w);
                }
            }
            from.map(|f| (i, f, paths))
        })
        .collect();
    let suffix = format!("/release/{}", expect.bin);
    let found = copies.iter().find(|(_, _, paths)| {
        paths.len() == 2
            && paths[0].ends_with(&suffix)
            && (paths[1] == program
                || (paths[1].ends_with('/') && format!("{}{}", paths[1], expect.bin) == program))
    });
    let Some((copy, from, _)) = found else {
        problems.push(format!(
            "the final stage copies no .../release/{} to {program} from a build stage",
            expect.bin
        ));
        return;
    };
    let Some((index, stage)) = file.stage(from) else {
        problems.push(format!(
            "line {}: COPY --from={from} names no earlier stage",
            copy.line
        ));
        return;
    };
    if index + 1 >= file.stages.len() {
        problems.push(format!(
            "line {}: COPY --from={from} must name an earlier stage",
            copy.line
        ));
        return;
    }
    let builds = stage
        .instructions
        .iter()
        .filter(|i| i.keyword == "RUN")
        .any(|i| builds_bin(&i.args, expect));
    if !builds {
        problems.push(format!(
            "stage {from:?} has no `cargo build --release --locked -p {} --bin {}`",
            expect.package, expect.bin
        ));
    }
}

/// Whether a RUN command line builds exactly the expected binary, in release, from the lock
/// file.
fn builds_bin(run: &str, expect: Expect<'_>) -> bool {
    run.split("&&").any(|command| {
        let words: Vec<&str> = command
            .split_whitespace()
            .filter(|w| !w.starts_with("--mount="))
            .collect();
        let Some(start) = words.windows(2).position(|w| w == ["cargo", "build"]) else {
            return false;
        };
        let args = &words[start + 2..];
        let value = |names: &[&str]| {
            args.windows(2)
                .find(|w| names.contains(&w[0]))
                .map(|w| w[1])
                .or_else(|| {
                    args.iter()
                        .find_map(|a| names.iter().find_map(|n| a.strip_prefix(&format!("{n}="))))
                })
        };
        args.contains(&"--release")
            && args.contains(&"--locked")
            && value(&["-p", "--package"]) == Some(expect.package)
            && value(&["--bin"]) == Some(expect.bin)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECT: Expect<'static> = Expect {
        package: "orchestrator",
        bin: "orchestrator",
    };

    const GOOD: &str = r#"# syntax=docker/dockerfile:1.10
FROM rust:1.95.0-slim-trixie AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    # comment inside a continuation
    cargo build --release --locked -p orchestrator --bin orchestrator
FROM debian:13.2-slim
COPY --from=build /src/target/release/orchestrator /usr/local/bin/orchestrator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/orchestrator"]
CMD ["run", "--config", "/etc/orchestrator/orchestrator.toml"]
"#;

    fn problems(text: &str) -> Vec<String> {
        check(&Dockerfile::parse(text).unwrap(), EXPECT)
    }

    #[test]
    fn a_good_recipe_passes_and_parses_into_stages() {
        let f = Dockerfile::parse(GOOD).unwrap();
        assert_eq!(f.stages.len(), 2);
        assert_eq!(f.stages[0].name.as_deref(), Some("build"));
        let run = &f.stages[0].instructions[2];
        assert_eq!(run.keyword, "RUN");
        assert_eq!(run.line, 5);
        assert!(run.args.ends_with("--bin orchestrator"), "{}", run.args);
        assert_eq!(check(&f, EXPECT), Vec::<String>::new());
    }

    #[test]
    fn each_broken_rule_is_named() {
        for (from, to, expected) in [
            ("FROM debian:13.2-slim", "FROM debian:latest", "moves"),
            ("FROM debian:13.2-slim", "FROM debian", "no tag"),
            (
                "FROM debian:13.2-slim",
                "FROM debian:stable-slim",
                "names no version",
            ),
            ("FROM debian:13.2-slim", "FROM debian:${V}", "variable"),
            ("FROM debian:13.2-slim", "FROM debian@sha256:abc", "digest"),
            (
                "FROM rust:1.95.0-slim-trixie",
                "FROM rust:slim",
                "names no version",
            ),
            ("USER 65532:65532", "USER 0", "is root"),
            ("USER 65532:65532", "USER root", "not a numeric uid"),
            ("USER 65532:65532", "USER 65532:0", "root group"),
            ("USER 65532:65532", "", "no USER"),
            (
                r#"ENTRYPOINT ["/usr/local/bin/orchestrator"]"#,
                "ENTRYPOINT /usr/local/bin/orchestrator",
                "not exec form",
            ),
            (
                r#"ENTRYPOINT ["/usr/local/bin/orchestrator"]"#,
                r#"ENTRYPOINT ["/usr/local/bin/kube-sim"]"#,
                "not the \"orchestrator\" binary",
            ),
            (
                r#"ENTRYPOINT ["/usr/local/bin/orchestrator"]"#,
                "ENTRYPOINT []",
                "empty list",
            ),
            (
                r#"CMD ["run", "--config", "/etc/orchestrator/orchestrator.toml"]"#,
                "CMD run",
                "CMD \"run\" is not exec form",
            ),
            (
                "--bin orchestrator",
                "--bin kube-sim",
                "has no `cargo build",
            ),
            ("-p orchestrator", "-p kube-sim", "has no `cargo build"),
            ("--release --locked", "--locked", "has no `cargo build"),
            ("--release --locked", "--release", "has no `cargo build"),
            ("--from=build", "--from=runtime", "names no earlier stage"),
            ("--from=build", "--from=1", "must name an earlier stage"),
            (
                "/src/target/release/orchestrator /usr/local/bin/orchestrator",
                "/src/target/release/orchestrator /bin/orchestrator",
                "copies no",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let found = problems(&text);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{to:?}: expected a problem with {expected:?}, got {found:?}"
            );
        }
    }

    #[test]
    fn a_single_stage_and_builds_elsewhere_are_refused() {
        let one = "FROM rust:1.95.0\nRUN cargo build --release --locked -p orchestrator --bin orchestrator\nUSER 1000\nENTRYPOINT [\"/x/orchestrator\"]\nCMD [\"run\"]\n";
        let found = problems(one);
        assert!(
            found.iter().any(|p| p.contains("one stage only")),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p.contains("copies no")), "{found:?}");
        // The build sits in a stage other than the one copied from.
        let text = GOOD
            .replace(
                "FROM debian:13.2-slim\n",
                "FROM debian:13.2-slim AS other\nFROM debian:13.2-slim\n",
            )
            .replace("--from=build", "--from=other");
        let found = problems(&text);
        assert!(
            found.iter().any(|p| p.contains("stage \"other\" has no")),
            "{found:?}"
        );
        // `cargo build` in a comment or another command does not count.
        let text = GOOD.replace(
            "cargo build --release --locked -p orchestrator --bin orchestrator",
            "echo cargo && cargo test --release --locked -p orchestrator --bin orchestrator",
        );
        assert!(
            problems(&text)
                .iter()
                .any(|p| p.contains("has no `cargo build"))
        );
    }

    #[test]
    fn package_and_bin_may_use_equals_and_long_names() {
        let text = GOOD.replace(
            "-p orchestrator --bin orchestrator",
            "--package=orchestrator --bin=orchestrator",
        );
        assert_eq!(problems(&text), Vec::<String>::new());
        let text = GOOD.replace("/usr/local/bin/orchestrator\nUSER", "/usr/local/bin/\nUSER");
        assert_eq!(
            problems(&text),
            Vec::<String>::new(),
            "a directory destination"
        );
    }

    #[test]
    fn hostile_and_malformed_text_is_refused_with_a_reason() {
        for (text, expected) in [
            ("", "no FROM"),
            ("# only a comment\n\n", "no FROM"),
            (
                "RUN echo hi\nFROM debian:13.2-slim\n",
                "before the first FROM",
            ),
            ("ARG V=1\nFROM debian:${V}\n", "before the first FROM"),
            ("FROM\n", "is not `FROM IMAGE"),
            ("FROM a b c d\n", "is not `FROM IMAGE"),
            ("FROM debian:13.2-slim\nFROOM x\n", "unknown instruction"),
            ("FROM debian:13.2-slim\n\0\n", "NUL"),
        ] {
            let err = Dockerfile::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let huge = format!("FROM debian:13.2-slim\nRUN {}\n", "x".repeat(MAX_BYTES));
        assert!(
            Dockerfile::parse(&huge)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        // A continuation running off the end, odd spacing and lower-case keywords still parse.
        let f = Dockerfile::parse("from  debian:13.2-slim   as   Run\nrun echo \\").unwrap();
        assert_eq!(f.stages[0].name.as_deref(), Some("run"));
        assert_eq!(f.stages[0].instructions[0].args, "echo");
    }
}
