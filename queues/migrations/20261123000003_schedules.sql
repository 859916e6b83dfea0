-- Cron schedules as the daemon runs them.
--
-- Nominal times (`schedules.last_scheduled_at`, `cron_fires.nominal_time`) hold the schedule's
-- local wall-clock reading labelled as UTC: a nominal time is the schedule's identity for a
-- fire, and this keeps the two occurrences of a repeated DST hour one identity.
ALTER TABLE schedules DROP CONSTRAINT schedules_missed_run_policy_check;
ALTER TABLE schedules ADD CONSTRAINT schedules_missed_run_policy_check
    CHECK (missed_run_policy IN ('skip', 'run-latest', 'catch-up'));
ALTER TABLE schedules
    ADD COLUMN starting_deadline_seconds integer NOT NULL DEFAULT 300
        CHECK (starting_deadline_seconds > 0),
    ADD COLUMN missed_total bigint NOT NULL DEFAULT 0,
    -- The nominal time through which missed runs were counted: each window is counted once
    -- even when several replicas look at it.
    ADD COLUMN missed_through timestamptz;

-- A fire that concurrency policy Forbid skipped is recorded too (once, like a fire), with no job.
ALTER TABLE cron_fires ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE cron_fires ADD COLUMN outcome text NOT NULL DEFAULT 'fired'
    CHECK (outcome IN ('fired', 'skipped'));
CREATE INDEX cron_fires_job ON cron_fires (job_id) WHERE job_id IS NOT NULL;
