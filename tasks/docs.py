"""`invoke docs`: rewrite the generated tables of docs/API.md from a fresh build of the source."""

from __future__ import annotations

from ._helpers import echo, task


@task(name="api", default=True)
def api_reference(c):
    """Rewrite the generated blocks of docs/API.md (routes, endpoints, rate limits, limits) from a fresh build."""
    from chorus_db import apidoc, testing

    echo("building the source into the test cluster's template for docs/API.md")
    with testing.running_test_cluster() as cluster:
        url = testing.build_template(cluster)
        changed = apidoc.write(apidoc.facts_from_database(url))
    echo(("rewrote " if changed else "already up to date: ") + str(apidoc.API_DOC.relative_to(apidoc.config.ROOT)))
