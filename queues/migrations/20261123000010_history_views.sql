-- Read-only views for the History dashboard (Grafana, PostgreSQL datasource; see
-- dashboards/README.md). Prometheus keeps weeks; the job store keeps every job until the
-- retention policy (`database.retention`) deletes it, so trends beyond Prometheus' retention
-- come from here. Days are UTC days. Views only: nothing to migrate back, nothing written.

-- One row per attempt (one SparkApplication): how long it waited in the queue and how long
-- it ran. The wait starts at the latest transition to `queued` before the submission (intake,
-- a due retry, or a DLQ requeue), so retries are not charged the previous attempt's run.
CREATE VIEW history_attempts AS
SELECT a.job_id,
       j.namespace,
       j.priority,
       j.name,
       j.source,
       a.attempt,
       coalesce(q.at, j.enqueued_at)                                 AS queued_at,
       a.submitted_at,
       a.started_at,
       a.finished_at,
       a.outcome,
       extract(epoch FROM a.submitted_at - coalesce(q.at, j.enqueued_at))::double precision
                                                                     AS wait_seconds,
       extract(epoch FROM a.finished_at - a.started_at)::double precision
                                                                     AS run_seconds
FROM job_attempts a
JOIN jobs j ON j.id = a.job_id
LEFT JOIN LATERAL (
    SELECT t.at
    FROM job_transitions t
    WHERE t.job_id = a.job_id AND t.to_state = 'queued' AND t.at <= a.submitted_at
    ORDER BY t.id DESC
    LIMIT 1
) q ON true;

-- Jobs that reached an end, per day, namespace, priority and outcome.
CREATE VIEW history_jobs_daily AS
SELECT date_trunc('day', coalesce(finished_at, updated_at), 'UTC') AS day,
       namespace,
       priority,
       state                                                     AS outcome,
       count(*)                                                  AS jobs
FROM jobs
WHERE state IN ('succeeded', 'failed', 'dead', 'cancelled')
GROUP BY 1, 2, 3, 4;

-- Jobs taken in, per day, namespace, priority and source (amqp, http, cron).
CREATE VIEW history_intake_daily AS
SELECT date_trunc('day', enqueued_at, 'UTC') AS day,
       namespace,
       priority,
       source,
       count(*)                              AS jobs
FROM jobs
GROUP BY 1, 2, 3, 4;

-- Queue wait of the attempts submitted each day: the long-term p50/p95/p99 trend.
CREATE VIEW history_waits_daily AS
SELECT date_trunc('day', submitted_at, 'UTC')                              AS day,
       namespace,
       priority,
       count(*)                                                            AS admitted,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY wait_seconds)          AS wait_p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_seconds)          AS wait_p95_seconds,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY wait_seconds)          AS wait_p99_seconds,
       max(wait_seconds)                                                   AS wait_max_seconds
FROM history_attempts
GROUP BY 1, 2, 3;

-- Run time (driver running → finished) of the attempts that ended each day, by outcome.
CREATE VIEW history_runs_daily AS
SELECT date_trunc('day', finished_at, 'UTC')                               AS day,
       namespace,
       outcome,
       count(*)                                                            AS runs,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY run_seconds)           AS run_p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY run_seconds)           AS run_p95_seconds
FROM history_attempts
WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
GROUP BY 1, 2, 3;

-- Dead letters per day, namespace (`''` for messages that named none) and reason.
CREATE VIEW history_dead_letters_daily AS
SELECT date_trunc('day', created_at, 'UTC')        AS day,
       coalesce(namespace, '')                      AS namespace,
       reason,
       count(*)                                     AS dead_letters,
       count(*) FILTER (WHERE requeued_at IS NULL)  AS still_open
FROM dead_letters
GROUP BY 1, 2, 3;

-- The DLQ now: dead letters not requeued, by namespace and reason.
CREATE VIEW history_dlq_open AS
SELECT coalesce(namespace, '') AS namespace,
       reason,
       count(*)                AS dead_letters,
       min(created_at)         AS oldest
FROM dead_letters
WHERE requeued_at IS NULL
GROUP BY 1, 2;

-- Cron fires per day, schedule and outcome (fired, skipped by concurrency policy).
CREATE VIEW history_cron_daily AS
SELECT date_trunc('day', f.fired_at, 'UTC') AS day,
       s.name                               AS schedule,
       s.namespace,
       f.outcome,
       count(*)                             AS fires
FROM cron_fires f
JOIN schedules s ON s.id = f.schedule_id
GROUP BY 1, 2, 3, 4;

-- The namespaces the store has seen (the dashboard's namespace variable).
CREATE VIEW history_namespaces AS
SELECT DISTINCT namespace FROM jobs;
