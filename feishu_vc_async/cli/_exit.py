"""The exit codes of every ``feishu-vc`` command, defined once."""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_FAILURES", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED", "EXIT_USAGE"]

EXIT_OK: Final = 0
# Some of the work failed (listed, and kept beside the output); the rest was done.
EXIT_FAILURES: Final = 1
# Bad input, options or credentials, an output another run is writing, a token that
# cannot be had: nothing, or nothing more, was requested.
EXIT_USAGE: Final = 2
# Ctrl-C and SIGTERM (128 + the signal): the progress is committed.
EXIT_INTERRUPTED: Final = 130
EXIT_TERMINATED: Final = 143
