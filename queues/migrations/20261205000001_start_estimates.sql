-- Start-time estimates (issue 19): the leader's submitter replays the queue forward and writes
-- each pending job's estimated start here; the API shows it on queued and waiting jobs.
ALTER TABLE jobs ADD COLUMN estimated_start_at timestamptz;
