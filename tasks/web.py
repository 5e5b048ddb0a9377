"""`invoke web.*`: the pages under /dashboard/ and /form/ (web/) and the TypeScript client."""

from __future__ import annotations

from chorus_db import config

from ._helpers import echo, task


@task
def build(c):
    """Install web/'s pinned npm packages (npm ci, when package-lock.json changed) and vendor the pages' libraries."""
    from chorus_db.web import build as build_pages

    build_pages(log=echo)


@task(help={"url": "where to read the OpenAPI document: a URL or a file (default: GET /api/ of `invoke up`'s stack)"})
def client(c, url=""):
    """Generate the TypeScript client (web/client/generated/api.d.ts) from GET /api/ and compile it with tsc."""
    from chorus_db.web import generate_client

    path = generate_client(url or f"http://127.0.0.1:{config.API_PORT}/api/", log=echo)
    echo(f"the client compiles: {path.relative_to(config.ROOT)}")
