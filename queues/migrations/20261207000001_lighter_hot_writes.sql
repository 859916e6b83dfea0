-- Lighter hot writes (issue 18). The intake's batch and the admission round's `submitted`
-- batch are the store's two hot statements; EXPLAIN ANALYZE of a 1,000-job bench run put a
-- fifth of their time in per-row triggers that guard nothing the statements do not already
-- guarantee:
--
-- * The foreign keys from job_transitions and job_attempts to jobs: every history and
--   attempt row is written in the same statement as the job row it belongs to, and each
--   check cost a query and a row lock (a WAL record) per row. Retention
--   (`JobStore::delete_finished_before`) now deletes a job's history and attempts with it,
--   as the cascade did. dead_letters keeps its foreign key: it is off the hot path.
-- * The two insert notifications ran a PL/pgSQL call per stored row; one statement-level
--   trigger now looks at the statement's inserted rows once. PostgreSQL still delivers one
--   notification per channel per transaction at commit, and none when nothing pending was
--   inserted (a batch of duplicates, a rolled-back one). The update and delete triggers
--   stay per row: their column lists and WHEN clauses keep writes that do not touch the
--   heads (start estimates, the tracker's updates) from waking the leader, and a trigger
--   with a column list cannot see transition tables.

ALTER TABLE job_transitions DROP CONSTRAINT job_transitions_job_id_fkey;
ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_job_id_fkey;

DROP TRIGGER jobs_pending_inserted ON jobs;
DROP TRIGGER jobs_queued_notify ON jobs;

CREATE FUNCTION notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE state IN ('queued', 'waiting')) THEN
        PERFORM pg_notify('orchestrator_pending_changed', '');
    END IF;
    IF EXISTS (SELECT 1 FROM inserted WHERE state = 'queued') THEN
        PERFORM pg_notify('orchestrator_job_queued', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_inserted_notify
    AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
    EXECUTE FUNCTION notify_jobs_inserted();

-- What stays of jobs_queued_notify: a job moved back to queued (a retry come due, a
-- requeue, a preemption).
CREATE TRIGGER jobs_queued_notify
    AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued')
    EXECUTE FUNCTION notify_job_queued();
