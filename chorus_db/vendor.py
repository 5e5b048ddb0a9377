"""The test suite's own copy of PostgREST: the official static release tarball, kept outside the
repository in a directory named by CHORUS_VENDOR_DIR (CI sets it), checked against the SHA-256
file next to it, and unpacked once into a cache directory outside the checkout.

It is a test fixture, so that the HTTP suite runs on every machine CI uses; a user installs
PostgREST as the README's "PostgREST" section says. Neither the tarball nor the binary is ever
committed.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from pathlib import Path

from . import config
from .errors import UserError

POSTGREST_VERSION = "12.2.3"
POSTGREST_TARBALL = f"postgrest-v{POSTGREST_VERSION}-linux-static-x64.tar.xz"


class VendorError(UserError):
    """The vendored tarball is missing, altered or unreadable; the message says what to do."""


def cache_dir() -> Path:
    """Where unpacked tools live: CHORUS_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, never the checkout."""
    explicit = os.environ.get("CHORUS_CACHE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "chorus-website-db"
    path = path.resolve()
    if path == config.ROOT or config.ROOT in path.parents:
        raise VendorError(f"the cache directory {path} is inside the checkout: set CHORUS_CACHE_DIR to a directory outside it")
    return path


def unpacked_postgrest() -> Path:
    return cache_dir() / f"postgrest-v{POSTGREST_VERSION}" / "postgrest"


def _expected_sha256(vendor_dir: Path) -> str:
    sums = vendor_dir / f"{POSTGREST_TARBALL}.sha256"
    try:
        lines = sums.read_text().splitlines()
    except OSError:
        raise VendorError(f"{sums} is missing: the vendored PostgREST cannot be checked, so it is not used") from None
    for line in lines:
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == POSTGREST_TARBALL and len(digest) == 64:
            return digest.lower()
    raise VendorError(f"{sums} has no SHA-256 line for {POSTGREST_TARBALL}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_postgrest(vendor_dir: Path) -> Path:
    """Check the tarball in vendor_dir against its SHA-256 and unpack `postgrest` into the cache
    (once per tarball: the digest is kept next to the binary). Returns the binary's path."""
    tarball = vendor_dir / POSTGREST_TARBALL
    if not tarball.is_file():
        raise VendorError(f"{tarball} is missing: CHORUS_VENDOR_DIR must name the folder holding {POSTGREST_TARBALL}")
    expected = _expected_sha256(vendor_dir)
    actual = sha256_of(tarball)
    if actual != expected:
        raise VendorError(f"{tarball} does not match its SHA-256 file ({actual} instead of {expected}): replace it with the official release")
    binary = unpacked_postgrest()
    stamp = binary.with_name("postgrest.sha256")
    if binary.is_file() and os.access(binary, os.X_OK) and stamp.is_file() and stamp.read_text().strip() == actual:
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:xz") as archive:
        member = archive.getmember("postgrest")
        if not member.isfile():
            raise VendorError(f"{tarball} holds no regular file named postgrest")
        source = archive.extractfile(member)
        fd, tmp = tempfile.mkstemp(dir=binary.parent, prefix=".postgrest-")
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(block)
    os.chmod(tmp, 0o755)
    os.replace(tmp, binary)  # atomic: a concurrent run sees the old file or the whole new one
    stamp.write_text(actual + "\n")
    return binary


def vendored_postgrest() -> Path | None:
    """The vendored PostgREST: unpacked from CHORUS_VENDOR_DIR when set, else the copy a previous
    run unpacked (its digest was checked then). None when neither exists."""
    vendor_dir = os.environ.get("CHORUS_VENDOR_DIR")
    if vendor_dir:
        return unpack_postgrest(Path(vendor_dir))
    binary = unpacked_postgrest()
    if binary.is_file() and os.access(binary, os.X_OK) and binary.with_name("postgrest.sha256").is_file():
        return binary
    return None


def main() -> int:
    """`python -m chorus_db.vendor`: unpack the vendored PostgREST and print its path (.ci/run)."""
    import sys

    try:
        binary = vendored_postgrest()
    except VendorError as exc:
        print(exc, file=sys.stderr)
        return 1
    if binary is None:
        print("no vendored PostgREST: set CHORUS_VENDOR_DIR to the folder holding " + POSTGREST_TARBALL, file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
