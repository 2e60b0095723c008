"""How the package holds together: no import cycles, one error base, one validation
rule per value, no test module importing another, and modules and functions
within their size limits."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import _size_limits as size_limits
import pytest
from _import_graph import cycles, graph

import feishu_vc_async
from feishu_vc_async import FeishuError, VCClient
from feishu_vc_async.cli import build_parser
from feishu_vc_async.cli._options import client_settings
from feishu_vc_async.errors import ConfigError
from feishu_vc_async.export import CheckpointError, MeetingsFileError, OutputExistsError


def test_no_import_cycle_among_the_package_modules() -> None:
    edges = graph()
    assert len(edges) > 40  # the whole package was read
    assert "feishu_vc_async.auth" in edges["feishu_vc_async._transport"]
    assert cycles(edges) == []


def test_every_error_the_library_defines_is_a_feishu_error() -> None:
    defined: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(feishu_vc_async.__path__, "feishu_vc_async."):
        if info.name.endswith("__main__"):
            continue  # running it is the CLI
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                defined.append(obj)
    assert {e.__name__ for e in defined} >= {"ConfigError", "CheckpointError", "APIError"}
    # The emulator's refusals become HTTP answers, a parser's cell errors a MeetingsFileError:
    # none of them leaves the package.
    internal = {"ApiError", "OAuthError", "CredentialError", "CellError"}
    strays = [e for e in defined if not issubclass(e, FeishuError) and e.__name__ not in internal]
    assert strays == []
    # Bad input stays a ValueError as well.
    for bad_input in (ConfigError, CheckpointError, MeetingsFileError, OutputExistsError):
        assert issubclass(bad_input, ValueError)


@pytest.mark.parametrize(
    "url", ["ftp://x", "http://", "https://user:pw@host", "http://h/?q=1", "", "not a url"]
)
def test_the_client_and_the_cli_judge_a_base_url_by_one_rule(url: str) -> None:
    with pytest.raises(ValueError, match="base_url") as by_client:
        VCClient("t-x", base_url=url)
    args = build_parser().parse_args(
        ["export", "--meetings", "m.csv", "--out", "o.jsonl", "--base-url", url]
    )
    with pytest.raises(ConfigError) as by_cli:
        client_settings(args, {"FEISHU_ACCESS_TOKEN": "t-x"})
    rule = str(by_client.value).split(": ", 1)[-1]
    assert rule in str(by_cli.value)
    assert "pw" not in str(by_client.value) + str(by_cli.value)


def test_no_test_module_imports_another() -> None:
    # Shared helpers live in tests/_*.py: importing a test module pulls its tests into
    # the importer's namespace and ties two files' fixtures and setup together.
    here = Path(__file__).resolve().parent
    offenders = []
    for path in sorted(here.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.rpartition(".")[2].startswith("test_"):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert len(list(here.glob("test_*.py"))) > 40
    assert offenders == []


def test_the_package_keeps_its_size_limits() -> None:
    # Modules a reader can hold, functions that fit a screen, a client constructor that
    # stays a short list (tests/_size_limits.py has the rules and the data-table list).
    violations, modules, functions = size_limits.check()
    assert modules > 40  # the whole package was read
    assert functions > 300
    assert [str(v) for v in violations] == []


def test_the_export_never_branches_on_a_format_name() -> None:
    # Formats are objects (a row format, an input reader table): a new output or input
    # is one more entry, not one more branch in each place that writes or reads.
    export_dir = Path(feishu_vc_async.__file__).parent / "export"
    branches = [
        f"{path.name}:{number}"
        for path in sorted(export_dir.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "fmt ==" in line
    ]
    assert branches == []
