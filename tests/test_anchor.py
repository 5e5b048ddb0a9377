"""Anchors of the consent audit (issue 14): `invoke gdpr.anchor` and `gdpr.verify --anchor`
catch what the hash chains alone cannot: a person's newest rows deleted, a chain removed, a
row rewritten with its hash recomputed; an edited anchor or a wrong key is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chorus_db import anchor, config

KEY = b"k" * 40
LEAD = {"firstName": "Ada", "lastName": "Lovelace", "gdprConsent": True}


def submit(api, email: str) -> None:
    assert api.post("/api/leads", {**LEAD, "email": email}).status == 201


def behind_the_audits_back(db, statement: str, params: tuple = ()) -> None:
    """What an attacker with superuser rights does: switch the guard off, change, switch it on."""
    db.execute("alter table app.consent_audit disable trigger consent_audit_append_only")
    db.execute(statement, params)
    db.execute("alter table app.consent_audit enable always trigger consent_audit_append_only")


def chains_intact(db) -> bool:
    return db.execute("select count(*) from app_logic.verify_consent_chain()").fetchone()[0] == 0


@pytest.fixture
def anchored(api, db, db_url, tmp_path):
    submit(api, "ada@example.org")
    submit(api, "bob@example.org")
    submit(api, "ada@example.org")  # ada's chain: 4 rows
    path = tmp_path / "anchor.json"
    document = anchor.write_anchor(db_url, path, KEY)
    return path, document


def test_an_untouched_database_verifies_against_its_anchor_and_new_rows_are_fine(api, db_url, anchored):
    path, document = anchored
    assert document["subjects"] == 2 and len(document["root"]) == 64
    submit(api, "bob@example.org")
    report = anchor.verify_against(db_url, path, KEY)
    assert report.intact and report.checked == 2


def test_a_deleted_newest_row_passes_the_chain_check_but_not_the_anchor(db, db_url, anchored):
    path, _ = anchored
    behind_the_audits_back(
        db,
        "delete from app.consent_audit where id = (select max(id) from app.consent_audit"
        " where subject = app_logic.person_pseudonym('ada@example.org'))",
    )
    assert chains_intact(db)  # the chain alone cannot see it
    report = anchor.verify_against(db_url, path, KEY)
    assert not report.intact
    (problem,) = report.problems
    assert "truncated: the chain ends at seq 3, the anchor saw seq 4" in problem


def test_a_removed_chain_is_caught(db, db_url, anchored):
    path, _ = anchored
    behind_the_audits_back(
        db, "delete from app.consent_audit where subject = app_logic.person_pseudonym('bob@example.org')"
    )
    assert chains_intact(db)
    (problem,) = anchor.verify_against(db_url, path, KEY).problems
    assert "the whole chain (anchored at seq 2) was removed" in problem


def test_a_rewritten_chain_with_recomputed_hashes_is_caught(db, db_url, anchored):
    path, _ = anchored
    # Rewrite bob's marketing row and recompute both hashes so the chain verifies again.
    behind_the_audits_back(
        db,
        """
        with target as (
            select * from app.consent_audit
            where subject = app_logic.person_pseudonym('bob@example.org') and seq = 2
        )
        update app.consent_audit as a set granted = true, row_hash = app_logic.consent_row_hash(
            t.subject, t.seq, t.event, t.consent_type, true, t.source, t.ip_hash, t.user_agent,
            t.consent_text_version, t.recorded_at, t.prev_hash, t.submission_id
        )
        from target as t where a.id = t.id
        """,
    )
    assert chains_intact(db)
    (problem,) = anchor.verify_against(db_url, path, KEY).problems
    assert "rewritten: seq 2 no longer has the anchored hash" in problem


def test_an_edited_anchor_or_another_key_is_refused(db_url, anchored):
    path, document = anchored
    with pytest.raises(anchor.AnchorError, match="signature"):
        anchor.verify_against(db_url, path, b"x" * 40)
    document.pop("path", None)
    document["heads"] = document["heads"][:1]
    path.write_text(json.dumps(document))
    with pytest.raises(anchor.AnchorError, match="signature"):
        anchor.verify_against(db_url, path, KEY)


def test_the_anchor_holds_only_pseudonyms_and_hashes(db_url, anchored):
    path, _ = anchored
    text = path.read_text()
    assert "example.org" not in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _invoke(args, env):
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_tasks_catch_a_deleted_newest_row_and_say_what_to_do(api, db, db_url, tmp_path):
    submit(api, "ada@example.org")
    env = {**os.environ, "DATABASE_URL": db_url, "CHORUS_ANCHOR_KEY": KEY.decode()}
    out = tmp_path / "a.json"
    written = _invoke(["gdpr.anchor", "--out", str(out)], env)
    assert written.returncode == 0, written.stderr
    assert _invoke(["gdpr.verify", "--anchor", str(out)], env).returncode == 0
    behind_the_audits_back(db, "delete from app.consent_audit where id = (select max(id) from app.consent_audit)")
    caught = _invoke(["gdpr.verify", "--anchor", str(out)], env)
    assert caught.returncode == 1
    assert "truncated" in caught.stdout and "Traceback" not in caught.stderr
    assert "restore the named chains" in caught.stderr


def test_without_a_key_the_task_says_how_to_make_one(db_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_ANCHOR_KEY")}
    result = _invoke(["gdpr.anchor", "--out", str(tmp_path / "a.json")], {**env, "DATABASE_URL": db_url})
    assert result.returncode == 1 and "CHORUS_ANCHOR_KEY" in result.stderr and "Traceback" not in result.stderr
