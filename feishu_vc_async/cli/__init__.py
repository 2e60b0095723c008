"""The ``feishu-vc`` command line: every option, message about options and exit code.

The library raises typed errors; the modules here turn them into advice about flags.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
