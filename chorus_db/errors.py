"""The failures a user can fix. Their message is one sentence saying what to do; the task layer
(tasks/_helpers.py) prints it and exits 1, without a traceback."""

from __future__ import annotations


class UserError(RuntimeError):
    """A failure the user can fix; str() is the sentence to print."""


# The Debian package of each extension the project uses (PostgreSQL 15).
EXTENSION_PACKAGES = {
    "pgcrypto": "postgresql-contrib",
    "pg_cron": "postgresql-15-cron",
    "pgtap": "postgresql-15-pgtap",
    "plpgsql_check": "postgresql-15-plpgsql-check",
}


def missing_extension(message: str) -> str | None:
    """The sentence for PostgreSQL's "extension X is not available" / "could not open extension
    control file .../X.control", or None for any other message."""
    import re

    match = re.search(r'extension "([^"]+)" is not available|extension/([^/"]+)\.control', message)
    if not match:
        return None
    name = match.group(1) or match.group(2)
    package = EXTENSION_PACKAGES.get(name, f"the package that provides {name}")
    return (
        f"the PostgreSQL server lacks the extension {name}: install {package} where it runs "
        "(`bash .ci/run` installs every package the project needs on Debian 12)"
    )
