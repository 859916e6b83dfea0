//! The History dashboard's views (`queues/migrations/*_history_views.sql`) on hand-made rows
//! with known times: waits start at the latest transition to `queued` (a retry is not charged
//! the previous attempt), days are UTC days, percentiles and counts come out as computed by
//! hand, the DLQ view shows only what was not requeued, estimate errors are measured against
//! the estimate an attempt was admitted with.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

use sqlx::Row;

/// Jobs A (team-a, high: fails once, retried, succeeds), B (team-a, high: running), C
/// (team-b, normal: dead), D (team-a, normal: waiting, estimated), three dead letters (one requeued), a schedule with two fires.
const FIXTURE: &str = r#"
INSERT INTO jobs (id, namespace, priority, name, spec, state, max_attempts, source, enqueued_at,
                  queued_at, updated_at, finished_at, attempt)
VALUES
  ('00000000-0000-7000-8000-00000000000a', 'team-a', 'high', 'a', '{}', 'succeeded', 3, 'amqp',
   '2026-11-20 10:00:00+00', '2026-11-20 10:05:00+00', '2026-11-20 10:07:10+00',
   '2026-11-20 10:07:10+00', 2),
  ('00000000-0000-7000-8000-00000000000b', 'team-a', 'high', 'b', '{}', 'running', 3, 'cron',
   '2026-11-20 10:00:00+00', '2026-11-20 10:00:00+00', '2026-11-20 10:01:40+00', NULL, 1),
  ('00000000-0000-7000-8000-00000000000c', 'team-b', 'normal', 'c', '{}', 'dead', 3, 'http',
   '2026-11-20 23:59:00+00', '2026-11-20 23:59:00+00', '2026-11-21 00:00:50+00', NULL, 1);
INSERT INTO jobs (id, namespace, priority, name, spec, state, max_attempts, source, enqueued_at,
                  queued_at, updated_at, estimated_start_at, wait_reason)
VALUES
  ('00000000-0000-7000-8000-00000000000d', 'team-a', 'normal', 'd', '{}', 'waiting', 3, 'amqp',
   '2026-11-20 10:00:00+00', '2026-11-20 10:00:00+00', '2026-11-20 10:00:00+00',
   '2026-11-20 11:00:00+00', 'capacity');

INSERT INTO job_transitions (job_id, from_state, to_state, attempt, reason, at) VALUES
  ('00000000-0000-7000-8000-00000000000a', NULL, 'queued', 1, 'accepted', '2026-11-20 10:00:00+00'),
  ('00000000-0000-7000-8000-00000000000a', 'queued', 'submitted', 1, NULL, '2026-11-20 10:01:00+00'),
  ('00000000-0000-7000-8000-00000000000a', 'running', 'retrying', 1, 'application', '2026-11-20 10:02:50+00'),
  ('00000000-0000-7000-8000-00000000000a', 'retrying', 'queued', 2, 'retry-due', '2026-11-20 10:05:00+00'),
  ('00000000-0000-7000-8000-00000000000a', 'queued', 'submitted', 2, NULL, '2026-11-20 10:05:20+00'),
  ('00000000-0000-7000-8000-00000000000b', NULL, 'queued', 1, 'accepted', '2026-11-20 10:00:00+00'),
  ('00000000-0000-7000-8000-00000000000b', 'queued', 'submitted', 1, NULL, '2026-11-20 10:01:40+00'),
  ('00000000-0000-7000-8000-00000000000c', NULL, 'queued', 1, 'accepted', '2026-11-20 23:59:00+00');

INSERT INTO job_attempts (job_id, attempt, spark_app_name, cpu_millis, memory_bytes,
                          submitted_at, started_at, finished_at, outcome, estimated_start_at)
VALUES
  ('00000000-0000-7000-8000-00000000000a', 1, 'a-1', 1000, 1, '2026-11-20 10:01:00+00',
   '2026-11-20 10:01:10+00', '2026-11-20 10:02:50+00', 'failed', '2026-11-20 10:00:30+00'),
  ('00000000-0000-7000-8000-00000000000a', 2, 'a-2', 1000, 1, '2026-11-20 10:05:20+00',
   '2026-11-20 10:05:30+00', '2026-11-20 10:07:10+00', 'succeeded', '2026-11-20 10:06:00+00'),
  ('00000000-0000-7000-8000-00000000000b', 1, 'b-1', 1000, 1, '2026-11-20 10:01:40+00',
   '2026-11-20 10:01:50+00', NULL, NULL, NULL);

INSERT INTO dead_letters (job_id, namespace, reason, message, body, body_bytes, created_at,
                          requeued_at) VALUES
  ('00000000-0000-7000-8000-00000000000c', 'team-b', 'never-fits', 'too big', '', 0,
   '2026-11-21 00:00:50+00', NULL),
  (NULL, 'team-b', 'never-fits', 'too big', '', 0, '2026-11-21 01:00:00+00',
   '2026-11-21 02:00:00+00'),
  (NULL, NULL, 'invalid', 'not JSON', '', 0, '2026-11-21 03:00:00+00', NULL);

INSERT INTO schedules (id, name, namespace, cron, job_template) VALUES
  ('00000000-0000-7000-8000-0000000000f0', 'nightly', 'team-a', '0 2 * * *', '{}');
INSERT INTO cron_fires (schedule_id, nominal_time, job_id, fired_at, outcome) VALUES
  ('00000000-0000-7000-8000-0000000000f0', '2026-11-20 02:00:00+00',
   '00000000-0000-7000-8000-00000000000b', '2026-11-20 02:00:01+00', 'fired'),
  ('00000000-0000-7000-8000-0000000000f0', '2026-11-21 02:00:00+00', NULL,
   '2026-11-21 02:00:01+00', 'skipped');
"#;

async fn rows(pool: &sqlx::PgPool, sql: &str) -> Vec<String> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT row_to_json(t)::text AS j FROM ({sql}) t"
    )))
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("{e}\n{sql}"))
    .iter()
    .map(|r| r.get::<String, _>("j"))
    .collect()
}

#[tokio::test]
async fn history_views_compute_what_the_dashboard_shows() {
    let db = test_support::pg::TestDb::new(&queues::store::MIGRATOR).await;
    let pool = &db.pool;
    sqlx::raw_sql(FIXTURE).execute(pool).await.unwrap();

    // Attempt 2 of A waited 20 s from its retry, not 4 m 20 s from the first intake.
    assert_eq!(
        rows(pool, "SELECT name, attempt, wait_seconds, run_seconds FROM history_attempts ORDER BY name, attempt").await,
        [
            r#"{"name":"a","attempt":1,"wait_seconds":60,"run_seconds":100}"#,
            r#"{"name":"a","attempt":2,"wait_seconds":20,"run_seconds":100}"#,
            r#"{"name":"b","attempt":1,"wait_seconds":100,"run_seconds":null}"#,
        ]
    );
    // Waits 20, 60, 100: p50 60, p95 96 (linear between 60 and 100), max 100.
    assert_eq!(
        rows(pool, "SELECT day, namespace, priority, admitted, wait_p50_seconds, wait_p95_seconds, wait_max_seconds FROM history_waits_daily").await,
        [r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-a","priority":"high","admitted":3,"wait_p50_seconds":60,"wait_p95_seconds":96,"wait_max_seconds":100}"#]
    );
    // Running jobs are not finished; C died after midnight (UTC), so on the 21st.
    assert_eq!(
        rows(
            pool,
            "SELECT day, namespace, outcome, jobs FROM history_jobs_daily ORDER BY day"
        )
        .await,
        [
            r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-a","outcome":"succeeded","jobs":1}"#,
            r#"{"day":"2026-11-21T00:00:00+00:00","namespace":"team-b","outcome":"dead","jobs":1}"#,
        ]
    );
    assert_eq!(
        rows(pool, "SELECT day, namespace, source, jobs FROM history_intake_daily ORDER BY namespace, source").await,
        [
            // A (high) and D (normal): one row per priority.
            r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-a","source":"amqp","jobs":1}"#,
            r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-a","source":"amqp","jobs":1}"#,
            r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-a","source":"cron","jobs":1}"#,
            r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-b","source":"http","jobs":1}"#,
        ]
    );
    assert_eq!(
        rows(
            pool,
            "SELECT outcome, runs, run_p50_seconds FROM history_runs_daily ORDER BY outcome"
        )
        .await,
        [
            r#"{"outcome":"failed","runs":1,"run_p50_seconds":100}"#,
            r#"{"outcome":"succeeded","runs":1,"run_p50_seconds":100}"#,
        ]
    );
    assert_eq!(
        rows(pool, "SELECT namespace, reason, dead_letters, still_open FROM history_dead_letters_daily ORDER BY namespace").await,
        [
            r#"{"namespace":"","reason":"invalid","dead_letters":1,"still_open":1}"#,
            r#"{"namespace":"team-b","reason":"never-fits","dead_letters":2,"still_open":1}"#,
        ]
    );
    assert_eq!(
        rows(
            pool,
            "SELECT namespace, reason, dead_letters FROM history_dlq_open ORDER BY namespace"
        )
        .await,
        [
            r#"{"namespace":"","reason":"invalid","dead_letters":1}"#,
            r#"{"namespace":"team-b","reason":"never-fits","dead_letters":1}"#,
        ]
    );
    assert_eq!(
        rows(
            pool,
            "SELECT day, schedule, outcome, fires FROM history_cron_daily ORDER BY day"
        )
        .await,
        [
            r#"{"day":"2026-11-20T00:00:00+00:00","schedule":"nightly","outcome":"fired","fires":1}"#,
            r#"{"day":"2026-11-21T00:00:00+00:00","schedule":"nightly","outcome":"skipped","fires":1}"#,
        ]
    );
    // A1 started 30 s later than estimated, A2 40 s earlier; B was admitted unestimated.
    assert_eq!(
        rows(pool, "SELECT day, namespace, priority, admitted, estimated, error_p50_seconds, error_p90_seconds, late_share FROM history_estimates_daily").await,
        [
            r#"{"day":"2026-11-20T00:00:00+00:00","namespace":"team-a","priority":"high","admitted":3,"estimated":2,"error_p50_seconds":35,"error_p90_seconds":39,"late_share":0.50000000000000000000}"#
        ]
    );
    assert_eq!(
        rows(
            pool,
            "SELECT name, state, estimated_start_at, wait_reason FROM history_waiting"
        )
        .await,
        [
            r#"{"name":"d","state":"waiting","estimated_start_at":"2026-11-20T11:00:00+00:00","wait_reason":"capacity"}"#
        ]
    );
    assert_eq!(
        rows(pool, "SELECT namespace FROM history_namespaces ORDER BY 1").await,
        [r#"{"namespace":"team-a"}"#, r#"{"namespace":"team-b"}"#]
    );
    db.drop_database().await;
}
