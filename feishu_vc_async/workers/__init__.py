"""Tasks on taskiq (the ``workers`` extra): many workers export a tenant's meetings into
one database, each meeting exactly once, none lost to a killed worker.

::

    broker = make_broker("redis://127.0.0.1:6379/0")
    tasks = WorkerTasks(broker)
    await broker.startup()
    await tasks.enqueue_discovery(tenant_key, start, end, "postgresql://etl@db/vc")

    # in each worker process (or ``feishu-vc worker --broker redis://...``)
    # (feishu_vc_async.cli.worker.worker_settings: the options of feishu-vc)
    settings = worker_settings(["--redis-url", "redis://..."], os.environ)
    await run_worker(broker, WorkerTasks(broker), settings, stop_event)

* ``_broker``    the broker from its URL; why a Redis stream (acknowledged, re-delivered)
* ``_tasks``     ``discover``, ``fetch_meetings`` (a chunk); exactly once; acked after commit
* ``_settings``  the worker's client from its own options and environment, never the queue
* ``_run``       a worker in this process, stopped gracefully
* ``_enqueue``   queue a window's discovery, and watch the window to its end (how the
                 enqueuer knows the work is done)
"""

from ._broker import DEFAULT_QUEUE, REDELIVER_AFTER, RedeliveringStreamBroker, make_broker
from ._enqueue import WindowProgress, WindowWatch, enqueue_window, watch_window
from ._run import run_worker
from ._settings import ClientSource, WorkerSettings
from ._tasks import CHUNK, DISCOVER_TASK, FETCH_TASK, WorkerTaskError, WorkerTasks

__all__ = [
    "CHUNK",
    "DEFAULT_QUEUE",
    "DISCOVER_TASK",
    "FETCH_TASK",
    "REDELIVER_AFTER",
    "ClientSource",
    "RedeliveringStreamBroker",
    "WindowProgress",
    "WindowWatch",
    "WorkerSettings",
    "WorkerTaskError",
    "WorkerTasks",
    "enqueue_window",
    "make_broker",
    "run_worker",
    "watch_window",
]
