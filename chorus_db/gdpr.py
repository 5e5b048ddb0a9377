"""Data protection for the operator: the consent audit's verification, export and erasure of
one person, and the retention schedule. The SQL does the work (db/functions/080-retention.sql,
085-gdpr.sql); this module only calls it, so `invoke gdpr.*` and the admin endpoints
cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .errors import UserError

# Recorded as the source of the consent-audit erasure row when the operator erases by CLI.
CLI_SOURCE = "operator_cli"


@dataclass
class ChainReport:
    rows: int
    subjects: int
    broken: tuple[int, str, int, str] | None  # id, subject, seq, reason of the first broken row

    @property
    def intact(self) -> bool:
        return self.broken is None

    def describe(self) -> str:
        if self.broken is None:
            return f"consent audit intact: {self.rows} row(s) of {self.subjects} subject(s) verified"
        row_id, subject, seq, reason = self.broken
        return f"consent audit BROKEN at row id {row_id} (subject {subject}, seq {seq}): {reason}"


def verify_chain(url: str) -> ChainReport:
    """Walk the consent audit's hash chains; the first broken row, if any."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        # One snapshot for the count and the walk.
        conn.execute("set transaction isolation level repeatable read, read only")
        rows, subjects = conn.execute(
            "select count(*), count(distinct subject) from app.consent_audit"
        ).fetchone()
        broken = conn.execute("select id, subject, seq, reason from app_logic.verify_consent_chain()").fetchone()
    return ChainReport(rows=rows, subjects=subjects, broken=tuple(broken) if broken else None)


class InvalidRequest(UserError, ValueError):
    """The input breaks the endpoint's rule; the message names the field."""


def _check(conn: psycopg.Connection, rule_function: str, body: dict[str, Any]) -> None:
    (problems,) = conn.execute(
        f"select app_logic.validate(%s, app_logic.{rule_function}())", (Jsonb(body),)
    ).fetchone()
    if problems:
        raise InvalidRequest(" ".join(p["message"] for p in problems))


def export(url: str, email: str) -> dict | None:
    """Everything held about the person with that email (any case); None when nothing is."""
    with psycopg.connect(url, autocommit=True) as conn:
        _check(conn, "export_personal_data_rule", {"email": email})
        (document,) = conn.execute("select app_logic.export_personal_data(%s)", (email.strip(),)).fetchone()
    return document


def erase(url: str, email: str, source: str = CLI_SOURCE) -> dict[str, int]:
    """Erase the person's personal data everywhere; rows removed per kind."""
    with psycopg.connect(url, autocommit=True) as conn:
        _check(conn, "erase_personal_data_rule", {"email": email})
        with conn.transaction():
            (removed,) = conn.execute(
                "select app_logic.erase_personal_data(%s, %s)", (email.strip(), source)
            ).fetchone()
    return removed


def held_summary(document: dict | None) -> dict[str, int]:
    """How many rows of each kind an export document holds (for the erasure prompt)."""
    if not document:
        return {}
    summary = {"leads": 1 if document.get("lead") else 0}
    for key, value in document.items():
        if isinstance(value, list):
            summary[key] = len(value)
    return summary


def retention_rules(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select kind, keep_for::text, enabled, condition from app.retention_rules order by kind"
        ).fetchall()


def retention_runs(url: str, limit: int = 20) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            """
            select started_at, kind, rows_removed, partitions_dropped, duration, complete, error
            from app.retention_runs order by id desc limit %s
            """,
            (limit,),
        ).fetchall()


def apply_retention(url: str, kind: str | None = None, batch_rows: int = 50_000, on_batch=None) -> None:
    """What the daily pg_cron job does: every rule (or one kind), in committed batches.
    on_batch(line) gets the procedure's line for each batch as it is done."""
    with psycopg.connect(url, autocommit=True) as conn:
        if on_batch is not None:
            conn.add_notice_handler(
                lambda diag: on_batch(diag.message_primary) if (diag.message_primary or "").startswith("retention: ") else None
            )
        conn.execute("call app_logic.run_retention(%s, %s)", (kind, batch_rows))
