-- The job store: jobs, their history, attempts, dead letters, the transactional outbox,
-- and the tables cron will use. States and reasons are checked text (readable in psql,
-- stable on the wire); the state machine itself lives in Rust (queues::state).

CREATE SEQUENCE job_seq AS bigint;

CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    -- FIFO position within (namespace, priority): intake order; a DLQ requeue takes a new one.
    seq             bigint NOT NULL DEFAULT nextval('job_seq'),
    namespace       text NOT NULL,
    priority        text NOT NULL CHECK (priority IN ('high', 'normal')),
    name            text NOT NULL,
    spec            jsonb NOT NULL,
    state           text NOT NULL CHECK (state IN ('queued', 'waiting', 'submitted', 'running',
                        'succeeded', 'failed', 'retrying', 'dead', 'cancelled')),
    state_reason    text,
    state_message   text,
    -- Current attempt number (1-based, never reused); the retry budget counts from retry_base.
    attempt         integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    retry_base      integer NOT NULL DEFAULT 1 CHECK (retry_base >= 1),
    max_attempts    integer NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at timestamptz,
    ttl_seconds     double precision,
    expires_at      timestamptz,
    wait_reason     text,
    wait_message    text,
    wait_position   bigint,
    waiting_since   timestamptz,
    spark_app_name  text,
    cpu_millis      bigint,
    memory_bytes    bigint,
    source          text NOT NULL,
    published_at    timestamptz,
    enqueued_at     timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

-- Pending heads and queue positions: one range scan per (namespace, priority), in FIFO order.
CREATE INDEX jobs_pending ON jobs (namespace, priority, seq) INCLUDE (queued_at)
    WHERE state IN ('queued', 'waiting');
-- Running usage per namespace: an index-only scan.
CREATE INDEX jobs_active ON jobs (namespace) INCLUDE (cpu_millis, memory_bytes)
    WHERE state IN ('submitted', 'running');
CREATE INDEX jobs_retry_due ON jobs (next_attempt_at) WHERE state = 'retrying';
CREATE INDEX jobs_expiry ON jobs (expires_at)
    WHERE state IN ('queued', 'waiting') AND expires_at IS NOT NULL;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- Listing with filters, newest first (ids are UUID v7: time-ordered).
CREATE INDEX jobs_by_namespace ON jobs (namespace, id);
CREATE INDEX jobs_by_state ON jobs (state, id);

CREATE TABLE job_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    from_state  text,
    to_state    text NOT NULL,
    attempt     integer NOT NULL,
    reason      text,
    message     text,
    details     jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_transitions_job ON job_transitions (job_id, id);

-- One row per SparkApplication: the primary key makes "one application per job and attempt"
-- a database fact, the unique name makes lookups by application name exact.
CREATE TABLE job_attempts (
    job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    spark_app_name  text NOT NULL UNIQUE,
    cpu_millis      bigint NOT NULL,
    memory_bytes    bigint NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    outcome         text,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The dead job; NULL for messages that never became a job (invalid, unknown namespace).
    job_id          uuid REFERENCES jobs (id) ON DELETE CASCADE,
    -- For those: the id the message claimed (body `id` or `message_id`), when readable.
    claimed_id      uuid,
    namespace       text,
    priority        text,
    reason          text NOT NULL CHECK (reason IN ('invalid', 'unknown-namespace', 'never-fits',
                        'expired', 'retries-exhausted', 'cancelled', 'rejected')),
    message         text NOT NULL,
    problems        jsonb NOT NULL DEFAULT '[]',
    body            bytea NOT NULL,
    body_bytes      bigint NOT NULL,
    body_truncated  boolean NOT NULL DEFAULT false,
    message_id      text,
    routing_key     text,
    content_type    text,
    -- Recognises a redelivered copy of an already dead-lettered message.
    dedup_key       text,
    attempt         integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    requeued_at     timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (namespace, id) WHERE requeued_at IS NULL;
CREATE INDEX dead_letters_job ON dead_letters (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX dead_letters_dedup ON dead_letters (dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX dead_letters_created ON dead_letters (created_at);

-- Messages to publish, written in the same transaction as the change they announce; the
-- relay publishes them with confirms and marks them sent.
CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('event', 'dead-letter', 'verdict', 'job')),
    exchange         text NOT NULL,
    routing_key      text NOT NULL,
    mandatory        boolean NOT NULL,
    message_id       text,
    correlation_id   text,
    content_type     text NOT NULL DEFAULT 'application/json',
    headers          jsonb NOT NULL DEFAULT '{}',
    body             bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    -- true when the broker returned it unroutable (e.g. a reply_to queue that is gone).
    returned         boolean NOT NULL DEFAULT false,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error       text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Cron (used by the daemon's scheduler).
CREATE TABLE schedules (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    namespace           text NOT NULL,
    cron                text NOT NULL,
    time_zone           text NOT NULL DEFAULT 'UTC',
    job_template        jsonb NOT NULL,
    missed_run_policy   text NOT NULL DEFAULT 'skip' CHECK (missed_run_policy IN ('skip', 'catch-up')),
    catch_up_limit      integer NOT NULL DEFAULT 1 CHECK (catch_up_limit >= 0),
    concurrency_policy  text NOT NULL DEFAULT 'allow'
                            CHECK (concurrency_policy IN ('allow', 'forbid', 'replace')),
    suspended           boolean NOT NULL DEFAULT false,
    last_scheduled_at   timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A fire happens exactly once: two replicas racing for the same nominal time collide here.
CREATE TABLE cron_fires (
    schedule_id   uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    nominal_time  timestamptz NOT NULL,
    job_id        uuid NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, nominal_time)
);
