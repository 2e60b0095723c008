"""Acting the moment the emulator answers a request, not after polling for it.

``on_record(emu, callback)`` calls ``callback(record)`` as each request is recorded,
which is before its answer is sent: whoever asked has not seen the answer yet. A test
that stops or signals a client there knows exactly how far the client got.
"""

from __future__ import annotations

from collections.abc import Callable

from feishu_vc_async.emulator import Emulator, RequestRecord

__all__ = ["on_record"]

Callback = Callable[[RequestRecord], None]


class _Watched(list[RequestRecord]):
    """The emulator's request log, calling ``callback`` on each record appended."""

    def __init__(self, records: list[RequestRecord]) -> None:
        super().__init__(records)
        self.callback: Callback | None = None

    def append(self, record: RequestRecord) -> None:
        super().append(record)
        if self.callback is not None:
            self.callback(record)


def on_record(emu: Emulator, callback: Callback | None) -> None:
    """Call ``callback`` on every request ``emu`` records from now on (``None``: stop)."""
    if not isinstance(emu.requests, _Watched):
        emu.requests = _Watched(emu.requests)
    emu.requests.callback = callback
