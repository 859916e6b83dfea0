use super::*;
use crate::generate;

const GOOD: &str = r#"{"at": 0, "name": "a-1", "namespace": "ns-00", "priority": "high", "driver": {"nodeType": "small"}, "executor": {"nodeType": "large", "instances": 2}, "runtime": 60, "outcome": "Succeeded"}"#;

fn line(patch: &str) -> String {
    // GOOD with one field replaced or added.
    let mut v: Value = serde_json::from_str(GOOD).unwrap();
    let p: Value = serde_json::from_str(patch).unwrap();
    for (k, x) in p.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

fn refused(text: &str) -> String {
    match parse(text) {
        Err(e) => e.to_string(),
        Ok(j) => panic!("accepted: {j:?}"),
    }
}

#[test]
fn a_good_line_round_trips() {
    let jobs = parse(GOOD).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].executor.required(), 2);
    assert_eq!(parse(&render(&jobs)).unwrap(), jobs);
    let t = generate::standard(&generate::StandardParams {
        hours: 0.5,
        nodes: 10,
        ..Default::default()
    });
    assert_eq!(parse(&render(&t)).unwrap(), t);
}

#[test]
fn the_job_message_carries_shape_runtime_and_outcome() {
    let mut j = parse(GOOD).unwrap().remove(0);
    j.runtime = 89.2;
    j.outcome = Outcome::Failed;
    let m = j.job_message("0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01");
    assert_eq!(
        m["executor"],
        serde_json::json!({"nodeType": "large", "instances": 2})
    );
    assert_eq!(m["annotations"]["kube-sim.dev/runtime"], "90s");
    assert_eq!(m["annotations"]["kube-sim.dev/outcome"], "Failed");
    assert_eq!(m["priority"], "high");
    let da = line(
        r#"{"executor": {"nodeType": "small", "dynamicAllocation": {"minExecutors": 2, "maxExecutors": 6}}}"#,
    );
    let j = parse(&da).unwrap().remove(0);
    assert_eq!(j.executor.required(), 2);
    assert_eq!(
        j.job_message("x")["executor"]["dynamicAllocation"],
        serde_json::json!({"minExecutors": 2, "maxExecutors": 6})
    );
}

#[test]
fn malformed_and_hostile_lines_are_refused_with_their_line() {
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "line 1"),
        (line(r#"{"surprise": 1}"#), "unknown field `surprise`"),
        (line(r#"{"at": -1}"#), "at: -1"),
        (line(r#"{"at": "soon"}"#), "invalid type"),
        (
            GOOD.replace(r#""at": 0"#, r#""at": 1e400"#),
            "number out of range",
        ),
        (line(r#"{"runtime": 0}"#), "runtime: 0"),
        (line(r#"{"name": "Bad_Name"}"#), "name: \"Bad_Name\""),
        (line(r#"{"name": "../../etc"}"#), "name:"),
        (line(r#"{"namespace": ""}"#), "namespace:"),
        (
            line(r#"{"priority": "urgent"}"#),
            "unknown variant `urgent`",
        ),
        (line(r#"{"outcome": "Exploded"}"#), "unknown variant"),
        (
            line(r#"{"executor": {"nodeType": "small"}}"#),
            "instances or dynamicAllocation",
        ),
        (
            line(r#"{"executor": {"nodeType": "small", "instances": 0}}"#),
            "executor.instances: 0",
        ),
        (
            line(r#"{"executor": {"nodeType": "small", "instances": 4294967295}}"#),
            "executor.instances",
        ),
        (
            line(
                r#"{"executor": {"nodeType": "small", "instances": 1, "dynamicAllocation": {"minExecutors": 1, "maxExecutors": 2}}}"#,
            ),
            "not both",
        ),
        (
            line(
                r#"{"executor": {"nodeType": "small", "dynamicAllocation": {"minExecutors": 5, "maxExecutors": 2}}}"#,
            ),
            "min ≤ initial ≤ max",
        ),
        (
            line(r#"{"driver": {"nodeType": "small", "cores": 2, "memory": "4g"}}"#),
            "not both",
        ),
        (line(r#"{"driver": {"cores": 2}}"#), "driver: give either"),
        (
            line(r#"{"driver": {"cores": -2, "memory": "4g"}}"#),
            "driver.cores",
        ),
        (
            line(r#"{"driver": {"cores": 2, "memory": "4g; rm -rf"}}"#),
            "driver.memory",
        ),
        (line(r#"{"tag": "a\u0000b"}"#), "tag:"),
        (
            format!("{GOOD}\n{GOOD}"),
            "line 2: name: \"a-1\" is already used on line 1",
        ),
        (
            format!("{}\n{GOOD}", line(r#"{"at": 5, "name": "b"}"#)),
            "line 2: at: 0 is before",
        ),
        (
            format!("{GOOD}\n{}", "x".repeat(MAX_LINE_BYTES + 1)),
            "line 2:",
        ),
        (
            format!("{}{}", "[".repeat(1000), "]".repeat(1000)),
            "line 1",
        ),
        ("\n\n".into(), "no jobs"),
    ];
    for (text, expected) in cases {
        let e = refused(&text);
        assert!(
            e.contains(expected),
            "{:?} → {e:?}, expected {expected:?}",
            text.chars().take(120).collect::<String>()
        );
    }
}

#[test]
fn blank_lines_and_crlf_are_fine() {
    let text = format!("\n{GOOD}\r\n\n");
    assert_eq!(parse(&text).unwrap().len(), 1);
}

#[test]
fn a_file_that_is_not_utf8_names_its_line() {
    let dir = std::env::temp_dir().join(format!("replay-trace-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.jsonl");
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    std::fs::write(&path, bytes).unwrap();
    let e = read(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        e,
        TraceError::Line {
            line: 2,
            message: "not valid UTF-8".into()
        }
    );
    assert!(
        read(&dir.join("missing"))
            .unwrap_err()
            .to_string()
            .contains("cannot read")
    );
}
