-- Unchanged pending heads are not read again (issue 18): every transaction that changes what
-- the admission round reads of a pending job (a job becoming pending or leaving it, its wait
-- marks, its attempt, its spec) sends one NOTIFY at commit, from whichever replica or tool
-- wrote it. The leader keeps the heads it read and reads them again only once something was
-- heard (or they are a few seconds old). Writes that do not change the heads, such as start
-- estimates or the tracker's updates of running jobs, notify nothing.
CREATE FUNCTION notify_pending_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orchestrator_pending_changed', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_pending_inserted
    AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.state IN ('queued', 'waiting'))
    EXECUTE FUNCTION notify_pending_changed();

CREATE TRIGGER jobs_pending_updated
    AFTER UPDATE OF id, seq, namespace, priority, spec, state, attempt, enqueued_at, queued_at,
        wait_reason, wait_message, wait_position, waiting_since ON jobs
    FOR EACH ROW WHEN (OLD.state IN ('queued', 'waiting') OR NEW.state IN ('queued', 'waiting'))
    EXECUTE FUNCTION notify_pending_changed();

CREATE TRIGGER jobs_pending_deleted
    AFTER DELETE ON jobs
    FOR EACH ROW WHEN (OLD.state IN ('queued', 'waiting'))
    EXECUTE FUNCTION notify_pending_changed();
