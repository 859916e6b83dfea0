//! The cron loop against a real PostgreSQL (a fresh database per test) with injected time:
//! missed-run and concurrency policies, DST both ways, invalid templates, and two replicas
//! firing 1,000 nominal times into exactly 1,000 jobs.
//!
//! Fired jobs land on the outbox; [`deliver`] stands in for relay + intake (which have their
//! own RabbitMQ tests, and the daemon test runs the whole path) so a fired job becomes a
//! stored job the concurrency policies can see.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use jobs::{Job, JobState};
use orchestrator::config::Config;
use orchestrator::cron::runner::{CronRunner, TickReport};
use orchestrator::metrics::CronMetrics;
use queues::store::{JobSource, Note, Schedule};
use queues::{JobStore, Names};
use schedules::{ConcurrencyPolicy, MissedRunPolicy, ScheduleDefinition};
use serde_json::json;
use sqlx::Row;
use test_support::pg::TestDb;

const CONFIG: &str = include_str!("../../examples/orchestrator.toml");

struct Fixture {
    db: TestDb,
    store: JobStore,
    catalog: Arc<jobs::Catalog>,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDb::new(&queues::store::MIGRATOR).await;
        let store = JobStore::new(
            db.pool.clone(),
            Names::new(test_support::unique("cron")).unwrap(),
            Arc::new(queues::Metrics::default()),
        );
        let catalog = Arc::new(Config::from_toml_str(CONFIG, "example").unwrap().catalog);
        Self { db, store, catalog }
    }

    fn runner(&self) -> CronRunner {
        // Each replica has its own store handle and metrics, as separate processes would.
        let store = JobStore::new(
            self.db.pool.clone(),
            self.store.names().clone(),
            Arc::new(queues::Metrics::default()),
        );
        CronRunner::new(
            store,
            self.catalog.clone(),
            Arc::new(CronMetrics::default()),
        )
    }

    /// Creates a schedule as if at `created`.
    async fn schedule(&self, new: ScheduleDefinition, created: DateTime<Utc>) -> Schedule {
        let s = self.store.create_schedule(&new).await.unwrap();
        sqlx::query("UPDATE schedules SET created_at = $2 WHERE id = $1")
            .bind(s.id)
            .bind(created)
            .execute(&self.db.pool)
            .await
            .unwrap();
        self.store
            .schedule(&s.definition.name)
            .await
            .unwrap()
            .unwrap()
    }

    /// Jobs fired (on the outbox), in order.
    async fn fired(&self) -> Vec<Job> {
        sqlx::query("SELECT body FROM outbox WHERE kind = 'job' ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(r.get::<&[u8], _>("body")).unwrap())
            .collect()
    }

    /// Relay + intake in miniature: stores fired jobs not yet stored.
    async fn deliver(&self) {
        for job in self.fired().await {
            self.store.enqueue(&job, JobSource::Cron).await.unwrap();
        }
    }

    async fn nominal_times(&self, s: &Schedule) -> Vec<NaiveDateTime> {
        let fires = self.store.cron_fires(s.id).await.unwrap();
        fires.into_iter().map(|(n, _)| n).collect()
    }
}

fn every_minute(name: &str, missed: &str, catch_up: u32, deadline: u32) -> ScheduleDefinition {
    ScheduleDefinition {
        name: name.into(),
        namespace: "team-a".into(),
        cron: "* * * * *".into(),
        time_zone: "UTC".into(),
        job_template: json!({
            "apiVersion": "v1", "namespace": "team-a", "name": name,
            "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
            "mainClass": "org.apache.spark.examples.SparkPi"
        }),
        missed: MissedRunPolicy::parse(missed, Some(catch_up.max(1))).unwrap(),
        starting_deadline_seconds: deadline,
        concurrency_policy: ConcurrencyPolicy::Allow,
        suspended: false,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc()
}

fn hm(t: NaiveDateTime) -> String {
    t.format("%H:%M").to_string()
}

#[tokio::test]
async fn a_schedule_fires_each_nominal_time_once_and_never_before_it_is_due() {
    let f = Fixture::new().await;
    let t0 = utc("2026-06-01 10:00:30");
    let s = f.schedule(every_minute("pi", "skip", 0, 300), t0).await;
    let runner = f.runner();
    assert_eq!(
        runner.tick(t0).await.unwrap().fired,
        0,
        "nothing is due yet"
    );
    assert_eq!(
        runner.tick(utc("2026-06-01 10:00:59")).await.unwrap().fired,
        0
    );
    let r = runner.tick(utc("2026-06-01 10:01:00")).await.unwrap();
    assert_eq!(r.fired, 1);
    assert_eq!(r.next_at, Some(utc("2026-06-01 10:02:00")));
    assert_eq!(
        runner.tick(utc("2026-06-01 10:01:40")).await.unwrap().fired,
        0,
        "not twice"
    );
    assert_eq!(
        runner.tick(utc("2026-06-01 10:02:05")).await.unwrap().fired,
        1
    );
    let times: Vec<String> = f.nominal_times(&s).await.into_iter().map(hm).collect();
    assert_eq!(times, ["10:01", "10:02"]);
    let jobs = f.fired().await;
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].name, "pi");
    assert_ne!(jobs[0].id, jobs[1].id, "each fire is its own job");
    f.db.drop_database().await;
}

#[tokio::test]
async fn missed_runs_follow_the_policy() {
    let f = Fixture::new().await;
    let t0 = utc("2026-06-01 10:00:00");
    // The daemon was down from 10:00 to 10:10: runs 10:01 … 10:10 are due at 10:10:30.
    let skip = f.schedule(every_minute("skip", "skip", 0, 150), t0).await;
    let latest = f
        .schedule(every_minute("latest", "run-latest", 0, 150), t0)
        .await;
    let catch_up = f
        .schedule(every_minute("catch", "catch-up", 4, 3600), t0)
        .await;
    let r = f.runner().tick(utc("2026-06-01 10:10:30")).await.unwrap();

    // skip: only what is still within the 150 s starting deadline (since 10:08:00).
    let names: Vec<String> = f.nominal_times(&skip).await.into_iter().map(hm).collect();
    assert_eq!(names, ["10:08", "10:09", "10:10"]);
    // run-latest: the latest only, however late.
    let names: Vec<String> = f.nominal_times(&latest).await.into_iter().map(hm).collect();
    assert_eq!(names, ["10:10"]);
    // catch-up 4: the four most recent, oldest first.
    let names: Vec<String> = f
        .nominal_times(&catch_up)
        .await
        .into_iter()
        .map(hm)
        .collect();
    assert_eq!(names, ["10:07", "10:08", "10:09", "10:10"]);
    assert_eq!(r.fired, 3 + 1 + 4);
    assert_eq!(r.missed, 7 + 9 + 6);

    let missed = |name: &'static str| {
        let store = f.store.clone();
        async move { store.schedule(name).await.unwrap().unwrap().missed_total }
    };
    assert_eq!(missed("skip").await, 7);
    assert_eq!(missed("latest").await, 9);
    assert_eq!(missed("catch").await, 6);
    // Looking again changes nothing: neither fires nor missed counts repeat.
    let again = f.runner().tick(utc("2026-06-01 10:10:40")).await.unwrap();
    assert_eq!((again.fired, again.missed), (0, 0));
    assert_eq!(missed("skip").await, 7);
    f.db.drop_database().await;
}

#[tokio::test]
async fn a_suspended_schedule_fires_nothing_and_does_not_catch_up_on_resume() {
    let f = Fixture::new().await;
    let t0 = utc("2026-06-01 10:00:00");
    let s = f
        .schedule(every_minute("paused", "catch-up", 10, 3600), t0)
        .await;
    f.store
        .set_schedule_suspended("paused", true)
        .await
        .unwrap();
    let runner = f.runner();
    assert_eq!(
        runner.tick(utc("2026-06-01 10:05:10")).await.unwrap().fired,
        0
    );
    f.store
        .set_schedule_suspended("paused", false)
        .await
        .unwrap();
    assert_eq!(
        runner.tick(utc("2026-06-01 10:05:20")).await.unwrap().fired,
        0
    );
    assert_eq!(
        runner.tick(utc("2026-06-01 10:06:00")).await.unwrap().fired,
        1
    );
    let names: Vec<String> = f.nominal_times(&s).await.into_iter().map(hm).collect();
    assert_eq!(names, ["10:06"]);
    f.db.drop_database().await;
}

#[tokio::test]
async fn forbid_skips_while_a_run_is_active_and_replace_cancels_it() {
    let f = Fixture::new().await;
    let t0 = utc("2026-06-01 10:00:00");
    let mut forbid = every_minute("forbid", "skip", 0, 300);
    forbid.concurrency_policy = ConcurrencyPolicy::Forbid;
    let mut replace = every_minute("replace", "skip", 0, 300);
    replace.concurrency_policy = ConcurrencyPolicy::Replace;
    let forbid = f.schedule(forbid, t0).await;
    let replace = f.schedule(replace, t0).await;
    let runner = f.runner();

    let r = runner.tick(utc("2026-06-01 10:01:00")).await.unwrap();
    assert_eq!(r.fired, 2);
    f.deliver().await;
    let first_replace = f.store.schedule_active_jobs(replace.id).await.unwrap();
    assert_eq!(first_replace.len(), 1);

    let r = runner.tick(utc("2026-06-01 10:02:00")).await.unwrap();
    assert_eq!((r.fired, r.skipped, r.replaced), (1, 1, 1), "{r:?}");
    f.deliver().await;
    let fires = f.store.cron_fires(forbid.id).await.unwrap();
    assert_eq!(fires.len(), 2);
    assert!(
        fires[1].1.is_none(),
        "the 10:02 fire of forbid was skipped: {fires:?}"
    );
    let old = f.store.job(first_replace[0]).await.unwrap().unwrap();
    assert_eq!(old.state, JobState::Cancelled);
    let now_active = f.store.schedule_active_jobs(replace.id).await.unwrap();
    assert_eq!(now_active.len(), 1);
    assert_ne!(now_active[0], first_replace[0]);

    // Once forbid's run ends, it fires again.
    let active = f.store.schedule_active_jobs(forbid.id).await.unwrap();
    f.store
        .cancel_job(active[0], Note::new("test", "done"))
        .await
        .unwrap();
    let r = runner.tick(utc("2026-06-01 10:03:00")).await.unwrap();
    assert_eq!(r.skipped, 0);
    assert_eq!(f.store.cron_fires(forbid.id).await.unwrap().len(), 3);
    f.db.drop_database().await;
}

/// Ticks every minute from `from` for `minutes`, with two replicas looking at each instant.
async fn sweep(f: &Fixture, from: DateTime<Utc>, minutes: i64) -> u64 {
    let (a, b) = (f.runner(), f.runner());
    let mut fired = 0;
    for m in 0..=minutes {
        let now = from + Duration::minutes(m);
        let (ra, rb) = tokio::join!(a.tick(now), b.tick(now));
        fired += ra.unwrap().fired + rb.unwrap().fired;
    }
    fired
}

#[tokio::test]
async fn dst_spring_forward_fires_a_skipped_time_once_and_fall_back_never_twice() {
    let f = Fixture::new().await;
    let berlin = chrono_tz::Europe::Berlin;
    let mut spring = every_minute("spring", "skip", 0, 300);
    spring.cron = "30 2 * * *".into();
    spring.time_zone = "Europe/Berlin".into();
    let mut autumn = spring.clone();
    autumn.name = "autumn".into();

    // 2026-03-29: clocks jump 02:00 → 03:00; 02:30 does not exist and fires at the jump.
    let start = utc("2026-03-28 23:00:00");
    let s = f.schedule(spring, start).await;
    assert_eq!(sweep(&f, start, 4 * 60).await, 1);
    let fires = f.store.cron_fires(s.id).await.unwrap();
    assert_eq!(fires.len(), 1);
    assert_eq!(hm(fires[0].0), "02:30");
    f.store.delete_schedule("spring").await.unwrap();

    // 2026-10-25: clocks go 03:00 → 02:00; 02:30 happens twice and fires at the first.
    let start = utc("2026-10-24 22:00:00");
    let s = f.schedule(autumn, start).await;
    assert_eq!(sweep(&f, start, 5 * 60).await, 1);
    assert_eq!(f.store.cron_fires(s.id).await.unwrap().len(), 1);
    let first = berlin
        .with_ymd_and_hms(2026, 10, 25, 2, 30, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(first, utc("2026-10-25 00:30:00"));
    f.db.drop_database().await;
}

#[tokio::test]
async fn an_invalid_template_becomes_a_dead_letter_once() {
    let f = Fixture::new().await;
    let t0 = utc("2026-06-01 10:00:00");
    let mut bad = every_minute("bad", "skip", 0, 300);
    bad.job_template =
        json!({"apiVersion": "v1", "namespace": "team-a", "name": "bad", "executorInstances": -3});
    let s = f.schedule(bad, t0).await;
    let now = utc("2026-06-01 10:01:00");
    let (a, b) = (f.runner(), f.runner());
    let (ra, rb) = tokio::join!(a.tick(now), b.tick(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.invalid + rb.invalid, 1, "{ra:?} {rb:?}");
    assert_eq!(ra.fired + rb.fired, 0);
    let dead = sqlx::query("SELECT reason, message FROM dead_letters")
        .fetch_all(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get::<String, _>("reason"), "invalid");
    assert!(dead[0].get::<String, _>("message").contains("schedule bad"));
    assert_eq!(f.store.cron_fires(s.id).await.unwrap().len(), 1);
    f.db.drop_database().await;
}

#[tokio::test]
async fn two_replicas_firing_1000_nominal_times_enqueue_exactly_1000_jobs() {
    let f = Fixture::new().await;
    let t0 = utc("2026-06-01 10:00:00");
    let mut every_second = every_minute("tick", "catch-up", 1000, 86_400);
    every_second.cron = "* * * * * *".into();
    let s = f.schedule(every_second, t0).await;
    let (a, b) = (f.runner(), f.runner());
    let mut reports = (TickReport::default(), TickReport::default());
    // The replicas look at staggered, overlapping instants (as two clocks and loops would).
    let mut t = 0;
    while t < 1000 {
        let (ta, tb) = (t + 7, t + 3);
        let (ra, rb) = tokio::join!(
            a.tick(t0 + Duration::seconds(ta.min(1000))),
            b.tick(t0 + Duration::seconds(tb.min(1000)))
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        reports.0.fired += ra.fired;
        reports.1.fired += rb.fired;
        reports.0.lost_races += ra.lost_races;
        reports.1.lost_races += rb.lost_races;
        t += 5;
    }
    assert_eq!(reports.0.fired + reports.1.fired, 1000, "{reports:?}");
    let jobs = f.fired().await;
    assert_eq!(jobs.len(), 1000);
    let ids: HashSet<_> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 1000);
    let nominal: HashSet<_> = f.nominal_times(&s).await.into_iter().collect();
    assert_eq!(nominal.len(), 1000);
    assert_eq!(
        f.store
            .schedule("tick")
            .await
            .unwrap()
            .unwrap()
            .missed_total,
        0
    );
    f.db.drop_database().await;
}
