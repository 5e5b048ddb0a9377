"""The pages under /dashboard/ and /form/ (web/): installing their npm packages with `npm ci`,
vendoring the browser libraries into web/public/vendor (web/build.mjs), and the TypeScript
client generated from the OpenAPI document (web/client).

`invoke up` and the browser tests call `build()`; nothing here is needed for the API itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from . import config
from .errors import UserError

WEB_DIR = config.WEB_DIR
NODE_MODULES = WEB_DIR / "node_modules"
LOCKFILE = WEB_DIR / "package-lock.json"
# The hash of the package-lock.json that node_modules was installed from: `npm ci` runs again
# only when the lock file changed (it deletes node_modules first, so it is not free).
STAMP = NODE_MODULES / ".chorus-lock-sha256"
VENDOR = config.WEB_ROOT / "vendor"
CLIENT_DIR = WEB_DIR / "client"
GENERATED_CLIENT = CLIENT_DIR / "generated" / "api.d.ts"


class WebError(UserError):
    """A failure a user can act on; the message is one sentence saying what to do."""


def npm() -> str | None:
    return shutil.which("npm")


NPM_MISSING = "npm was not found: install Node.js 18 or newer with npm (`apt-get install nodejs npm`), then run `invoke web.build`."


def _run(argv: list[str], what: str, cwd: Path = WEB_DIR) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        # The tool's own words go to stdout; the failure itself is one sentence.
        for line in (proc.stdout + proc.stderr).strip()[-3000:].splitlines():
            print(f"  {line}", flush=True)
        raise WebError(f"{what} failed (exit {proc.returncode}): fix what its output above names, then run it again")
    return proc.stdout


def lock_hash() -> str:
    return hashlib.sha256(LOCKFILE.read_bytes()).hexdigest()


def installed() -> bool:
    return STAMP.exists() and STAMP.read_text().strip() == lock_hash()


# Held while npm ci or build.mjs runs: two builds at once (parallel pytest workers, `invoke up`
# beside a test) would have npm ci delete node_modules under the other.
LOCK = WEB_DIR / ".build.lock"


@contextlib.contextmanager
def _locked():
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(log: Callable[[str], None] = print) -> bool:
    """`npm ci` unless node_modules matches package-lock.json; True when it ran."""
    with _locked():
        return _install(log)


def _install(log: Callable[[str], None]) -> bool:
    if installed():
        return False
    tool = npm()
    if tool is None:
        raise WebError(NPM_MISSING)
    log("npm ci (web/package-lock.json)")
    _run([tool, "ci", "--no-audit", "--no-fund", "--loglevel=error"], "npm ci in web/")
    STAMP.write_text(lock_hash() + "\n")
    return True


def build(log: Callable[[str], None] = print) -> Path:
    """Install the pinned packages if needed and vendor the browser libraries; returns web/public."""
    with _locked():
        _install(log)
        node = shutil.which("node")
        if node is None:
            raise WebError(NPM_MISSING)
        _run([node, "build.mjs"], "web/build.mjs")
    log(f"pages built: {config.WEB_ROOT} (vendored libraries in {VENDOR.relative_to(config.ROOT)})")
    return config.WEB_ROOT


def bin_path(name: str) -> Path:
    """A command-line tool of an installed npm package (node_modules/.bin)."""
    return NODE_MODULES / ".bin" / name


def generate_client(openapi_source: str, log: Callable[[str], None] = print) -> Path:
    """Generate web/client/generated/api.d.ts from an OpenAPI document (a URL or a file) with
    openapi-typescript, then compile web/client with tsc; returns the generated file."""
    install(log)
    GENERATED_CLIENT.parent.mkdir(parents=True, exist_ok=True)
    log(f"openapi-typescript {openapi_source}")
    _run([str(bin_path("openapi-typescript")), openapi_source, "--output", str(GENERATED_CLIENT)], "openapi-typescript")
    log("tsc -p web/client")
    _run([str(bin_path("tsc")), "-p", str(CLIENT_DIR)], "tsc (the TypeScript client did not compile)")
    return GENERATED_CLIENT
