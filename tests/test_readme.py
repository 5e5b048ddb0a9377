"""The README stays true for a newcomer: every invoke task is in its task table (and nothing
else is), the benchmark table has one row for each ratio `invoke bench` prints with the goal
the code holds, every domain of db/ is in the domain table, and the paths it names exist."""

from __future__ import annotations

import ast
import importlib
import re

import pytest

from chorus_db import config
from chorus_db.bench.common import GOALS

ROOT = config.ROOT
README = (ROOT / "README.md").read_text()
BENCH_CODE = ROOT / "chorus_db" / "bench"


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def _tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of a text: rows of cells, header first, the |---| line left out."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _table(text: str, first_header: str) -> list[list[str]]:
    for table in _tables(text):
        if table[0][0] == first_header:
            return table[1:]
    raise AssertionError(f"README has no table whose first column is headed {first_header!r}")


# -- tasks --------------------------------------------------------------------------------
def _tasks() -> dict[str, str | None]:
    """Every task by its full name, with the collection it is the default of (`invoke bench`
    runs bench.run), else None."""
    from tasks import ns

    found: dict[str, str | None] = {}

    def walk(collection, prefix=""):
        for name in collection.tasks:
            found[prefix + name] = prefix.rstrip(".") if prefix and collection.default == name else None
        for name, sub in collection.collections.items():
            walk(sub, f"{prefix}{name}.")

    walk(ns)
    return found


def _listed_tasks() -> set[str]:
    listed = set()
    for row in _table(_section("Tasks"), "task"):
        for span in re.findall(r"`([^`]+)`", row[0]):
            listed.add(span.removeprefix("invoke ").split()[0])
    return listed


def test_every_invoke_task_is_in_the_readmes_task_table_and_every_name_there_is_a_task():
    tasks, listed = _tasks(), _listed_tasks()
    missing = sorted(name for name, default_of in tasks.items() if name not in listed and default_of not in listed)
    assert not missing, f"tasks missing from README's task table (## Tasks): {missing}"
    known = set(tasks) | {d for d in tasks.values() if d}
    assert listed <= known, f"README's task table names tasks that do not exist: {sorted(listed - known)}"


def test_the_task_check_knows_tasks_defaults_and_the_table():
    tasks = _tasks()
    assert tasks["bench.run"] == "bench" and tasks["lint.squawk"] is None and tasks["up"] is None
    assert {"up", "down", "db.build", "bench"} <= _listed_tasks()


# -- benchmarks -----------------------------------------------------------------------------
def bench_ratio_names() -> dict[str, tuple[bool, str]]:
    """Each ratio `invoke bench` can print, from the code (`report.ratios[NAME] = ...`): the
    name, whether it is exact (else a prefix: an f-string of a loop variable), and where."""
    names: dict[str, tuple[bool, str]] = {}
    for path in sorted(BENCH_CODE.glob("*.py")):
        module = importlib.import_module(f"chorus_db.bench.{path.stem}") if path.stem != "__init__" else None
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute)
                        and target.value.attr == "ratios"):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                key = target.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names[key.value] = (True, where)
                elif isinstance(key, ast.JoinedStr):
                    try:  # module constants (peer.DESCRIPTION) make it exact
                        value = eval(compile(ast.Expression(key), where, "eval"), vars(module))  # noqa: S307
                        names[value] = (True, where)
                    except NameError:
                        prefix = "".join(v.value for v in key.values[: next(
                            (i for i, v in enumerate(key.values) if not isinstance(v, ast.Constant)), len(key.values))])
                        names[prefix] = (False, where)
                else:
                    pytest.fail(f"{where}: a ratio's name must be a string or an f-string, so the README can be checked")
    return names


def _figures(cell: str) -> list[float]:
    """The figures of a `measured` cell: the numbers before any parenthesis."""
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\.?\d*", cell.split("(")[0])]


MAIN_TABLE = "ratio, as `invoke bench` prints it"
KNOB_TABLE = "knob"


def test_the_benchmark_table_has_one_row_per_ratio_invoke_bench_prints_with_the_codes_goal():
    from chorus_db.bench.http import KNOBS

    section = _section("Benchmarks")
    rows = {row[0]: row for row in _table(section, MAIN_TABLE)}
    names = bench_ratio_names()
    seen = set()
    for name, (exact, where) in names.items():
        if not exact and name.startswith("knob "):
            continue  # the knobs table, below
        matching = [r for r in rows if (r == f"`{name}`" if exact else r.startswith(f"`{name}"))]
        assert matching, (
            f"README's benchmark table (## Benchmarks, `{MAIN_TABLE}`) has no row for `{name}` ({where}): "
            "add one with the figure `invoke bench` printed"
        )
        seen.update(matching)
    assert set(rows) <= seen, f"rows for ratios `invoke bench` no longer prints: {sorted(set(rows) - seen)}"

    for first, row in rows.items():
        _, before, measured, goal_cell, verdict = row
        figures = _figures(measured)
        if measured.startswith("not recorded"):
            assert verdict == "", f"{first}: a verdict without a figure"
            continue
        assert figures, f"{first}: the measured cell holds no figure (or says `not recorded` and why)"
        goal = GOALS.get(first.strip("`").split(" ", 1)[0])
        if goal is None:
            assert goal_cell == "" and verdict == "", f"{first}: a goal the code does not hold ({goal_cell!r})"
            continue
        op = {">=": "≥", "<=": "≤"}[goal.op]
        assert re.fullmatch(rf"{op} {goal.value:g}( ms)?", goal_cell), f"{first}: goal {goal_cell!r}, the code says {goal}"
        met = all(goal.met(value) for value in figures)
        assert verdict.split()[0] == ("met" if met else "missed"), f"{first}: {measured} against {goal} is not {verdict!r}"

    knob_rows = _table(section, KNOB_TABLE)
    listed = {re.match(r"`([^`]+)`", row[0]).group(1) for row in knob_rows}
    assert listed == set(KNOBS), f"the knobs table lists {sorted(listed)}, chorus_db/bench/http.py measures {sorted(KNOBS)}"
    for row in knob_rows:
        assert _figures(row[1]), f"knob {row[0]}: no figure"


def test_the_ratio_names_are_read_from_the_code():
    names = bench_ratio_names()
    assert (True, "chorus_db/bench/brand.py") == (names["heatmap endpoint / plain insert"][0],
                                                   names["heatmap endpoint / plain insert"][1].split(":")[0])
    assert any(n.startswith("d/peer ") and exact for n, (exact, _) in names.items())  # f-string of a constant
    assert names["knob "][0] is False  # f-string of the loop variable
    assert _figures("2.81 (669 against 238 requests/s)") == [2.81] and _figures("0.37 to 0.42") == [0.37, 0.42]


# -- paths ------------------------------------------------------------------------------------
TOP = ("db/", "tests/", "chorus_db/", "deploy/", "web/", "bench/", "tasks/", "docs/", ".ci/")


def test_every_path_of_the_checkout_the_readme_names_exists():
    stale = []
    for span in set(re.findall(r"`([^`\s]+)`", README)) | set(re.findall(r"\]\(([^)#\s]+)\)", README)):
        path = span.rstrip(".,:;")
        # Patterns and placeholders (`db/schema/NNN-domain.sql`, `tests/test_<domain>.py`) name no file.
        if not path.startswith(TOP) or "NNN" in path or any(ch in path for ch in "*<>{}[]$…"):
            continue
        if not (ROOT / path).exists() and not any(part in path for part in ("generated/", "vendor/")):
            stale.append(path)
    assert stale == [], f"README names paths that are not in the checkout: {sorted(stale)}"


def test_every_domain_of_db_functions_and_policies_is_in_the_readmes_domain_table():
    listed = {re.match(r"`([^`]+)`", row[0]).group(1) for row in _table(_section("Layout"), "file")}
    domains = {p.stem for kind in ("functions", "policies") for p in (config.DB_DIR / kind).glob("*.sql")}
    assert domains <= listed, f"README's domain table (## Layout) lacks {sorted(domains - listed)}: add a row for each"
    files = {p.stem for kind in ("schema", "functions", "policies") for p in (config.DB_DIR / kind).glob("*.sql")}
    assert listed <= files, f"README's domain table names files that are not in db/: {sorted(listed - files)}"


# -- the two commands ---------------------------------------------------------------------------
def test_ci_run_as_a_user_with_packages_missing_says_which_in_one_sentence_and_installs_nothing():
    """README: `bash .ci/run` on a fresh machine "as root or not"; only root may install, so a
    user's run names what is missing instead of failing inside apt-get."""
    import os
    import shutil
    import subprocess

    base = config.scratch_dir("ci-run")
    try:
        (base / ".ci").mkdir()
        shutil.copy(ROOT / ".ci" / "run", base / ".ci" / "run")
        stub = base / "bin"
        stub.mkdir()
        (stub / "dpkg").write_text("#!/bin/sh\n[ \"$2\" = wrk ] && exit 1\nexit 0\n")  # wrk is missing
        (stub / "apt-get").write_text(f"#!/bin/sh\ntouch {base}/apt-ran\n")
        for tool in stub.iterdir():
            tool.chmod(0o755)
        for path in (base, base / ".ci", base / ".ci" / "run"):
            path.chmod(0o755)
        argv = ["bash", str(base / ".ci" / "run")]
        if os.geteuid() == 0:
            from chorus_db.cluster import ensure_os_user

            argv = [shutil.which("runuser") or "runuser", "-u", ensure_os_user(), "--", *argv]
        proc = subprocess.run(argv, env={"PATH": f"{stub}:/usr/bin:/bin", "HOME": str(base)}, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [
            "these Debian packages are missing: run .ci/run as root once, or install them as root "
            "(apt-get install wrk), then run it again"
        ]
        assert not (base / "apt-ran").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
