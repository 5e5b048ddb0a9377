"""Tasks of the lead-capture backend: `invoke --list` shows them all.

One module per collection, each loaded with invoke's Collection.from_module:

* stack.py: `up` and `down`, at the top level (the local stack: cluster, PostgREST, nginx);
* db.py: `db.*`, the cluster and the database (up, build, status, psql, backup, restore,
  retention, authenticator-password);
* api.py: `api.*`, API keys;
* gdpr.py: `gdpr.*`, the consent audit and personal data;
* lint.py: `lint.*` (default: every linter); test.py: `test.*` (default: every check CI runs);
* bench.py: `bench` (the benchmarks).

_helpers.py holds what they share. Tasks only parse, print and ask: the logic lives in chorus_db.
Each task echoes what it runs and ends a failure with one sentence and exit status 1.
"""

from __future__ import annotations

import os

from invoke import Collection

from . import api, bench, db, gdpr, lint, stack, test

os.environ.setdefault("PYTHONUNBUFFERED", "1")

ns = Collection.from_module(stack)
for module in (db, api, gdpr, lint, test, bench):
    ns.add_collection(Collection.from_module(module))
