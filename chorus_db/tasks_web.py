"""Tasks of the pages (web/): `invoke web.build` (which `invoke up` runs) and `invoke web.client`."""

from __future__ import annotations

from invoke import Collection, Exit, task

from . import config


def _echo(message: str) -> None:
    print(f"» {message}", flush=True)


@task
def build(c):
    """Install web/'s pinned npm packages (npm ci) if needed and vendor the pages' libraries."""
    from .web import WebError, build as build_pages

    try:
        build_pages(log=_echo)
    except WebError as exc:
        raise Exit(str(exc), code=1)


@task(help={"url": "where to read the OpenAPI document (default: GET /api/ of `invoke up`'s stack)"})
def client(c, url=""):
    """Generate the TypeScript client (web/client/generated/api.d.ts) from GET /api/ and compile it with tsc."""
    from .web import WebError, generate_client

    source = url or f"http://127.0.0.1:{config.API_PORT}/api/"
    try:
        path = generate_client(source, log=_echo)
    except WebError as exc:
        raise Exit(f"{exc}\n(Is the stack up? `invoke up` serves GET /api/.)" if not url else str(exc), code=1)
    _echo(f"the client compiles: {path.relative_to(config.ROOT)}")


def register(ns) -> None:
    web = Collection("web")
    web.add_task(build, "build")
    web.add_task(client, "client")
    ns.add_collection(web)
