"""How an export's settings travel: the modules of the package they are handed to, in
order, from ``feishu-vc export``'s arguments until the fan-out starts (every setting
has been used by then: the client built, the output opened, the job made), and how
often the path comes back to a module it had left.

A setting is an object the command line made: the parsed arguments, what a settings
object holds (0.1's ``ExportConfig``; this version's ``ExportCommand``, ``ClientSettings``,
``ExportJob``), and what those hold in turn (a rate limit, a path, a range, credentials,
an output), followed by identity. A function is handed a setting when one is among its
arguments as it is called; methods of a settings object on their own fields are where
the setting already is, and do not count. Plain numbers, strings and enum members have
no identity to follow and are left out.

Run it: ``python tests/_settings_trace.py`` prints the path and ``N stops in K modules,
M returns``: a *stop* is a run of such calls in one module (consecutive calls in one
module are one stop), a *return* a stop in a module the path had already left. No
network: the export is the README's range export, to a closed port, so the run ends at its
first request.
"""

from __future__ import annotations

import argparse
import enum
import itertools
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

PACKAGE = "feishu_vc_async"
# 0.1 kept its command line in cli.py and _credentials.py, this version in cli/.
_CLI = (f"{PACKAGE}.cli", f"{PACKAGE}._credentials")
# The objects made of settings, in this version and in 0.1 (what is absent is not met).
_CARRIERS = frozenset({"ExportCommand", "ClientSettings", "ExportJob", "ExportConfig"})
# Where the trace ends: the first request; every setting has been used by then.
_END = ("Transport", "call")
_PLAIN = (int, float, str, bytes, bool, type(None), enum.Enum)


class _Followed:
    """The settings met so far, by identity (kept alive so an id is never reused)."""

    def __init__(self) -> None:
        self._objects: dict[int, object] = {}

    def add(self, value: object, depth: int = 0) -> None:
        if isinstance(value, _PLAIN) or depth > 3:
            return
        # A settings object is looked into again: met first in its own __init__, it had
        # no fields yet.
        if id(value) in self._objects and type(value).__name__ not in _CARRIERS:
            return
        self._objects[id(value)] = value
        if isinstance(value, dict):
            parts: list[object] = list(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            parts = list(value)
        else:
            slots = getattr(type(value), "__slots__", ())
            names = list(getattr(value, "__dict__", {})) + [s for s in slots if isinstance(s, str)]
            parts = [getattr(value, name, None) for name in names]
        for part in parts:
            self.add(part, depth + 1)

    def __contains__(self, value: object) -> bool:
        return id(value) in self._objects


def trace() -> tuple[list[str], set[str]]:
    """The path of stops, and the modules outside ``cli`` that were handed the parsed
    arguments themselves (a library module reading command-line options)."""
    from feishu_vc_async.cli import main

    path: list[str] = []
    parsing: set[str] = set()
    followed = _Followed()
    done = False

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal done
        if done or event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        code = frame.f_code
        if not module.startswith(PACKAGE):
            return
        if code.co_name == _END[1] and code.co_qualname.startswith(_END[0] + "."):
            done = True
            return
        own = frame.f_locals.get("self")
        handed = [
            v for name, v in frame.f_locals.items() if name != "self" or code.co_name == "__init__"
        ]
        for value in handed:
            if isinstance(value, argparse.Namespace) or type(value).__name__ in _CARRIERS:
                followed.add(value)
            if isinstance(value, argparse.Namespace) and not module.startswith(_CLI):
                parsing.add(module)
        if own is not None and type(own).__name__ in _CARRIERS and code.co_name != "__init__":
            return  # a settings object using its own fields
        if any(value in followed for value in handed) and (not path or path[-1] != module):
            path.append(module)

    def created(frame: FrameType, event: str, arg: Any) -> None:
        # A settings object is followed from the moment it is made, with what it holds.
        if event == "return" and frame.f_code.co_name == "__init__":
            own = frame.f_locals.get("self")
            if own is not None and type(own).__name__ in _CARRIERS:
                followed.add(own)
        profile(frame, event, arg)

    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "export", "--since", "2026-11-01", "--until", "2026-11-30", "--tz", "UTC",
            "--out", str(Path(tmp) / "o.jsonl"), "--fields", "meeting_no,meeting_topic",
            "--base-url", "http://127.0.0.1:9", "--max-retries", "0", "-q",
        ]  # fmt: skip
        env = {"FEISHU_APP_ID": "cli_trace", "FEISHU_APP_SECRET": "s"}
        sys.setprofile(created)
        try:
            main(argv, env=env)
        finally:
            sys.setprofile(None)
    return path, parsing


def returns(path: list[str]) -> int:
    left: set[str] = set()
    count = 0
    for previous, stop in itertools.pairwise(path):
        left.add(previous)
        count += stop in left
    return count


if __name__ == "__main__":
    stops, parsing = trace()
    for stop in stops:
        print(stop)
    print(f"{len(stops)} stops in {len(set(stops))} modules, {returns(stops)} returns")
    print(f"parsed arguments read outside cli: {', '.join(sorted(parsing)) or 'nowhere'}")
