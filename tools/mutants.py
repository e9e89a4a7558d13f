"""Plant known bugs, one at a time, and check that the tests named for each one catch it.

    .venv/bin/python tools/mutants.py              # every mutant in tests/mutants/*.toml
    .venv/bin/python tools/mutants.py M08 M20      # some of them
    .venv/bin/python tools/mutants.py --list       # what is planted where, and what must catch it
    .venv/bin/python tools/mutants.py --check      # only that every mutant still applies

A mutant is a one- or two-line change of framework or starter code that breaks one promise of
the docs ("the dead letter is written before the acknowledgement"), with the tests that must fail
because of it. Each runs in a copy of the working tree (uncommitted changes included), so the
checkout is never modified; the copy's packages come first on ``PYTHONPATH``, ahead of the
editable install. A mutant is *caught* when pytest reports failed tests (exit status 1); it
*survives* when they pass, and anything else (a collection error, a timeout of the whole run) is
an *error*. The exit status is 0 only when every mutant selected was caught.

Catalogue entries (``[[mutant]]`` tables)::

    id = "M08"                                   # unique
    promise = "a dead letter is written before its entry is acknowledged"
    file = "framework/redis_streaming/mq/retry/dead_letter.py"
    find = "..."                                 # exact text, found exactly once in file
    replace = "..."
    tests = ["tests/mq/test_retry_dlq.py::test_..."]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "tests" / "mutants"
_FIELDS = {"id", "promise", "file", "find", "replace", "tests"}


@dataclass(frozen=True)
class Mutant:
    """One planted bug and the tests that must catch it."""

    id: str
    promise: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    source: str  # the catalogue file it is listed in

    def problems(self, root: Path = ROOT) -> list[str]:
        """Why this mutant cannot be planted in ``root`` as written (empty when it can)."""
        path = root / self.file
        if not path.is_file():
            return [f"{self.id}: {self.file} does not exist"]
        found = path.read_text().count(self.find)
        out = []
        if found != 1:
            out.append(f"{self.id}: its `find` text occurs {found} times in {self.file}, not once")
        if self.find == self.replace:
            out.append(f"{self.id}: `replace` is the same as `find`")
        for test in self.tests:
            file, _, name = test.partition("::")
            test_path = root / file
            if not test_path.is_file():
                out.append(f"{self.id}: test file {file} does not exist")
            elif name and f"def {name.split('::')[-1].split('[')[0]}(" not in test_path.read_text():
                out.append(f"{self.id}: {test} names no test function in {file}")
        return out


def load(directory: Path = CATALOGUE) -> list[Mutant]:
    """Every mutant of every ``*.toml`` file in ``directory``, in file and then listed order."""
    mutants: list[Mutant] = []
    for path in sorted(directory.glob("*.toml")):
        for entry in tomllib.loads(path.read_text()).get("mutant", []):
            missing, extra = _FIELDS - set(entry), set(entry) - _FIELDS
            if missing or extra:
                raise SystemExit(
                    f"{path.name}: mutant {entry.get('id')!r}: missing {sorted(missing)}, "
                    f"unknown {sorted(extra)}"
                )
            tests = entry["tests"]
            if not tests:
                raise SystemExit(f"{path.name}: mutant {entry['id']!r} names no test")
            mutants.append(
                Mutant(
                    entry["id"],
                    entry["promise"],
                    entry["file"],
                    entry["find"],
                    entry["replace"],
                    tuple(tests),
                    path.name,
                )
            )
    ids = [m.id for m in mutants]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SystemExit(f"duplicate mutant ids: {', '.join(dupes)}")
    return mutants


def _tree_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


def _copy_tree(files: list[str], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)


def _env(copy: Path) -> dict[str, str]:
    paths = [str(copy / "framework"), str(copy / "starter"), str(copy)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_one(mutant: Mutant, files: list[str], timeout_s: float) -> tuple[str, float, str]:
    """Plant ``mutant`` in a fresh copy and run its tests: ``(verdict, seconds, output tail)``."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        copy = Path(tmp)
        _copy_tree(files, copy)
        problems = mutant.problems(copy)
        if problems:
            return "error", 0.0, "\n".join(problems)
        target = copy / mutant.file
        target.write_text(target.read_text().replace(mutant.find, mutant.replace))
        env = _env(copy)
        where = subprocess.run(
            [sys.executable, "-c", "import redis_streaming, redis_streaming_starter as s; "
             "print(redis_streaming.__file__); print(s.__file__)"],
            cwd=copy, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if where.returncode != 0 or any(
            not line.startswith(str(copy)) for line in where.stdout.split()
        ):
            imported = where.stdout + where.stderr
            return "error", 0.0, f"the copy's packages are not the ones imported: {imported}"
        start = time.monotonic()
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:randomly",
                 *mutant.tests],
                cwd=copy, env=env, capture_output=True, text=True, timeout=timeout_s,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "error", time.monotonic() - start, f"timed out after {timeout_s:.0f}s"
        took = time.monotonic() - start
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-12:])
        verdict = {0: "SURVIVED", 1: "caught"}.get(run.returncode, "error")
        return verdict, took, tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="mutant ids to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="only check that each applies")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's run")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run's output")
    args = parser.parse_args(argv)

    mutants = load()
    if args.ids:
        unknown = set(args.ids) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant id(s): {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in args.ids]
    if args.list:
        for m in mutants:
            print(f"{m.id:8} {m.file}\n         promise: {m.promise}")
            for t in m.tests:
                print(f"         caught by: {t}")
        return 0
    problems = [p for m in mutants for p in m.problems()]
    if problems or args.check:
        print("\n".join(problems) or f"{len(mutants)} mutants apply")
        return 1 if problems else 0

    files = _tree_files()
    results: list[tuple[Mutant, str, float]] = []
    for m in mutants:
        verdict, took, tail = run_one(m, files, args.timeout)
        results.append((m, verdict, took))
        print(f"{m.id:8} {verdict:9} {took:6.1f}s  {m.promise}", flush=True)
        if verdict != "caught" or args.verbose:
            print("    " + tail.replace("\n", "\n    "), flush=True)
    caught = sum(1 for _, v, _ in results if v == "caught")
    print(f"\n{caught} of {len(results)} planted bugs caught")
    for m, verdict, _ in results:
        if verdict != "caught":
            print(f"  {m.id} {verdict}: {m.promise} ({m.source})")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
