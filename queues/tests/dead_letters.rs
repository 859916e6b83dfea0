//! Every malformed input ends as a dead letter with its reason — the foundation's validation
//! cases, plus non-UTF-8, empty, 10 MiB, non-object, malformed JSON, duplicate keys, wrong
//! content type or encoding, a job on another namespace's queue, an unknown namespace — in
//! the store (reason, every problem) and as an AMQP copy (reason and problems in headers);
//! `reply_to` gets the verdict; the intake keeps running. Real RabbitMQ and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use test_support::cases;
#[path = "support/env.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use jobs::{DeadReason, JobId, Priority, ProblemCode};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use queues::store::{DeadLetterFilter, JobSource, PageRequest};
use serde_json::{Value, json};
use support::{Env, eventually};

/// A confirm channel for publishing with arbitrary properties.
async fn raw_channel(env: &Env) -> Channel {
    let ch = env.fresh_channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch
}

async fn publish_props(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack() && confirm.take_message().is_none());
}

fn header(props: &BasicProperties, key: &str) -> Option<String> {
    queues::amqp::header_str(props, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_input_is_dead_lettered_with_its_reason() {
    let mut env = Env::new(cases::catalog()).await;
    let jobs = env.names().jobs_exchange();
    let ch = raw_channel(&env).await;
    let json_props = |mid: &str| {
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(mid.into())
    };
    // (message_id, expected reason, expected code, expected path, expected dead queue)
    let mut expected: Vec<(String, DeadReason, ProblemCode, String, String)> = Vec::new();
    let team_a_dead = env.names().dead_queue("team-a");

    for (i, (case, path, value, code, at)) in cases::invalid_cases().into_iter().enumerate() {
        let body = serde_json::to_vec(&cases::with(cases::base(), path, value)).unwrap();
        let mid = format!("case-{i}");
        publish_props(&ch, &jobs, "team-a.normal", &body, json_props(&mid)).await;
        let reason = if code == ProblemCode::UnknownNamespace {
            DeadReason::UnknownNamespace
        } else {
            DeadReason::Invalid
        };
        let _ = case;
        expected.push((mid, reason, code, at.to_owned(), team_a_dead.clone()));
    }
    let valid = serde_json::to_vec(&cases::base()).unwrap();
    let transport: Vec<(&str, Vec<u8>, BasicProperties, ProblemCode, &str)> = vec![
        (
            "non-utf8",
            b"\xff\xfe{\"apiVersion\":\"v1\"}".to_vec(),
            json_props("non-utf8"),
            ProblemCode::NotUtf8,
            "$",
        ),
        (
            "empty",
            Vec::new(),
            json_props("empty"),
            ProblemCode::MalformedJson,
            "$",
        ),
        (
            "ten-mib",
            vec![b' '; 10 << 20],
            json_props("ten-mib"),
            ProblemCode::TooLarge,
            "$",
        ),
        (
            "malformed",
            b"{\"apiVersion\": \"v1\",".to_vec(),
            json_props("malformed"),
            ProblemCode::MalformedJson,
            "$",
        ),
        (
            "duplicate-key",
            b"{\"name\":\"a\",\"name\":\"b\"}".to_vec(),
            json_props("duplicate-key"),
            ProblemCode::DuplicateKey,
            "$",
        ),
        (
            "not-object",
            b"[1,2,3]".to_vec(),
            json_props("not-object"),
            ProblemCode::WrongType,
            "$",
        ),
        (
            "text-plain",
            valid.clone(),
            json_props("text-plain").with_content_type("text/plain".into()),
            ProblemCode::InvalidValue,
            "$",
        ),
        (
            "gzip",
            valid.clone(),
            json_props("gzip").with_content_encoding("gzip".into()),
            ProblemCode::InvalidValue,
            "$",
        ),
    ];
    for (mid, body, props, code, at) in transport {
        publish_props(&ch, &jobs, "team-a.normal", &body, props).await;
        expected.push((
            mid.into(),
            DeadReason::Invalid,
            code,
            at.into(),
            team_a_dead.clone(),
        ));
    }
    // A team-b job on team-a's queue, and a namespace nobody serves (via the alternate exchange).
    let team_b = serde_json::to_vec(&cases::with(
        cases::base(),
        &["namespace"],
        Some(json!("team-b")),
    ))
    .unwrap();
    publish_props(
        &ch,
        &jobs,
        "team-a.normal",
        &team_b,
        json_props("wrong-queue"),
    )
    .await;
    expected.push((
        "wrong-queue".into(),
        DeadReason::Invalid,
        ProblemCode::ConflictingFields,
        "$.namespace".into(),
        team_a_dead.clone(),
    ));
    publish_props(&ch, &jobs, "ghost.normal", &valid, json_props("ghost")).await;
    expected.push((
        "ghost".into(),
        DeadReason::UnknownNamespace,
        ProblemCode::UnknownNamespace,
        "$".into(),
        env.names().global_dead_queue(),
    ));

    // Verdicts: one refused, one accepted.
    let replies = format!("{}.replies", env.names().prefix());
    ch.queue_declare(
        replies.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish_props(
        &ch,
        &jobs,
        "team-a.normal",
        b"nonsense",
        json_props("with-reply")
            .with_reply_to(replies.as_str().into())
            .with_correlation_id("c-1".into()),
    )
    .await;
    expected.push((
        "with-reply".into(),
        DeadReason::Invalid,
        ProblemCode::MalformedJson,
        "$".into(),
        team_a_dead.clone(),
    ));
    let good_id = JobId::generate();
    publish_props(
        &ch,
        &jobs,
        "team-a.normal",
        &serde_json::to_vec(&cases::with(
            cases::base(),
            &["id"],
            Some(json!(good_id.to_string())),
        ))
        .unwrap(),
        json_props(&good_id.to_string())
            .with_reply_to(replies.as_str().into())
            .with_correlation_id("c-2".into()),
    )
    .await;

    env.start_intake(env.intake_config());
    env.start_relay();
    let total = expected.len() as i64;
    eventually("every message handled", Duration::from_secs(60), || async {
        let dead = env.count("SELECT count(*) FROM dead_letters").await;
        let jobs = env.count("SELECT count(*) FROM jobs").await;
        (dead == total && jobs == 1).then_some(())
    })
    .await;

    // The store: reason, and the expected problem among all problems.
    let mut by_mid = HashMap::new();
    let mut page = PageRequest::first(1000);
    loop {
        let p = env
            .store
            .list_dead_letters(&DeadLetterFilter::default(), page)
            .await
            .unwrap();
        for d in p.items {
            by_mid.insert(d.message_id.clone().unwrap_or_default(), d);
        }
        match p.next {
            Some(n) => {
                page = PageRequest {
                    after: Some(n),
                    limit: 1000,
                }
            }
            None => break,
        }
    }
    let mut failures = Vec::new();
    for (mid, reason, code, at, _) in &expected {
        match by_mid.get(mid) {
            None => failures.push(format!("{mid}: no dead letter")),
            Some(d) => {
                if d.reason != *reason {
                    failures.push(format!("{mid}: reason {} not {reason}", d.reason));
                }
                if !d.problems.iter().any(|p| p.code == *code && &p.path == at) {
                    failures.push(format!(
                        "{mid}: expected {code} at {at}, got {:?}",
                        d.problems
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let big = &by_mid["ten-mib"];
    assert!(big.body_truncated && big.body_bytes == 10 << 20);

    // The AMQP copies, with the reason and problems in headers.
    let global_dead = env.names().global_dead_queue();
    let team_a_count = expected.iter().filter(|e| e.4 == team_a_dead).count();
    eventually(
        "dead-letter copies published",
        Duration::from_secs(60),
        || async {
            let a = env.ready(&team_a_dead).await as usize;
            let g = env.ready(&global_dead).await;
            (a == team_a_count && g == 1).then_some(())
        },
    )
    .await;
    let copies = env.drain(&team_a_dead).await;
    let mut seen = 0;
    for m in &copies {
        let props = &m.delivery.properties;
        let mid = props
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let Some((_, reason, code, _, _)) = expected.iter().find(|e| e.0 == mid) else {
            panic!("unexpected copy {mid}")
        };
        assert_eq!(
            header(props, "x-orchestrator-reason").as_deref(),
            Some(reason.as_str()),
            "{mid}"
        );
        let codes = header(props, "x-orchestrator-problem-codes").unwrap();
        assert!(
            codes.split(',').any(|c| c == code.as_str()),
            "{mid}: {codes}"
        );
        assert!(header(props, "x-orchestrator-message").is_some());
        let problems = props
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .get("x-orchestrator-problems");
        assert!(matches!(problems, Some(AMQPValue::FieldArray(a)) if !a.as_slice().is_empty()));
        if mid == "ten-mib" {
            let truncated = props
                .headers()
                .as_ref()
                .unwrap()
                .inner()
                .get("x-orchestrator-body-truncated");
            assert_eq!(truncated, Some(&AMQPValue::Boolean(true)));
            assert_eq!(m.delivery.data.len(), queues::intake::TRUNCATED_BODY_BYTES);
        }
        seen += 1;
    }
    assert_eq!(seen, team_a_count);
    let ghost = env.drain(&global_dead).await;
    assert_eq!(
        header(&ghost[0].delivery.properties, "x-orchestrator-reason").as_deref(),
        Some("unknown-namespace")
    );

    // Verdicts.
    let verdicts = eventually("two verdicts", Duration::from_secs(30), || async {
        let got = env.drain(&replies).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    let mut verdicts: Vec<(String, Value)> = verdicts
        .iter()
        .map(|m| {
            (
                m.delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .to_owned(),
                serde_json::from_slice(&m.delivery.data).unwrap(),
            )
        })
        .collect();
    if verdicts.len() < 2 {
        let more = eventually("the second verdict", Duration::from_secs(30), || async {
            let got = env.drain(&replies).await;
            (!got.is_empty()).then_some(got)
        })
        .await;
        for m in more {
            verdicts.push((
                m.delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .to_owned(),
                serde_json::from_slice(&m.delivery.data).unwrap(),
            ));
        }
    }
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(verdicts[0].0, "c-1");
    assert_eq!(verdicts[0].1["accepted"], false);
    assert_eq!(verdicts[0].1["reason"], "invalid");
    assert_eq!(verdicts[0].1["problems"][0]["code"], "malformed-json");
    assert_eq!(verdicts[1].0, "c-2");
    assert_eq!(verdicts[1].1["accepted"], true);
    assert_eq!(verdicts[1].1["jobId"], json!(good_id.to_string()));
    assert_eq!(verdicts[1].1["reason"], "accepted");

    assert_eq!(
        env.metrics.intake_count(
            JobSource::Amqp,
            "team-a",
            Some(Priority::Normal),
            "accepted"
        ),
        1,
        "the intake kept going after every bad message"
    );
    let _ = ch
        .queue_delete(replies.as_str().into(), Default::default())
        .await;
    env.cleanup().await;
}
