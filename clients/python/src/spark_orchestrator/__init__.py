"""Client for the Spark job orchestrator.

- :class:`AmqpPublisher` publishes jobs to RabbitMQ the way the daemon's intake expects them
  (publisher confirms, ``mandatory`` routing, ``message_id`` = job id) and can wait for the
  daemon's verdict on each.
- :class:`HttpClient` submits jobs over the HTTP API and follows them: status, listing,
  :meth:`HttpClient.wait` until a state, cancel, dead letters (list, inspect, requeue,
  purge), queues.
- Every failure is a typed exception (:mod:`spark_orchestrator.errors`) carrying the API's
  ``error``, ``message`` and every ``problem``.

.. code-block:: python

    import json
    from spark_orchestrator import AmqpPublisher, HttpClient

    with AmqpPublisher("amqp://guest:guest@127.0.0.1:5672/%2F", prefix="orchestrator") as amqp:
        sent = amqp.publish(json.load(open("examples/jobs/spark-pi.json")), wait_verdict=True)
    api = HttpClient("http://127.0.0.1:8080", token="demo-admin-token-0123456789")
    print(api.wait(sent.job_id, timeout=300)["state"])  # succeeded
"""

from .amqp import AmqpPublisher
from .api import HttpClient
from .errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidJob,
    Nacked,
    NotFound,
    OrchestratorError,
    PayloadTooLarge,
    Problem,
    ServerError,
    Timeout,
    Unauthorized,
    UnknownNamespace,
    Unavailable,
    Unprocessable,
    Unroutable,
    UnsupportedMediaType,
)
from .models import FINAL_STATES, PRIORITIES, STATES, Page, Published, Submission, Verdict, new_job_id

__all__ = [
    "AmqpPublisher",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "FINAL_STATES",
    "Forbidden",
    "HttpClient",
    "InvalidJob",
    "Nacked",
    "NotFound",
    "OrchestratorError",
    "PRIORITIES",
    "Page",
    "PayloadTooLarge",
    "Problem",
    "Published",
    "STATES",
    "ServerError",
    "Submission",
    "Timeout",
    "Unauthorized",
    "UnknownNamespace",
    "Unavailable",
    "Unprocessable",
    "Unroutable",
    "UnsupportedMediaType",
    "Verdict",
    "new_job_id",
]

__version__ = "0.1.0"
