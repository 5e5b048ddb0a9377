"""`invoke lint` (every linter) and its parts: sqlfluff, the migration lint, Squawk, pgspot,
plpgsql_check."""

from __future__ import annotations

from invoke import Exit

from ._helpers import echo, report, task


@task
def sql(c):
    """sqlfluff (postgres dialect) over db/."""
    echo("sqlfluff lint db")
    if c.run("sqlfluff lint db --dialect postgres --disable-progress-bar", warn=True).failed:
        raise Exit("sqlfluff found problems in db/: fix the lines named above (`sqlfluff fix` fixes many)", code=1)


@task
def migrations(c):
    """Check the schema/declarative split (chorus_db.migration_lint)."""
    from chorus_db.migration_lint import lint

    echo("migration lint over db/")
    report(lint(), "the migration lint", "fix the files named above")


@task
def squawk(c):
    """Squawk's lock-safety rules over db/schema (.squawk.toml says which and why)."""
    from chorus_db.sql_tools import run_squawk

    echo("squawk db/schema (lock safety of the migrations)")
    report(run_squawk(), "Squawk", "fix the statements named above in a new schema file (applied ones are frozen)")


@task
def pgspot(c):
    """pgspot over db/: SECURITY DEFINER, CREATE OR REPLACE and IF NOT EXISTS hazards."""
    from chorus_db.sql_tools import run_pgspot

    echo("pgspot db/ (search_path and object-hijacking hazards)")
    report(run_pgspot(), "pgspot", "fix the objects named above")


@task
def plpgsql(c):
    """plpgsql_check on every PL/pgSQL function, trigger functions with their table."""
    from chorus_db.testing import build_template, run_plpgsql_check, running_test_cluster

    echo("plpgsql_check on a fresh build in the test cluster")
    with running_test_cluster() as cluster:
        build_template(cluster)
        findings = run_plpgsql_check(cluster)
    lines = [f"{fn}:{line}: {level}: {message}" + (f" ({hint})" if hint else "") for fn, line, level, message, hint in findings]
    report(lines, "plpgsql_check", "fix the functions named above")


LINTERS = (sql, migrations, squawk, pgspot, plpgsql)


@task(name="all", default=True)
def all_linters(c):
    """Every linter: sqlfluff, migration lint, Squawk, pgspot, plpgsql_check."""
    from chorus_db.testing import running_test_cluster

    with running_test_cluster():
        for linter in LINTERS:
            linter(c)
