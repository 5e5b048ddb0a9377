"""docs/API.md, the API reference, against what the API really is: its generated tables are
rendered again from the live OpenAPI document (GET /api/ through nginx and PostgREST), the
route table and the database's rules, and must equal the file; its endpoint sections are
exactly the route table's routes and the document's operations; its error-code table lists
exactly the codes the SQL and nginx use. And no file of the project refers outside it."""

from __future__ import annotations

import difflib
import re
import subprocess

import pytest

from chorus_db import apidoc, config
from chorus_db.routes import ROUTES

DOC = apidoc.API_DOC.read_text()
# A path into the machine's shared folder next to the checkout, or an absolute path of this
# machine; split so this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + r"shared\b|/" + "work/")


@pytest.mark.http
def test_the_generated_tables_equal_what_the_live_openapi_document_and_the_rules_give(http, template_url):
    response = http.get("/api/")
    assert response.status_code == 200
    facts = apidoc.facts_from_database(template_url, openapi=response.json())
    expected = apidoc.render(DOC, facts)
    if expected != DOC:
        diff = "".join(difflib.unified_diff(DOC.splitlines(True), expected.splitlines(True), "docs/API.md", "rendered", n=1))
        pytest.fail("docs/API.md is out of date: run `invoke docs` and review the change\n" + diff[:4000])


@pytest.mark.http
def test_every_route_and_every_operation_has_its_section_and_nothing_else_does(http):
    document = http.get("/api/").json()
    sections = re.findall(r"^### (GET|POST) (\S+)$", DOC, re.M)
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = {(route.method, route.path) for route in ROUTES}
    assert len(sections) == len(set(sections)), "a section is written twice"
    assert set(sections) == routes
    assert operations == routes


def test_a_changed_rule_changes_the_rendered_reference(pg_cluster, template_url):
    """The check can fail: a rule the database uses, changed, shows in the rendered tables."""
    facts = apidoc.facts_from_database(template_url)
    facts.rate_limits = [(a, s, n + 1, w) for a, s, n, w in facts.rate_limits]
    facts.openapi["components"]["schemas"]["submit_lead_body"]["properties"]["email"]["maxLength"] = 99
    changed = apidoc.render(DOC, facts)
    assert changed != apidoc.render(DOC, apidoc.facts_from_database(template_url))
    assert "| `email` | string (email) | yes | 0 to 99 characters |" in changed


def test_the_error_code_table_lists_exactly_the_codes_the_sql_and_nginx_use():
    used = set()
    for folder in ("db/functions", "db/policies", "db/schema", "deploy/nginx"):
        for path in (config.ROOT / folder).iterdir():
            used |= set(re.findall(r"\bCH[A-Z]\d\d\b", path.read_text()))
    section = DOC.split("## Errors", 1)[1].split("\n## ", 1)[0]
    table = set()
    for line in section.splitlines():
        if line.startswith("| `CH"):
            table |= set(re.findall(r"CH[A-Z]\d\d", line.split("|")[1]))
    assert table == used


def test_the_readme_links_the_reference_and_no_committed_file_refers_outside_the_repo():
    readme = (config.ROOT / "README.md").read_text()
    assert "(docs/API.md)" in readme
    tracked = subprocess.run(["git", "ls-files"], cwd=config.ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        if name == ".ci/run":  # CI's machines carry the vendored tools there (README, "PostgREST")
            continue
        path = config.ROOT / name
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
