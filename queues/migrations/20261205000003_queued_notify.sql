-- Event-driven admission (issue 18): a job that becomes queued (stored by the intake, the API
-- or cron; a retry come due; a dead letter requeued; a preempted job) wakes the leader's
-- admission round through NOTIFY instead of waiting for [submitter] interval. Row-level, but
-- PostgreSQL delivers the identical notifications of one transaction once, at commit: a batch
-- of stored jobs is one wake, and a rolled-back one none.
CREATE FUNCTION notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orchestrator_job_queued', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_queued_notify
    AFTER INSERT OR UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued')
    EXECUTE FUNCTION notify_job_queued();
