"""Keep a database current with the meetings that end: ``await Sync(client, job).run()``.

::

    from feishu_vc_async.export import database_output
    from feishu_vc_async.sync import Sync, SyncJob

    async with VCClient(AppCredentials(app_id, secret)) as client:
        job = SyncJob(database_output("sqlite:///attendance.db", name="sync"))
        await Sync(client, job).run()          # backfill 30 days, then every 5 minutes

Fed by events (a webhook receiver's or a long connection's ``on_ended``), seconds after
each meeting ends, with a range cycle every hour to heal lost events::

    async with open_inbox("sqlite:///attendance.db") as inbox:
        following = EventSync(client, job, inbox)
        receiver = WebhookReceiver(..., on_ended=following.put)
        await following.run()

The parts: ``_job`` (:class:`SyncJob`, what to keep current; :class:`SyncState`, what
the sync keeps in the database), ``_state`` (that state read and kept, and each cycle's
window: shared with ``feishu-vc sync --broker``, whose workers fetch the window),
``_run`` (:class:`Sync`, its cycles) and ``_events`` (:class:`EventSync`, the same fed
by events through the database's inbox).
"""

from ..export._inbox import Inbox, open_inbox
from ._events import EventSync, Following, Taken
from ._job import SyncJob, SyncState
from ._run import Cycle, Sync

__all__ = [
    "Cycle",
    "EventSync",
    "Following",
    "Inbox",
    "Sync",
    "SyncJob",
    "SyncState",
    "Taken",
    "open_inbox",
]
