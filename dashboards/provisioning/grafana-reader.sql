-- A read-only PostgreSQL role for Grafana's History dashboard: it sees the history views and
-- nothing else. Run once as an owner of the job store; set the password out of band
-- (ALTER ROLE grafana_reader PASSWORD '…').
CREATE ROLE grafana_reader LOGIN;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON history_attempts, history_jobs_daily, history_intake_daily, history_waits_daily,
                history_runs_daily, history_dead_letters_daily, history_dlq_open, history_cron_daily,
                history_namespaces, history_estimates_daily, history_waiting
    TO grafana_reader;
