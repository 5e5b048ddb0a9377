"""`invoke bench --only audit`: what the brand audit log (db/functions/320-brand-audit.sql) costs
per write: POST /api/brand-engagement as PostgREST runs it, with the audit trigger on and off,
measured in alternation (the same database, the same rows stored either way)."""

from __future__ import annotations

import psycopg

from ..cluster import Cluster
from .common import BENCH_DB, BENCH_DIR, Check, Report, Subject, alternate

CLIENTS_NOTE = "pgbench, 16 clients, prepared statements"
ENGAGEMENT = Check("app.brand_engagement", "select count(*) from app.brand_engagement")
AUDIT_ON = "alter table app.brand_engagement enable trigger brand_audit"
AUDIT_OFF = "alter table app.brand_engagement disable trigger brand_audit"


def audit_cost(report: Report, cluster: Cluster, seconds: int, rounds: int) -> None:
    print(f"Brand audit log ({CLIENTS_NOTE})")
    script = BENCH_DIR / "brand_engagement_api.sql"
    try:
        m = alternate(
            report, cluster,
            [
                Subject("engagement post (audit log on)", script, "authenticator", AUDIT_ON, (ENGAGEMENT,)),
                Subject("engagement post (audit log off)", script, "authenticator", AUDIT_OFF, (ENGAGEMENT,)),
            ],
            rounds, seconds,
        )
    finally:
        with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
            conn.execute(AUDIT_ON)
    on, off = m["engagement post (audit log on)"]["tps"], m["engagement post (audit log off)"]["tps"]
    report.ratios["brand audit log on / off (engagement posts)"] = on / off
    report.notes.append(
        f"The brand audit log keeps {on / off:.2f} of the engagement posts per second it would have without it: "
        "one more row per write (the changed columns with their values, the actor) from a row trigger."
    )
