-- Start estimates in the History dashboard (issue 19). At admission the job's last estimate
-- moves to its attempt, so how far estimates were from the actual starts can be followed over
-- months, per namespace and priority; the job's own column is cleared for its next wait.
ALTER TABLE job_attempts ADD COLUMN estimated_start_at timestamptz;

-- Estimate error of the attempts admitted each day: |admitted - last estimate|, and the share
-- that started later than estimated. Attempts admitted before any estimate was made (within
-- the first replay period) have none and are only counted in `admitted`.
CREATE VIEW history_estimates_daily AS
SELECT date_trunc('day', submitted_at, 'UTC')                                  AS day,
       j.namespace,
       j.priority,
       count(*)                                                                AS admitted,
       count(a.estimated_start_at)                                             AS estimated,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY abs(extract(epoch FROM
           a.submitted_at - a.estimated_start_at)::double precision))          AS error_p50_seconds,
       percentile_cont(0.90) WITHIN GROUP (ORDER BY abs(extract(epoch FROM
           a.submitted_at - a.estimated_start_at)::double precision))          AS error_p90_seconds,
       avg(CASE WHEN a.submitted_at > a.estimated_start_at THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE a.estimated_start_at IS NOT NULL)                     AS late_share
FROM job_attempts a
JOIN jobs j ON j.id = a.job_id
GROUP BY 1, 2, 3;

-- The jobs waiting now with their current estimate (NULL: not estimated yet, or the replay
-- does not see it start).
CREATE VIEW history_waiting AS
SELECT id AS job_id,
       namespace,
       priority,
       name,
       state,
       queued_at,
       estimated_start_at,
       wait_reason
FROM jobs
WHERE state IN ('queued', 'waiting');
