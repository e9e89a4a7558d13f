"""The Python snippets of the documentation run (conventions: ``tests/docs/snippets.py``)."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from redis_streaming.testing import RedisServer
from tests.docs import snippets
from tests.helpers import fast_env, wait_until

PYTHON_BLOCKS = snippets.python_blocks()
PROGRAMS = snippets.files_with_role("program")
APPLICATIONS = snippets.files_with_role("application")
PYTEST_FILES = snippets.files_with_role("pytest")
MODULES = snippets.files_with_role("module")
TIMEOUT_S = 60

# Short leases and intervals, so an application owns its partitions within a second.
FAST_ENV = {**fast_env(), "REDIS_STREAMING_LOGGING__LEVEL": "WARNING"}


def _ids(items: list[tuple[str, str]]) -> list[str]:
    return [f"{page}:{path}" for page, path in items]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_STREAMING_")}
    return {**env, **extra}


def _imported_names(code: str) -> Iterator[tuple[str, str]]:
    for node in ast.walk(ast.parse(code)):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] in ("redis_streaming", "redis_streaming_starter")
        ):
            for alias in node.names:
                yield node.module, alias.name


def test_the_pages_have_snippets() -> None:
    assert len(PYTHON_BLOCKS) >= 20
    assert PROGRAMS
    assert APPLICATIONS
    assert PYTEST_FILES


def test_fences_use_only_known_options() -> None:
    """SuperFences renders a fence with an option it does not know as a paragraph of text,
    silently: only ``title``, ``linenums`` and ``hl_lines`` are used here."""
    for block in snippets.all_blocks():
        assert snippets.FENCE_INFO.fullmatch(block.info), f"{block.id}: fence {block.info!r}"


def test_peer_blocks_are_other_libraries_code() -> None:
    """A block marked as a peer's is compiled only: it has no title (so it is never written,
    run or imported) and uses none of our packages (a snippet of ours must run instead)."""
    peers = [b for b in PYTHON_BLOCKS if b.peer]
    assert peers, "docs/migration-streaming.md shows peers' code"
    for block in peers:
        assert block.title is None, f"{block.id}: a peer's block has a title"
        assert not list(_imported_names(block.code)), f"{block.id}: imports redis_streaming"
        assert "redis_streaming" not in block.code, f"{block.id}: uses redis_streaming"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.id for b in PYTHON_BLOCKS])
def test_snippet_compiles_and_its_imports_exist(block: snippets.Block) -> None:
    compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for module, name in _imported_names(block.code):
        found = importlib.import_module(module)
        assert hasattr(found, name), f"{block.id}: `from {module} import {name}`: no such name"


@pytest.mark.parametrize(("page", "path"), PROGRAMS, ids=_ids(PROGRAMS))
def test_program_runs(page: str, path: str, tmp_path: Path, rs_server: RedisServer) -> None:
    snippets.write_project(page, tmp_path)
    env = _clean_env(
        REDIS_URL=rs_server.url,
        REDIS_STREAMING_REDIS__URL=rs_server.url,
        # The project first; then whatever the suite runs with (tools/mutants.py puts a mutated
        # copy of the framework there, which the program must import too).
        PYTHONPATH=os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p),
    )
    run = subprocess.run(
        [sys.executable, path],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert run.returncode == 0, f"{page}:{path} failed:\n{run.stdout}\n{run.stderr}"


@contextmanager
def _project_imports(page: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The page's project importable from ``root`` (its working directory too), and its
    modules forgotten afterwards, so pages may reuse package names."""
    files = snippets.write_project(page, root)
    tops = {p.split("/")[0].removesuffix(".py") for p in files if p.endswith(".py")}

    def forget() -> dict[str, Any]:
        gone = {n: m for n, m in sys.modules.items() if n.split(".")[0] in tops}
        for name in gone:
            del sys.modules[name]
        return gone

    # The page's packages may share a top-level name with ours (``tests``): put ours back after,
    # or later tests would import second copies of their modules (and classes).
    saved = forget()
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    try:
        yield
    finally:
        forget()
        sys.modules.update(saved)


@pytest.mark.parametrize(("page", "path"), MODULES, ids=_ids(MODULES))
def test_module_imports(
    page: str, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _project_imports(page, tmp_path, monkeypatch):
        importlib.import_module(snippets.module_name(path))


@pytest.mark.parametrize(("page", "path"), APPLICATIONS, ids=_ids(APPLICATIONS))
async def test_application_starts_and_consumes(
    page: str,
    path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rs_server_url: str,
    rs_namespace: str,
) -> None:
    for name in [n for n in os.environ if n.startswith("REDIS_STREAMING_")]:
        monkeypatch.delenv(name)
    env = {
        **FAST_ENV,
        "REDIS_STREAMING_REDIS__URL": rs_server_url,
        "REDIS_STREAMING_MQ__NAMESPACE": rs_namespace,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with _project_imports(page, tmp_path, monkeypatch):
        app: Any = importlib.import_module(snippets.module_name(path)).app
        async with app.lifespan():
            subs = app.consumer.subscriptions
            assert subs, f"{page}:{path} has no listeners"
            await wait_until(lambda: all(s.owned_partitions for s in subs), 10, "partitions")
            assert app.ready


@pytest.mark.parametrize(("page", "path"), PYTEST_FILES, ids=_ids(PYTEST_FILES))
def test_pytest_file_passes(page: str, path: str, tmp_path: Path, rs_server: RedisServer) -> None:
    snippets.write_project(page, tmp_path)
    # Only pytest-asyncio is loaded: autoloading every installed plugin costs a second or more.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "pytest_asyncio.plugin",
            "-p",
            "no:cacheprovider",
            path,
        ],
        cwd=tmp_path,
        env=_clean_env(REDIS_URL=rs_server.url, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert run.returncode == 0, f"{page}:{path} failed:\n{run.stdout}\n{run.stderr}"
