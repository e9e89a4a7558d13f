"""Python code blocks of the documentation pages, and what the tests do with each.

Conventions (for whoever writes a page under ``docs/``):

- A block with a file name, ```` ```python title="myapp/listeners.py" ````, is a file of a
  small project: every titled block of one page is written to one fresh directory, at its
  title's path (directories get an empty ``__init__.py`` when the page shows none; titled
  blocks in other languages, such as ``application.yaml``, are written too). Then:

  - a file that calls ``asyncio.run(...)`` (at module level or under
    ``if __name__ == "__main__":``) is a **program**: it runs in a subprocess, with the project
    directory as working directory and on ``PYTHONPATH``, ``REDIS_URL`` and
    ``REDIS_STREAMING_REDIS__URL`` pointing at a private, empty server, and must exit 0 within
    60 s. Programs read the URL with ``os.environ.get("REDIS_URL", "redis://localhost:6379/0")``;
  - a file that assigns ``app = RedisStreamingApplication(...)`` at module level is an
    **application**: it is imported and started in the test process against the suite's server
    (a fresh ``mq.namespace``, short leases), must own a partition for every listener, and is
    stopped;
  - a file named ``test_*.py`` is run by **pytest** in a subprocess (the page shows the
    ``conftest.py`` that enables ``redis_streaming.testing.pytest_plugin``) and must pass;
  - any other ``.py`` file is a **module**: it must import.

- A block without a title is a **fragment**: it must compile (top-level ``await`` allowed), and
  every name it imports from ``redis_streaming`` or ``redis_streaming_starter`` must exist.
- ``<!-- snippet: skip -->`` on the line before a block exempts it from all of this (for code
  that is deliberately incomplete or wrong). Use it rarely.
- ``<!-- snippet: peer -->`` on the line before a block marks another library's code (the peers
  a page compares with, as docs/migration-streaming.md does): it is never run nor imported,
  only compiled like a fragment, and it must have no title and import nothing of ours.

``docs/design.md`` is not scanned: it is maintained with the design, not as a tutorial.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
NOT_SCANNED = frozenset({"design.md"})
SKIP_MARKER = "<!-- snippet: skip -->"
PEER_MARKER = "<!-- snippet: peer -->"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
# A language, then only options SuperFences knows (an unknown one breaks the fence silently).
FENCE_INFO = re.compile(r'[\w+-]*(\s+(title|linenums|hl_lines)="[^"]*")*')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    info: str
    language: str
    title: str | None
    code: str
    skip: bool
    peer: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}:{self.title or self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in ("python", "py")


def blocks(page: Path) -> list[Block]:
    """Every fenced code block of ``page``, in order."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        close = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        previous = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        title = _TITLE.search(info)
        found.append(
            Block(
                page=page.name,
                line=start + 1,
                info=info,
                language=info.split()[0].lower() if info else "",
                title=title["title"] if title else None,
                code="\n".join(body) + "\n",
                skip=previous == SKIP_MARKER,
                peer=previous == PEER_MARKER,
            )
        )
    return found


def pages() -> list[Path]:
    """The documentation pages whose snippets are tested."""
    return sorted(p for p in DOCS.glob("*.md") if p.name not in NOT_SCANNED)


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


def python_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.is_python and not b.skip]


def project(page: str) -> dict[str, str]:
    """The titled blocks of one page: file path -> content."""
    files: dict[str, str] = {}
    for block in blocks(DOCS / page):
        if block.title and not block.skip and not block.peer:
            if block.title in files:
                raise AssertionError(f"{page}: two blocks are titled {block.title!r}")
            files[block.title] = block.code
    return files


def _main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _calls_asyncio_run(nodes: list[ast.stmt]) -> bool:
    for node in nodes:
        if _main_guard(node):
            if _calls_asyncio_run(node.body):  # type: ignore[attr-defined]
                return True
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "run"
                and isinstance(func.value, ast.Name)
                and func.value.id == "asyncio"
            ):
                return True
    return False


def _assigns_app(nodes: list[ast.stmt]) -> bool:
    for node in nodes:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "app" for t in node.targets)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "RedisStreamingApplication"
        ):
            return True
    return False


def role(path: str, code: str) -> str:
    """``program``, ``application``, ``pytest``, ``module`` or ``file`` (not Python)."""
    if not path.endswith(".py"):
        return "file"
    if Path(path).name.startswith("test_"):
        return "pytest"
    tree = ast.parse(code)
    if _calls_asyncio_run(tree.body):
        return "program"
    if _assigns_app(tree.body):
        return "application"
    return "module"


def files_with_role(wanted: str) -> list[tuple[str, str]]:
    """(page, path) of every titled file with the role ``wanted``, over all pages."""
    out = []
    for page in pages():
        for path, code in project(page.name).items():
            if role(path, code) == wanted:
                out.append((page.name, path))
    return out


def write_project(page: str, into: Path) -> dict[str, str]:
    """Write the page's titled blocks under ``into`` (with ``__init__.py`` files)."""
    files = project(page)
    for path, code in files.items():
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
    for path in files:
        if not path.endswith(".py"):
            continue
        directory = (into / path).parent
        while directory != into:
            init = directory / "__init__.py"
            if not init.exists():
                init.write_text("")
            directory = directory.parent
    return files


def module_name(path: str) -> str:
    """``myapp/main.py`` -> ``myapp.main``."""
    return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
