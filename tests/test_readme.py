"""The README stays true for a newcomer: every invoke task is in its task table (and nothing
else is), and the paths it names exist."""

from __future__ import annotations

import re

from chorus_db import config

ROOT = config.ROOT
README = (ROOT / "README.md").read_text()


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
