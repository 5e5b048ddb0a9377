"""deploy/postgrest/postgrest.conf as the vendored PostgREST 12.2.3 reads it (`--dump-config`):
every setting the file writes is one PostgREST knows and takes with the file's value (a misspelt
key would be ignored without a word), and the pool keeps its warm connections."""

from __future__ import annotations

import os
import subprocess

import pytest

from chorus_db import stack


def _dumped() -> dict[str, str]:
    binary = stack.find_postgrest()
    if binary is None:
        pytest.fail("PostgREST not found: set POSTGREST_BIN (CI unpacks the vendored copy)")
    # The secrets come from the environment (as for `invoke up`); --dump-config connects to nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRST_")}
    env.update(PGRST_DB_URI="postgresql://authenticator@127.0.0.1:1/none", PGRST_JWT_SECRET="j" * 48)
    proc = subprocess.run([str(binary), "--dump-config", str(stack.POSTGREST_CONF)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    dumped = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            value = value.strip()
            value = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
            # jwt-role-claim-key comes back as its parsed path, each key quoted: ."name" for .name.
            dumped[key.strip()] = value.replace('\\"', "")
    return dumped


def test_postgrest_takes_every_setting_of_postgrest_conf_with_its_value():
    dumped = _dumped()
    for key, value in stack.read_postgrest_conf().items():
        assert key in dumped, f"PostgREST 12.2.3 has no setting {key!r}"
        assert dumped[key] == value, f"{key}: PostgREST reads {dumped[key]!r}, postgrest.conf says {value!r}"


def test_pooled_connections_are_not_closed_for_idling_before_their_lifetime_ends():
    # A new connection costs the database some 22 warm submissions (postgrest.conf's comment):
    # PostgREST's default closes one after 30 s idle.
    dumped = _dumped()
    assert int(dumped["db-pool-max-idletime"]) >= int(dumped["db-pool-max-lifetime"])
