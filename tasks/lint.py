"""`invoke lint` (every linter) and its parts: sqlfluff, the migration lint, Squawk, pgspot,
plpgsql_check."""

from __future__ import annotations

from invoke import Exit

from ._helpers import echo, task


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
    problems = lint()
    for problem in problems:
        print(f"  {problem}")
    if problems:
        raise Exit(f"{len(problems)} migration lint problem(s): fix the files named above", code=1)
    print("  no problems")


@task
def squawk(c):
    """Squawk's lock-safety rules over db/schema (.squawk.toml says which and why)."""
    from chorus_db.sql_tools import run_squawk

    echo("squawk db/schema (lock safety of the migrations)")
    findings = run_squawk()
    for line in findings:
        print(f"  {line}")
    if findings:
        raise Exit(f"Squawk found {len(findings)} problem(s) in db/schema: fix the statements named above "
                   "(a new schema file; applied ones are frozen)", code=1)
    print("  no problems")


@task
def pgspot(c):
    """pgspot over db/: SECURITY DEFINER, CREATE OR REPLACE and IF NOT EXISTS hazards."""
    from chorus_db.sql_tools import run_pgspot

    echo("pgspot db/ (search_path and object-hijacking hazards)")
    findings = run_pgspot()
    for line in findings:
        print(f"  {line}")
    if findings:
        raise Exit(f"pgspot found {len(findings)} problem(s): fix the objects named above", code=1)
    print("  no problems")


@task
def plpgsql(c):
    """plpgsql_check on every PL/pgSQL function, trigger functions with their table."""
    from chorus_db.testing import build_template, run_plpgsql_check, running_test_cluster

    echo("plpgsql_check on a fresh build in the test cluster")
    with running_test_cluster() as cluster:
        build_template(cluster)
        findings = run_plpgsql_check(cluster)
    for fn, line, level, message, hint in findings:
        print(f"  {fn}:{line}: {level}: {message}" + (f" ({hint})" if hint else ""))
    if findings:
        raise Exit(f"plpgsql_check found {len(findings)} problem(s): fix the functions named above", code=1)
    print("  no problems")


LINTERS = (sql, migrations, squawk, pgspot, plpgsql)


@task(name="all", default=True)
def all_linters(c):
    """Every linter: sqlfluff, migration lint, Squawk, pgspot, plpgsql_check."""
    from chorus_db.testing import running_test_cluster

    with running_test_cluster():
        for linter in LINTERS:
            linter(c)
