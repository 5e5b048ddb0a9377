"""Tasks of the lead-capture backend: `invoke --list` shows them all.

One module per collection, each loaded with invoke's Collection.from_module:

* stack.py: `up` and `down`, at the top level (the local stack: cluster, PostgREST, nginx);
* db.py: `db.*`, the cluster and the database (up, build, status, psql, backup, restore,
  retention, authenticator-password);
* api.py: `api.*`, API keys;
* gdpr.py: `gdpr.*`, the consent audit (verify, anchor) and personal data;
* mail.py: `mail.worker`, delivering the outbox;
* lint.py: `lint.*` (default: every linter); test.py: `test.*` (default: every check CI runs);
* bench.py: `bench` (the benchmarks); docs.py: `docs` (the generated tables of docs/API.md);
* web.py: `web.*`, the pages under /dashboard/ and /form/ and the TypeScript client;
* ops.py: operations tasks added to `db` (promote, replica, recover, pitr.*).

_helpers.py holds what they share. Tasks only parse, print and ask: the logic lives in chorus_db.
Each task echoes what it runs and ends a failure with one sentence and exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Collection

# invoke puts this package's own folder on sys.path; the checkout's root must come first instead,
# so `chorus_db` is this checkout's (not an installed copy of another one) and no task module
# shadows a top-level module of the same name (test, docs).
_TASKS_DIR = str(Path(__file__).resolve().parent)
_ROOT = str(Path(__file__).resolve().parent.parent)
sys.path[:] = [_ROOT] + [p for p in sys.path if p not in (_ROOT, _TASKS_DIR)]

from . import api, bench, db, docs, gdpr, lint, mail, ops, stack, test, web  # noqa: E402

os.environ.setdefault("PYTHONUNBUFFERED", "1")

ns = Collection.from_module(stack)
for module in (db, api, gdpr, mail, lint, test, bench, docs, web):
    ns.add_collection(Collection.from_module(module))
# Operations (ops.py): db.promote, db.replica, db.recover, db.pitr.*.
ops.register(ns)
