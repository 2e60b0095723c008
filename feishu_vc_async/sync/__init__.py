"""Keep a database current with the meetings that end: ``await Sync(client, job).run()``.

::

    from feishu_vc_async.export import database_output
    from feishu_vc_async.sync import Sync, SyncJob

    async with VCClient(AppCredentials(app_id, secret)) as client:
        job = SyncJob(database_output("sqlite:///attendance.db", name="sync"))
        await Sync(client, job).run()          # backfill 30 days, then every 5 minutes

The parts: ``_job`` (:class:`SyncJob`, what to keep current; :class:`SyncState`, what
the sync keeps in the database) and ``_run`` (:class:`Sync`, its cycles).
"""

from ._job import SyncJob, SyncState
from ._run import Cycle, Sync

__all__ = ["Cycle", "Sync", "SyncJob", "SyncState"]
