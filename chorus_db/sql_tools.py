"""The field tools `invoke lint` runs over db/, with the project's choice of rules:

* Squawk (PyPI squawk-cli): lock safety of the schema files, configured in .squawk.toml.
* pgspot (PyPI): hazards of SQL run by a privileged role: SECURITY DEFINER without a pinned
  search_path (PS003), CREATE OR REPLACE of an object someone else may own (PS002), IF NOT
  EXISTS adopting an object someone else created (PS007, PS010-PS015), unsafe SET search_path
  (PS018). Codes that only matter where an attacker controls the search_path during the build
  are left out (below); the build's session and every function pin it.

chorus_db.migration_lint stays: it checks this project's own split between schema and
declarative files, which neither tool knows about.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from . import config
from .errors import UserError

# pgspot codes left out, and why.
PGSPOT_IGNORED = {
    # Unqualified operators, functions, objects and simple CASE: resolved through search_path,
    # which the build's session and every function set; no web role may create objects.
    "PS001": "unqualified operator",
    "PS005": "function without explicit search_path (only SECURITY DEFINER ones matter: PS003)",
    "PS009": "simple CASE expression",
    "PS016": "unqualified function call",
    "PS017": "unqualified object reference",
    # SECURITY DEFINER with `pg_catalog, app, pg_temp`: pgspot counts any schema but pg_catalog
    # and pg_temp as insecure. `app` is safe while no other role may create objects in it, which
    # tests/test_sql_tools.py checks on a live build instead.
    "PS004": "SECURITY DEFINER search_path other than pg_catalog, pg_temp",
}
# Applied, frozen files with a finding that the build guards against instead.
PGSPOT_FILE_IGNORED = {
    # `create schema if not exists app / extensions`: on a shared server a schema of that name
    # made by someone else would be adopted. The build refuses schemas it does not own
    # (chorus_db.build.check_schema_owners).
    "db/schema/000-foundation.sql": ("PS010",),
}


class ToolMissing(UserError):
    pass


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ToolMissing(f"{name} was not found: install the test dependencies (`pip install -c constraints.txt -e '.[test]'`, which brings {package})")
    return found


def sql_files(root: Path = config.DB_DIR) -> list[Path]:
    return [p for kind in ("schema", "functions", "policies") for p in sorted((root / kind).glob("*.sql"))]


def run_squawk(files: list[Path] | None = None, config_file: Path = config.ROOT / ".squawk.toml") -> list[str]:
    """Squawk's findings, one line each (file:line:column: rule message); empty when none."""
    files = files if files is not None else sorted(config.SCHEMA_DIR.glob("*.sql"))
    proc = subprocess.run(
        # Paths relative to the checkout: .squawk.toml's excluded_paths are written so.
        [_tool("squawk", "squawk-cli"), "--config", str(config_file), "--reporter", "gcc",
         *[str(f.relative_to(config.ROOT)) if config.ROOT in f.parents else str(f) for f in files]],
        capture_output=True, text=True, cwd=config.ROOT, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    findings = [line for line in proc.stdout.splitlines() if re.search(r": (warning|error):? ", line)]
    if proc.returncode != 0 and not findings:
        raise UserError(f"squawk failed: {(proc.stderr or proc.stdout).strip()}")
    return findings


def run_pgspot(files: list[Path] | None = None) -> list[str]:
    """pgspot's findings (file: code: message), with the project's ignored codes; empty when none.

    One pgspot process per set of ignored codes, not per file (each start costs a Python
    interpreter and pglast); pgspot checks each file on its own and heads its findings with the
    file's path (when it checks more than one), which names the finding here."""
    files = files if files is not None else sql_files()
    binary = _tool("pgspot", "pgspot")
    groups: dict[frozenset[str], list[tuple[str, Path]]] = {}
    for path in files:
        name = str(path.relative_to(config.ROOT)) if config.ROOT in path.parents else str(path)
        ignored = frozenset(PGSPOT_IGNORED) | frozenset(PGSPOT_FILE_IGNORED.get(name, ()))
        groups.setdefault(ignored, []).append((name, path))
    findings = []
    for ignored, members in groups.items():
        names = {str(path): name for name, path in members}
        argv = [binary, *[arg for code in sorted(ignored) for arg in ("--ignore", code)], *names]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            what = ", ".join(names.values())
            raise UserError(f"pgspot failed on {what}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        # pgspot names the file only when it checks more than one.
        current = next(iter(names.values())) if len(names) == 1 else None
        for line in proc.stdout.splitlines():
            header = line.rstrip()
            if header.endswith(":") and header[:-1] in names:
                current = names[header[:-1]]
            elif re.match(r"PS\d{3}: ", line.strip()):
                if current is None:
                    raise UserError(f"pgspot printed a finding before naming its file: {line.strip()}")
                findings.append(f"{current}: {line.strip()}")
    return findings
