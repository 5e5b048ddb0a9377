"""Migration lint: keeps the split between schema files and declarative files honest.

* db/schema holds tables, types, indexes and seed rows. It must not create functions,
  views, policies, triggers or grants (they belong to db/functions or db/policies, which are
  rebuilt), and must not reference app_logic or api: those schemas are dropped on every
  declarative rebuild, and a cascade would take table columns or constraints with them.
* db/functions and db/policies must not create or alter tables: such changes are applied
  once, as new schema files. Two exceptions: partitions of an existing table, which a job makes
  over time (app.page_views), and tables of app_logic, which hold only what the build derives
  from the source and refills on every rebuild (app_logic.routes, from db/routes.toml).
* Every file is named NN-domain.sql / NNN-domain.sql, and each starts with a comment saying
  what it is for.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import config

NAME = re.compile(r"^\d{2,3}-[a-z0-9-]+\.sql$")
SCHEMA_FORBIDDEN = [
    (re.compile(r"\bcreate\s+(or\s+replace\s+)?(function|procedure|view|trigger|policy)\b", re.I), "creates a declarative object"),
    (re.compile(r"^\s*grant\s", re.I | re.M), "grants privileges (grants live in db/policies)"),
    (re.compile(r"\b(app_logic|api)\.", re.I), "references app_logic or api, which are rebuilt"),
]
DECLARATIVE_FORBIDDEN = [
    # A partition of an existing table is made over time by a job (page_views), not by a migration;
    # an app_logic table is refilled from the source by every build (it holds no data of its own).
    (
        re.compile(r"\bcreate\s+(unlogged\s+)?table\s+(?!pg_temp)(?!app_logic\.)(?![^\s(]+\s+partition\s+of\b)", re.I),
        "creates a table (tables live in db/schema)",
    ),
    (re.compile(r"\balter\s+table\s+(\w+\.)?\w+\s+(add|drop|alter)\s+column\b", re.I), "alters a table's columns"),
]


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def lint(db_dir: Path = config.DB_DIR) -> list[str]:
    problems: list[str] = []
    for kind in ("schema", "functions", "policies", "tests"):
        for path in sorted((db_dir / kind).glob("*.sql")):
            rel = f"db/{kind}/{path.name}"
            text = path.read_text()
            if not NAME.match(path.name):
                problems.append(f"{rel}: name files NN-domain.sql (digits, a dash, lower-case domain)")
            if not text.lstrip().startswith("--"):
                problems.append(f"{rel}: start with a comment saying what the file is for")
            if kind == "tests":
                continue
            code = _strip_comments(text)
            rules = SCHEMA_FORBIDDEN if kind == "schema" else DECLARATIVE_FORBIDDEN
            for pattern, why in rules:
                if pattern.search(code):
                    problems.append(f"{rel}: {why}")
    return problems
