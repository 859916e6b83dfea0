//! The crate's one error type, and the one decision every caller needs from it: retry later
//! (the database or the broker is away) or give up (the request itself is wrong).

use jobs::model::JobId;
use jobs::state::{IllegalTransition, JobState};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the queues: talking to PostgreSQL or RabbitMQ, or a request that breaks
/// the job lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL (connection, query, constraint).
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Applying the embedded migrations.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// RabbitMQ (connection, channel, protocol).
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    /// The broker negatively confirmed a publish: it did not take responsibility for it.
    #[error(
        "the broker refused the message (publisher nack) for exchange {exchange:?} routing key \
         {routing_key:?}: a queue is full (x-overflow=reject-publish) or the broker could not store it"
    )]
    Nacked {
        /// Exchange published to.
        exchange: String,
        /// Routing key used.
        routing_key: String,
    },
    /// A `mandatory` publish matched no queue and came back (basic.return).
    #[error(
        "nothing is bound to exchange {exchange:?} for routing key {routing_key:?}: the broker \
         returned the message ({reply_code} {reply_text}); is the topology declared?"
    )]
    Unroutable {
        /// Exchange published to.
        exchange: String,
        /// Routing key used.
        routing_key: String,
        /// AMQP reply code (312 NO_ROUTE).
        reply_code: u16,
        /// Broker's text.
        reply_text: String,
    },
    /// No job with this id in the store.
    #[error("job {0} does not exist")]
    NotFound(JobId),
    /// The job is not in the state the caller expected: someone else moved it first.
    #[error("job {job} is {actual}, not {expected}")]
    StateConflict {
        /// The job.
        job: JobId,
        /// What the caller said it was.
        expected: JobState,
        /// What it is.
        actual: JobState,
    },
    /// The lifecycle forbids this change.
    #[error("job {job}: {source}")]
    IllegalTransition {
        /// The job.
        job: JobId,
        /// Which change.
        source: IllegalTransition,
    },
    /// The job's current attempt is not the one the caller is acting on.
    #[error("job {job} is at attempt {actual}, not {expected}")]
    AttemptMismatch {
        /// The job.
        job: JobId,
        /// What the caller said.
        expected: u32,
        /// What it is.
        actual: u32,
    },
    /// A caller-supplied value is unusable (an empty prefix, a name too long for AMQP, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A stored row does not decode (a bug or a manual edit).
    #[error("corrupt row in the job store: {0}")]
    Corrupt(String),
    /// Encoding our own JSON failed.
    #[error("JSON encoding failed: {0}")]
    Json(#[from] serde_json::Error),
    /// A background task failed unexpectedly (panicked, or a simulated crash); its
    /// supervisor restarts it.
    #[error("background task crashed: {0}")]
    Crashed(String),
    /// The operation was abandoned because shutdown was requested.
    #[error("shutting down")]
    Cancelled,
    /// Neither a confirm nor a connection error came within the wait (a blocked connection,
    /// a recovery that does not finish): the broker may or may not own the message, so it is
    /// sent again later under the same id.
    #[error("the broker did not confirm within {0:?}")]
    Unconfirmed(std::time::Duration),
    /// The pending-job listener's connection did not answer its heartbeat within the wait
    /// (it died silently, or the server hangs): a new connection listens.
    #[error("the listening connection did not answer within {0:?}")]
    Unanswered(std::time::Duration),
    /// No schedule with this name or id.
    #[error("schedule {0:?} does not exist")]
    ScheduleNotFound(String),
    /// A schedule with this name exists already.
    #[error("a schedule named {0:?} exists already")]
    ScheduleExists(String),
}

/// What to do about an error: the type every loop in this crate branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A service is away or overloaded: keep the work, back off, try again.
    Retryable,
    /// Trying again will fail the same way: report it (dead-letter, 4xx, exit code).
    Fatal,
}

impl Error {
    /// Retry later, or give up.
    pub fn disposition(&self) -> Disposition {
        let retryable = match self {
            Error::Db(e) => db_retryable(e),
            Error::Migrate(sqlx::migrate::MigrateError::Execute(e)) => db_retryable(e),
            Error::Migrate(_) => false,
            // Connection and channel trouble is the broker being away. A soft protocol error
            // on our own request (404 no queue, 406 inequivalent arguments, 403 access) is a
            // configuration mistake that no retry fixes; a runtime shutdown is final.
            Error::Amqp(e) => {
                !e.is_amqp_soft_error()
                    && !e.is_runtime_shutdown_error()
                    && !matches!(
                        e.kind(),
                        lapin::ErrorKind::ParsingError(_)
                            | lapin::ErrorKind::SerialisationError(_)
                            | lapin::ErrorKind::AuthProviderError(_)
                            | lapin::ErrorKind::NoDefaultRuntime
                            | lapin::ErrorKind::InvalidProtocolVersion(_)
                    )
            }
            Error::Nacked { .. }
            | Error::Crashed(_)
            | Error::Unconfirmed(_)
            | Error::Unanswered(_) => true,
            Error::Unroutable { .. }
            | Error::NotFound(_)
            | Error::StateConflict { .. }
            | Error::IllegalTransition { .. }
            | Error::AttemptMismatch { .. }
            | Error::InvalidArgument(_)
            | Error::Corrupt(_)
            | Error::Json(_)
            | Error::Cancelled
            | Error::ScheduleNotFound(_)
            | Error::ScheduleExists(_) => false,
        };
        if retryable {
            Disposition::Retryable
        } else {
            Disposition::Fatal
        }
    }

    /// Shorthand for `disposition() == Retryable`.
    pub fn is_retryable(&self) -> bool {
        self.disposition() == Disposition::Retryable
    }

    /// A short stable label for `orchestrator_queue_errors_total{kind}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Db(_) => "db",
            Error::Migrate(_) => "migrate",
            Error::Amqp(_) => "amqp",
            Error::Nacked { .. } => "nacked",
            Error::Unroutable { .. } => "unroutable",
            Error::NotFound(_) => "not-found",
            Error::StateConflict { .. } => "state-conflict",
            Error::IllegalTransition { .. } => "illegal-transition",
            Error::AttemptMismatch { .. } => "attempt-mismatch",
            Error::InvalidArgument(_) => "invalid-argument",
            Error::Corrupt(_) => "corrupt",
            Error::Json(_) => "json",
            Error::Crashed(_) => "crashed",
            Error::Unconfirmed(_) => "unconfirmed",
            Error::Unanswered(_) => "unanswered",
            Error::Cancelled => "cancelled",
            Error::ScheduleNotFound(_) => "schedule-not-found",
            Error::ScheduleExists(_) => "schedule-exists",
        }
    }
}

/// Transient database failures: the server is away, restarting, overloaded, or asked us to
/// retry (serialization failure, deadlock). Everything else (constraint, syntax, type) is fatal.
fn db_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            let code: &str = &code;
            code.starts_with("08") // connection exception
                || code.starts_with("53") // insufficient resources (too many connections, disk full)
                || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || matches!(code, "40001" | "40P01" | "55P03" | "58000" | "58030")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_errors_are_fatal_and_outages_retryable() {
        let job = JobId::generate();
        assert_eq!(
            Error::NotFound(job).disposition(),
            Disposition::Fatal,
            "retrying a missing job cannot help"
        );
        assert!(!Error::Cancelled.is_retryable());
        assert!(Error::Db(sqlx::Error::PoolTimedOut).is_retryable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(Error::Db(sqlx::Error::Io(io)).is_retryable());
        assert!(!Error::Db(sqlx::Error::RowNotFound).is_retryable());
        assert!(
            Error::Nacked {
                exchange: "x".into(),
                routing_key: "k".into()
            }
            .is_retryable()
        );
        assert_eq!(Error::Cancelled.metric_label(), "cancelled");
        let unconfirmed = Error::Unconfirmed(std::time::Duration::from_secs(30));
        assert!(unconfirmed.is_retryable(), "sent again under the same id");
        assert_eq!(unconfirmed.metric_label(), "unconfirmed");
        let unanswered = Error::Unanswered(std::time::Duration::from_secs(5));
        assert!(unanswered.is_retryable(), "a new connection listens");
        assert_eq!(unanswered.metric_label(), "unanswered");
    }
}
