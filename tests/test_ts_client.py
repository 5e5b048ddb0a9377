"""The TypeScript client (issue 17): openapi-typescript (npm) generates types from GET /api/ as
served through nginx, and tsc compiles web/client/client.ts against them, so the OpenAPI
document is good enough for a client generator. Skipped with the reason where npm is missing,
never under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from chorus_db import web

pytestmark = [pytest.mark.http, pytest.mark.slow]


@pytest.fixture(scope="module")
def npm_ready():
    if web.npm() is None or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(web.NPM_MISSING)
        pytest.skip(web.NPM_MISSING)
    web.install(log=lambda _m: None)


@pytest.fixture(scope="module")
def generated(npm_ready, http, tmp_path_factory):
    """GET /api/ -> openapi-typescript -> tsc -p web/client (raises if it does not compile)."""
    response = http.get("/api/")
    assert response.status_code == 200
    document = tmp_path_factory.mktemp("openapi") / "openapi.json"
    document.write_bytes(response.content)
    return response.json(), web.generate_client(str(document), log=lambda _m: None)


def test_the_client_generated_from_get_api_compiles_with_tsc(generated):
    document, path = generated
    types = path.read_text()
    # Every public path the stack serves is a typed path of the client.
    for public_path in document["paths"]:
        assert f'"{public_path}": {{' in types, public_path
    assert '"protanopia"' in types  # enums survive, so client.ts's @ts-expect-error holds


def test_tsc_refuses_a_call_the_document_does_not_describe(generated):
    wrong = web.CLIENT_DIR / "wrong.check.ts"
    wrong.write_text(
        'import type { paths } from "./generated/api";\n'
        'export const body: paths["/api/leads"]["post"]["requestBody"]["content"]["application/json"] =\n'
        '    { firstName: "A", lastName: "B", email: "a@example.com", gdprConsent: true, colour: "red" };\n'
    )
    try:
        proc = subprocess.run(
            [str(web.bin_path("tsc")), "--noEmit", "--strict", "--skipLibCheck", "--target", "ES2022",
             "--module", "ES2022", "--moduleResolution", "bundler", str(wrong)],
            cwd=web.CLIENT_DIR, capture_output=True, text=True,
        )
    finally:
        wrong.unlink()
    assert proc.returncode != 0
    assert "colour" in proc.stdout
