"""Tasks of the lead-capture backend: `invoke --list` shows them all.

One module per collection, each loaded with invoke's Collection.from_module:

* stack.py: `up` and `down`, at the top level (the local stack: cluster, PostgREST, nginx);
* db.py: `db.*`, the cluster and the database (up, build, status, psql, backup, restore,
  retention, authenticator-password);
* api.py: `api.*`, API keys;
* gdpr.py: `gdpr.*`, the consent audit and personal data;
* lint.py: `lint.*` (default: every linter); test.py: `test.*` (default: every check CI runs);
* bench.py: `bench` (the benchmarks);
* ops.py: operations tasks added to `db` (promote, replica, recover, pitr.*).

_helpers.py holds what they share. Tasks only parse, print and ask: the logic lives in chorus_db.
Each task echoes what it runs and ends a failure with one sentence and exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Collection

# This checkout's chorus_db, not another one's: invoke puts tasks/ on sys.path, not the checkout,
# so without this `chorus_db` would come from wherever `pip install -e` pointed (another worktree).
_ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)

from . import api, bench, db, gdpr, lint, ops, stack, test

os.environ.setdefault("PYTHONUNBUFFERED", "1")

ns = Collection.from_module(stack)
for module in (db, api, gdpr, lint, test, bench):
    ns.add_collection(Collection.from_module(module))
# Operations (ops.py): db.promote, db.replica, db.recover, db.pitr.*.
ops.register(ns)
