"""Retention at scale in `invoke bench`: 1M expired + 1M live engagement rows and a 10M-row
page-view month (100k each and 1M with --quick), the retention job run on them as pg_cron runs
it, and lead submissions' latency at a fixed rate while it runs against their latency without it.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ..cluster import Cluster
from ..errors import UserError
from . import progress
from .common import BENCH_DB, BENCH_DIR, LIMITS_ON, Report, Run, loadavg, parse_pgbench, percentiles, pgbench_raw

RETENTION_RATE = 200  # lead submissions per second offered while measuring latency (well below capacity)
RETENTION_CLIENTS = 8
# At least this many submissions on each side (goal 4): one window at 200/s is 2,000.
MIN_SAMPLES = 2000
# The job runs for at most this long (run_retention's time limit), then a quiet window as long.
WINDOW_SECONDS = 10
# A transaction that ends this close to a change of side counts for neither.
GUARD_SECONDS = 0.5
# How long after the job a vacuum of what it emptied is waited for.
AFTERMATH_MAX_SECONDS = 180
# pgbench runs in stretches this long, back to back, while the windows alternate.
STRETCH_SECONDS = 20
# What a variant of the job (`invoke bench --retention-variants`) may set: run_retention's knobs
# (sync_commit=1: p_synchronous_commit, each batch's commit waits for its own WAL flush) ...
VARIANT_PARAMETERS = {"batch_rows": "p_batch_rows => %s::integer", "pause_ratio": "p_pause_ratio => %s::numeric",
                      "wal_rate": "p_wal_rate => %s::bigint", "batch_wal": "p_batch_wal => %s::bigint",
                      "sync_commit": "p_synchronous_commit => %s::boolean"}
# ... and the WAL writer's server settings, which decide how much of the job's WAL is still
# unflushed when a request commits (issue 13, session 11). Only these: both take effect on a
# reload (SIGHUP, checked against pg_settings before any is set), so a variant sets them with
# ALTER SYSTEM for its retention windows and the quiet window before each, and the bench resets
# them after (and before, after an interrupted run).
VARIANT_SETTINGS = ("wal_writer_delay", "wal_writer_flush_after")
# A setting's value: a whole number with an optional unit (PostgreSQL checks the rest).
_SETTING_VALUE = re.compile(r"[0-9]+(us|ms|s|min|h|d|B|kB|MB|GB)?")

Variant = dict[str, "float | bool | str"]


def parse_variants(text: str) -> list[Variant]:
    """Variants of the job to alternate, separated by "|", each "name=value,..." of
    VARIANT_PARAMETERS or VARIANT_SETTINGS ("" or "default": run_retention's defaults, the
    server's settings)."""
    variants = []
    for part in text.split("|"):
        variant: Variant = {}
        for item in part.split(","):
            item = item.strip()
            if not item or item == "default":
                continue
            name, _, value = (x.strip() for x in item.partition("="))
            if name in VARIANT_SETTINGS:
                if not _SETTING_VALUE.fullmatch(value):
                    raise UserError(f"the retention variant's {name} must be a whole number with an optional unit "
                                    f"(e.g. 10ms, 128kB), not {value!r}")
                variant[name] = value
                continue
            if name not in VARIANT_PARAMETERS:
                raise UserError(f"a retention variant sets {', '.join([*VARIANT_PARAMETERS, *VARIANT_SETTINGS])}, "
                                f'not {name!r}: write e.g. "default|batch_rows=500,wal_rate=4000000|sync_commit=1"')
            try:
                number = float(value)
            except ValueError:
                raise UserError(f"the retention variant's {name} must be a number, not {value!r}") from None
            if name == "sync_commit":
                if number not in (0, 1):
                    raise UserError(f"the retention variant's sync_commit is 1 (on) or 0 (off), not {value!r}")
                variant[name] = number == 1
            else:
                variant[name] = number
        variants.append(variant)
    return variants


def variant_name(variant: Variant) -> str:
    return ",".join(f"{k}={v if isinstance(v, str) else format(v, 'g')}" for k, v in variant.items()) or "default"


def _job_call(variant: Variant) -> str:
    """The CALL of run_retention for one variant (names from VARIANT_PARAMETERS only, values as
    parameters: _job_values)."""
    return "call app_logic.run_retention(p_max_seconds => %s" + "".join(
        f", {VARIANT_PARAMETERS[k]}" for k in variant if k in VARIANT_PARAMETERS) + ")"


def _job_values(variant: Variant) -> list:
    return [v for k, v in variant.items() if k in VARIANT_PARAMETERS]


def _server_settings(variant: Variant) -> dict[str, str]:
    return {k: str(v) for k, v in variant.items() if k in VARIANT_SETTINGS}


def apply_server_settings(conn: psycopg.Connection, settings: dict[str, str], wait_seconds: float = 10.0) -> None:
    """Set these of VARIANT_SETTINGS (ALTER SYSTEM), reset the others to the cluster's own, reload,
    and wait until the server reads them from the file ALTER SYSTEM writes (the WAL writer rereads
    its configuration on the same signal)."""
    unknown = set(settings) - set(VARIANT_SETTINGS)
    if unknown:
        raise ValueError(f"not a variant setting: {', '.join(sorted(unknown))}")
    (not_reloadable,) = conn.execute(
        "select array_agg(name order by name) from pg_settings where name = any(%s) and context <> 'sighup'",
        (list(VARIANT_SETTINGS),),
    ).fetchone()
    if not_reloadable:
        raise RuntimeError(f"{', '.join(not_reloadable)} no longer take(s) effect on a reload: the bench cannot vary it")
    for name in VARIANT_SETTINGS:
        if name in settings:
            conn.execute(sql.SQL("alter system set {} = {}").format(sql.Identifier(name), sql.Literal(settings[name])))
        else:
            conn.execute(sql.SQL("alter system reset {}").format(sql.Identifier(name)))
    conn.execute("select pg_reload_conf()")
    deadline = time.monotonic() + wait_seconds
    while True:
        # Read from postgresql.auto.conf exactly where a value is set (and not where it is reset).
        (waiting,) = conn.execute(
            "select count(*) from pg_settings where name = any(%s) "
            "and coalesce(sourcefile like '%%postgresql.auto.conf', false) <> (name = any(%s))",
            (list(VARIANT_SETTINGS), list(settings)),
        ).fetchone()
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not take the settings {settings or 'reset'} within {wait_seconds:g} s")
        time.sleep(0.05)
    time.sleep(0.2)  # the WAL writer, signalled with this session, has reread its configuration too


def _generate(url: str, label: str, statements: list[tuple[str, int]]) -> None:
    """Run generation statements (each with the rows it makes) two at a time in parallel sessions
    (2 cores: two is the useful most), showing the rows made so far."""
    errors: list[BaseException] = []
    total = sum(n for _, n in statements)

    def worker(sql: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                # Generation only: the measured part runs with the cluster's settings.
                conn.execute("set synchronous_commit = off")
                conn.execute(sql)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    with progress.step(label, total, "rows") as shown:
        for i in range(0, len(statements), 2):
            pair = statements[i:i + 2]
            threads = [threading.Thread(target=worker, args=(sql,)) for sql, _ in pair]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            shown.advance(sum(n for _, n in pair))


class _Submissions:
    """Lead submissions at the fixed rate in back-to-back pgbench stretches until stopped; every
    transaction's latency (from its scheduled start) and completion time."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.rows: list[tuple[float, float]] = []
        self.failed = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                stdout, stderr, rows = pgbench_raw(self.cluster, BENCH_DIR / "submit_lead.sql", clients=RETENTION_CLIENTS,
                                                   seconds=STRETCH_SECONDS, user="authenticator", rate=RETENTION_RATE)
                self.failed += parse_pgbench(stdout, stderr)[2]
                self.rows += rows
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _VacuumMonitor:
    """Which tables a vacuum (auto or not) works on, and what the submissions' backends wait for
    (pg_stat_activity's wait event, "CPU" for none), sampled every 0.1 s."""

    def __init__(self, url: str, job_pid: int = 0) -> None:
        self.url = url
        self.job_pid = job_pid  # the session that calls run_retention: its waits are "job ..."
        self.samples: list[tuple[float, str]] = []
        # (time, wait) of the submissions; "walwriter WAIT" and "job WAIT" for the WAL writer and the job.
        self.waits: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                now = time.time()
                for (table,) in conn.execute(
                    "select c.relname from pg_stat_progress_vacuum as v join pg_class as c on c.oid = v.relid "
                    "where v.datname = current_database()"
                ):
                    self.samples.append((now, table))
                for who, wait in conn.execute(
                    "select case when backend_type = 'walwriter' then 'walwriter' "
                    "when usename = 'authenticator' then 'submissions' else 'job' end, "
                    "coalesce(wait_event_type || ':' || wait_event, 'CPU') from pg_stat_activity "
                    "where (usename = 'authenticator' and state = 'active' and datname = current_database()) "
                    "or backend_type = 'walwriter' or (pid = %s and state = 'active')",
                    (self.job_pid,),
                ):
                    self.waits.append((now, wait) if who == "submissions" else (now, f"{who} {wait}"))
                time.sleep(0.1)

    def seen_since(self, since: float) -> bool:
        return any(t >= since for t, _ in self.samples)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# Tables the job removed rows from whose dead rows still exceed autovacuum's threshold (50 + 20%).
_VACUUM_DUE = (
    "select count(*) from pg_stat_user_tables as t join pg_class as c on c.oid = t.relid "
    "where t.schemaname = 'app' and t.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0) and t.relname in ("
    "select r.kind from app.retention_runs as r "
    "where r.started_at >= to_timestamp(%s) - interval '1 second' and r.rows_removed > 0)"
)


def _classify(rows: list[tuple[float, float]], windows: list[tuple[str, float, float]],
              vacuum_marks: list[float]) -> dict:
    """Latencies by side: a transaction inside a busy window or overlapping a vacuum of an emptied
    table is "busy"; one inside a quiet window, clear of both by GUARD_SECONDS, is "quiet"."""
    busy_spans = [(start, end) for kind, start, end in windows if kind == "busy"]
    busy_spans += [(t - 0.1, t + 0.1) for t in vacuum_marks]
    quiet_spans = [(start, end) for kind, start, end in windows if kind == "quiet"]
    out: dict = {"quiet": [], "busy": [], "vacuum": 0, "vacuum_latencies": []}
    for latency, end in rows:
        begin = end - latency / 1000.0
        if any(begin <= e and end >= s for s, e in busy_spans):
            out["busy"].append(latency)
            if not any(begin <= e and end >= s for kind, s, e in windows if kind == "busy"):
                out["vacuum"] += 1
                out["vacuum_latencies"].append(latency)
        elif any(s + GUARD_SECONDS <= begin and end <= e - GUARD_SECONDS for s, e in quiet_spans) and not any(
            begin - GUARD_SECONDS <= e and end + GUARD_SECONDS >= s for s, e in busy_spans
        ):
            out["quiet"].append(latency)
    return out


def _pair_ratios(rows: list[tuple[float, float]], windows: list[tuple[str, float, float]]) -> list[float]:
    """p99 of each retention window over p99 of the quiet window before it (pairs with 100
    samples a side or more): drift of the machine's load shows as a spread, not as a bias."""
    def p99(start: float, end: float, guard: float) -> float | None:
        lat = [la for la, done in rows if start + guard <= done - la / 1000.0 and done <= end - guard]
        return percentiles(lat)[1] if len(lat) >= 100 else None

    quiet = [w for w in windows if w[0] == "quiet"]
    busy = [w for w in windows if w[0] == "busy"]
    out = []
    for (_, qs, qe), (_, bs, be) in zip(quiet, busy):
        q, b = p99(qs, qe, GUARD_SECONDS), p99(bs, be, 0.0)
        if q and b:
            out.append(b / q)
    return out


def chunks(total: int, size: int) -> list[tuple[int, int]]:
    """Ranges lo..hi (inclusive) of at most `size` covering 1..total."""
    return [(lo, min(total, lo + size - 1)) for lo in range(1, total + 1, size)]


# Rows per generation statement: small enough for the progress to move every few seconds.
CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class Generated:
    """What generate() made in the bench database: the due and live rows and the old month."""

    rows: int
    views: int
    counters: int
    partition: str


def retention_at_scale(report: Report, cluster: Cluster, seconds: int = 10, quick: bool = False,
                       variants: list[Variant] | None = None) -> None:
    check_server_settings(cluster.url(BENCH_DB), variants or [{}])
    measure(report, cluster, generate(report, cluster, quick), variants)


def check_server_settings(url: str, variants: list[Variant]) -> None:
    """Each variant's server settings set once and reset, before the minutes of generation: a value
    PostgreSQL refuses (out of range, a wrong unit) stops the run here."""
    if not any(_server_settings(v) for v in variants):
        return
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            for variant in variants:
                try:
                    apply_server_settings(conn, _server_settings(variant))
                except psycopg.errors.InvalidParameterValue as exc:
                    raise UserError(f"the retention variant {variant_name(variant)}: {exc}") from None
        finally:
            apply_server_settings(conn, {})


def generate(report: Report, cluster: Cluster, quick: bool = False) -> Generated:
    """The data the job finds due (and the live rows it must keep), vacuumed and checkpointed."""
    rows = 100_000 if quick else 1_000_000
    views = 1_000_000 if quick else 10_000_000
    url = cluster.url(BENCH_DB)
    print(f"Retention at scale ({rows:,} expired + {rows:,} live engagement rows, a month of {views:,} page views)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIMITS_ON)
        # An old month, as ensure_page_view_partitions names and bounds a partition.
        _month, lower, upper, partition = conn.execute(
            "select m, to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00', "
            "to_char(m + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00', "
            "app_logic.page_view_partition_name(m at time zone 'UTC') "
            "from (select date_trunc('month', now() at time zone 'UTC' - interval '24 months') as m) as s"
        ).fetchone()
        (rule_keep,) = conn.execute("select keep_for::text from app.retention_rules where kind = 'brand_engagement'").fetchone()

    # Generation (not measured): unlinked engagement rows older and younger than the 2-year rule,
    # and an old month of page views in its own partition, made as ensure_page_view_partitions does.
    started = time.monotonic()
    engagement = []
    for label, age in (("exp", "(interval '2 years' + (1 + g % 365) * interval '1 day')"),
                       ("live", "(g % 700) * interval '1 day'")):
        for lo, hi in chunks(rows, CHUNK_ROWS):
            engagement.append((
                "insert into app.brand_engagement (session_id, scroll_depth_percentage, created_at) "
                f"select 'bench-{label}-' || g, g % 101, now() - {age} from generate_series({lo}, {hi}) as g",
                hi - lo + 1,
            ))
    _generate(url, "engagement rows", engagement)
    # Rate-limit counters as the rest of `invoke bench` leaves them (its submissions' clients, whose
    # windows end while this part runs): stale ones and live ones (a day's window left), in the
    # order the limiter writes them. Unlogged, as the table: their removal writes no WAL.
    counters = rows // 4 if quick else 150_000
    _generate(url, "rate-limit counters", [(
        "insert into app.rate_limit_counters (action, scope, subject, hits, expires_at) "
        f"select 'leads', (array['ip', 'email'])[1 + g % 2], sha256(convert_to('bench-{label}-' || g, 'UTF8')), array[now() - interval '1 hour'], "
        f"now() + {age} from generate_series(1, {counters}) as g",
        counters,
    ) for label, age in (("exp", f"(g - 1 - {counters}) * interval '1 ms'"), ("live", "interval '1 day'"))])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table app.{partition} partition of app.page_views for values from ('{lower}') to ('{upper}')")
        conn.execute(f"alter table app.{partition} enable row level security")
    _generate(url, "page views", [(
        "insert into app.page_views (session_id, path, referrer_host, device_type, duration_ms, viewed_at) "
        "select 's' || (g % 200000), (array['/', '/ecosystem', '/contact', '/blog', '/about'])[1 + g % 5], "
        "case when g % 3 = 0 then 'www.example.com' end, (array['mobile', 'tablet', 'desktop'])[1 + g % 3], g % 60000, "
        f"timestamptz '{lower}' + (g % 2592000) * interval '1 second' from generate_series({lo}, {hi}) as g",
        hi - lo + 1,
    ) for lo, hi in chunks(views, 4 * CHUNK_ROWS)])
    print("    vacuum (analyze) and checkpoint of the generated data", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        # Rows that waited years for retention have long been vacuumed; start from that state,
        # and with no checkpoint of the generated WAL pending.
        conn.execute("vacuum (analyze) app.brand_engagement")
        conn.execute("vacuum (analyze) app.rate_limit_counters")
        conn.execute("vacuum (analyze) app.brand_audit")  # the generated rows' audit entries
        conn.execute(f"vacuum (analyze) app.{partition}")
        conn.execute("checkpoint")
    generation = time.monotonic() - started
    report.figures["retention: data generated"] = (
        f"{rows:,} expired + {rows:,} live brand_engagement rows (rule: {rule_keep}), "
        f"{counters:,} stale + {counters:,} live rate-limit counters, {views:,} page views in app.{partition}"
    )
    report.figures["retention: generation seconds (not measured)"] = round(generation, 1)
    print(f"  generated in {generation:.1f} s (not part of the measurement)")
    return Generated(rows, views, counters, partition)


def measure(report: Report, cluster: Cluster, data: Generated, variants: list[Variant] | None = None) -> None:
    """Submissions at the fixed rate while the job alternates with quiet windows until it is done.
    With variants (parse_variants), the retention windows take them in turn, and each variant's
    figures (pair median, p99, WAL rate, waits) are reported beside the pooled ones."""
    rows, views, counters, partition = data.rows, data.views, data.counters, data.partition
    url = cluster.url(BENCH_DB)
    variants = variants or [{}]

    # Submissions at a fixed rate run throughout, and the job alternates with quiet windows of the
    # same length (run_retention's time limit): both sides meet the machine's other load alike.
    # A transaction counts for the side it ran in; one that overlaps a change of side counts for
    # neither. A vacuum of a table the job emptied is the job's doing: while one runs (during the
    # job or after it), submissions count as "while retention runs".
    conn = psycopg.connect(url, autocommit=True)  # the job's session (and the windows' bookkeeping)
    load = _Submissions(cluster)
    vacuums = _VacuumMonitor(url, job_pid=conn.info.backend_pid)
    windows: list[tuple[str, float, float]] = []
    # WAL in each alternated window: its bytes (what the job adds over the quiet rate is what the
    # submissions' commits flush with theirs) and pg_stat_wal's writes and syncs (every process's:
    # the submissions', the WAL writer's, the job's, reported when its CALL returns).
    wal: list[tuple[str, float, int, int, int]] = []
    window_variant: list[str] = []  # the variant of each retention window, in order
    # The WAL writer's settings the server had as each quiet window and each retention window began.
    window_settings: list[str] = []
    # The WAL writer's settings only when a variant sets them: otherwise the server is left alone.
    vary_settings = any(_server_settings(v) for v in variants)
    settings_now: dict[str, str] | None = None
    load.start()
    vacuums.start()
    try:
        time.sleep(2)  # pgbench connected and at its rate before the first window
        with conn:
            def wal_now() -> tuple[int, int, int]:
                lsn, writes, syncs = conn.execute(
                    "select pg_current_wal_insert_lsn() - '0/0', wal_write, wal_sync from pg_stat_wal").fetchone()
                return int(lsn), int(writes), int(syncs)

            def settings_in_force() -> None:
                window_settings.append(conn.execute(
                    "select string_agg(name || '=' || current_setting(name), ',' order by name) from pg_settings "
                    "where name = any(%s)", (list(VARIANT_SETTINGS),)).fetchone()[0])

            def wal_since(kind: str, started: float, before: tuple[int, int, int]) -> None:
                after = wal_now()
                wal.append((kind, windows[-1][2] - started, *(a - b for a, b in zip(after, before))))

            while True:
                variant = variants[len(windows) // 2 % len(variants)]
                if vary_settings and _server_settings(variant) != settings_now:
                    # The pair's quiet window runs with the variant's server settings too.
                    settings_now = _server_settings(variant)
                    apply_server_settings(conn, settings_now)
                settings_in_force()
                started, before = time.time(), wal_now()
                time.sleep(WINDOW_SECONDS)
                windows.append(("quiet", started, time.time()))
                wal_since("quiet", started, before)
                settings_in_force()
                started, before = time.time(), wal_now()
                conn.execute(_job_call(variant), (WINDOW_SECONDS, *_job_values(variant)))
                windows.append(("busy", started, time.time()))
                window_variant.append(variant_name(variant))
                wal_since("busy", started, before)
                print(f"    submissions at {RETENTION_RATE}/s: quiet window and retention window {len(windows) // 2} "
                      f"({windows[-1][2] - started:.1f} s)", flush=True)
                (pending,) = conn.execute(
                    "select count(*) from (select distinct on (kind) complete, error from app.retention_runs "
                    "order by kind, id desc) as last where not complete and error is null"
                ).fetchone()
                if not pending:
                    break
            # After the job: quiet windows until autovacuum has been through what the job emptied
            # (it wakes up to a minute later) and a window has passed without any such vacuum;
            # with the cluster's own settings.
            job_end = time.time()
            if settings_now:
                apply_server_settings(conn, {})
                settings_now = {}
            done_start = windows[1][1]
            while True:
                started = time.time()
                time.sleep(WINDOW_SECONDS)
                windows.append(("quiet", started, time.time()))
                (waiting,) = conn.execute(_VACUUM_DUE, (done_start,)).fetchone()
                print(f"    submissions at {RETENTION_RATE}/s: quiet window after the job"
                      f"{f' ({waiting} emptied table(s) not vacuumed yet)' if waiting else ''}", flush=True)
                if (not waiting and not vacuums.seen_since(started)) or time.time() - job_end > AFTERMATH_MAX_SECONDS:
                    break
    finally:
        load.stop()
        vacuums.stop()
        if vary_settings and settings_now != {}:
            with psycopg.connect(url, autocommit=True) as reset:
                apply_server_settings(reset, {})
        conn.close()
    if load.error:
        raise RuntimeError(f"the submissions failed: {load.error}")
    done = {"start": done_start, "end": job_end}
    with psycopg.connect(url, autocommit=True) as conn:
        emptied = {kind for (kind,) in conn.execute(
            "select distinct kind from app.retention_runs where started_at >= to_timestamp(%s) - interval '1 second' "
            "and (rows_removed > 0 or cardinality(partitions_dropped) > 0)", (done["start"],)
        )}
    vacuum_marks = [t for t, table in vacuums.samples if table in emptied]
    sides = _classify(load.rows, windows, vacuum_marks)
    job_seconds = sum(end - start for kind, start, end in windows if kind == "busy")
    # The rate held: transactions completed within each side's windows over their length.
    rate = {side: sum(1 for _, end in load.rows if any(s <= end < e for kind, s, e in windows if kind == side))
            / sum(e - s for kind, s, e in windows if kind == side) for side in ("quiet", "busy")}
    quiet = Run(f"submissions {RETENTION_RATE}/s, no retention (alternated)", rate["quiet"],
                len(sides["quiet"]), load.failed, *percentiles(sides["quiet"]), load=loadavg())
    busy = Run(f"submissions {RETENTION_RATE}/s, retention running", rate["busy"],
               len(sides["busy"]), 0, *percentiles(sides["busy"]), load=loadavg())
    report.add(quiet)
    report.median(quiet.name, [quiet])
    report.add(busy)
    for run in (quiet, busy):
        if run.transactions < MIN_SAMPLES:
            run.problems.append(f"only {run.transactions} samples (goal: at least {MIN_SAMPLES}): p99 is rough")
        if run.tps < 0.95 * RETENTION_RATE:
            run.problems.append(f"the fixed rate was not held: {run.tps:.0f}/s of {RETENTION_RATE}/s")
        for problem in run.problems:
            print(f"      ! {run.name}: {problem}", flush=True)
    report.figures["retention: samples without / while running"] = f"{quiet.transactions} / {busy.transactions}"
    report.figures["retention: windows without / while running (alternated)"] = (
        f"{sum(1 for w in windows if w[0] == 'quiet')} / {sum(1 for w in windows if w[0] == 'busy')} "
        f"of at most {WINDOW_SECONDS} s; samples in a vacuum of an emptied table moved to 'while running': {sides['vacuum']}"
    )
    # What the vacuum after the job costs the submissions on its own (outside the job's windows).
    if len(sides["vacuum_latencies"]) >= 100 and quiet.p99_ms:
        vacuum_p99 = percentiles(sides["vacuum_latencies"])[1]
        report.figures["retention: p99 during a vacuum of an emptied table outside the job's windows, ms (over the quiet p99)"] = (
            f"{vacuum_p99:.1f} ({vacuum_p99 / quiet.p99_ms:.2f})"
        )
    pairs = _pair_ratios(load.rows, windows)
    if len(variants) > 1:
        _report_variants(report, load.rows, windows, window_variant, wal, vacuums.waits, url, sides["quiet"],
                         window_settings if vary_settings else None)
        for name in dict.fromkeys(map(variant_name, variants)):
            if name not in window_variant:
                # The job ran out of due rows before this variant's turn (--quick ends in a window or two).
                report.figures[f"retention variant {name}"] = "no window: the job was done before its turn"
                print(f"    variant {name}: no window: the job was done before its turn", flush=True)
    if pairs:
        report.figures["retention: p99 while running / without, median over adjacent window pairs (a check on the pooled ratio)"] = (
            f"{statistics.median(pairs):.2f} over {len(pairs)} pairs (from {min(pairs):.2f} to {max(pairs):.2f})"
        )
    report.figures[f"retention: submissions per second held (offered {RETENTION_RATE}/s), without / while running"] = (
        f"{quiet.tps:.1f} / {busy.tps:.1f}"
    )

    with psycopg.connect(url, autocommit=True) as conn:
        (batch_seconds, removed_all) = conn.execute(
            "select extract(epoch from sum(duration)), sum(rows_removed) from app.retention_runs "
            "where started_at >= to_timestamp(%s) - interval '1 second'", (done["start"],)
        ).fetchone()
        runs = {kind: (removed, secs, dropped) for kind, removed, secs, dropped in conn.execute(
            "select kind, sum(rows_removed), extract(epoch from sum(duration)), "
            "array_to_string(array_agg(array_to_string(partitions_dropped, ',')) filter "
            "(where cardinality(partitions_dropped) > 0), ',') "
            "from app.retention_runs where started_at >= to_timestamp(%s) - interval '1 second' and error is null "
            "group by kind", (done["start"],)
        ).fetchall()}
        errors = conn.execute("select kind, error from app.retention_runs where error is not null").fetchall()
        expired_left, live_left = conn.execute(
            "select count(*) filter (where session_id like 'bench-exp-%'), "
            "count(*) filter (where session_id like 'bench-live-%') "
            "from app.brand_engagement"
        ).fetchone()
        (partition_left,) = conn.execute("select to_regclass(%s) is not null", (f"app.{partition}",)).fetchone()
        stale_left, live_counters_left = conn.execute(
            # The keys are HMACs (32 bytes): the generated ones are found by recomputing them.
            "select count(*) filter (where g.label = 'exp'), count(*) filter (where g.label = 'live') "
            "from app.rate_limit_counters as c join ("
            "select l.label, sha256(convert_to('bench-' || l.label || '-' || n, 'UTF8')) as subject "
            "from unnest(array['exp', 'live']) as l (label), generate_series(1, %s) as n) as g on g.subject = c.subject",
            (counters,),
        ).fetchone()
    removed, engagement_secs, _ = runs.get("brand_engagement", (0, 0.0, None))
    _, drop_secs, dropped = runs.get("page_views", (0, 0.0, None))
    report.figures["retention: run_retention() seconds (every rule, as pg_cron runs it; sum of its windows)"] = round(job_seconds, 2)
    # The mechanism behind the ratio (issue 13, goal 4): how much of its windows the job worked,
    # and the WAL it added, which every submission committing meanwhile flushes with its own.
    if job_seconds:
        report.figures["retention: share of its windows the job spent in batches (the rest paused)"] = (
            round(float(batch_seconds or 0) / job_seconds, 3)
        )
    quiet_rate = sum(w[2] for w in wal if w[0] == "quiet") / max(sum(w[1] for w in wal if w[0] == "quiet"), 1e-9)
    job_wal = sum(w[2] for w in wal if w[0] == "busy") - quiet_rate * sum(w[1] for w in wal if w[0] == "busy")
    # Counters are unlogged: their removal writes no WAL, so they are not counted per row here.
    counters_removed, counters_secs, _ = runs.get("rate_limit_counters", (0, 0.0, None))
    logged_removed = float(removed_all or 0) - float(counters_removed or 0)
    if logged_removed:
        report.figures["retention: WAL the job wrote per removed row, bytes (its windows' WAL over the quiet rate)"] = (
            round(job_wal / logged_removed)
        )
    report.figures["retention: rows removed (every rule)"] = int(removed_all or 0)
    report.figures["retention: rate_limit_counters rows removed, seconds (sum of batches)"] = (
        f"{int(counters_removed or 0):,}, {float(counters_secs or 0):.2f}"
    )
    report.figures["retention: brand_engagement rows removed"] = int(removed or 0)
    report.figures["retention: brand_engagement seconds (sum of batches)"] = round(float(engagement_secs or 0), 2)
    report.figures["retention: brand_engagement rows removed per second"] = (
        round(float(removed) / float(engagement_secs)) if removed and engagement_secs else 0
    )
    report.figures[f"retention: page-view month of {views:,} rows dropped in seconds"] = round(float(drop_secs or 0), 3)
    report.figures["retention: partitions dropped"] = dropped or "none"
    report.figures["retention: live rows kept / expired rows left"] = f"{live_left:,} / {expired_left:,}"
    if quiet.p99_ms and busy.p99_ms:
        report.ratios["retention-p99 submission p99 while retention runs / without"] = busy.p99_ms / quiet.p99_ms
    problems = []
    if errors:
        problems.append(f"retention rules failed: {errors}")
    if expired_left or live_left != rows:
        problems.append(f"expected 0 expired and {rows} live rows left, found {expired_left} and {live_left}")
    if stale_left or live_counters_left != counters:
        problems.append(f"expected 0 stale and {counters} live rate-limit counters left, found {stale_left} and {live_counters_left}")
    if partition_left:
        problems.append(f"app.{partition} was not dropped")
    if problems:
        busy.problems += problems
        busy.failed += 1
        for p in problems:
            print(f"      ! {p}")
    report.median(busy.name, [busy])



def _report_variants(report: Report, rows: list[tuple[float, float]], windows: list[tuple[str, float, float]],
                     window_variant: list[str], wal: list[tuple[str, float, int, int, int]],
                     waits: list[tuple[float, str]], url: str, quiet_side: list[float],
                     window_settings: list[str] | None = None) -> None:
    """Per variant of the job: its retention windows against the quiet window before each (pair
    median), the pooled p99 of its windows against the quiet side's (the samples the headline
    ratio counts as without retention: not those during a vacuum of an emptied table after the
    job), its WAL rate, the share of its windows spent in batches, the WAL syncs per second
    (pg_stat_wal, every process) in its windows and in the quiet ones before them, and what the
    submissions, the WAL writer and the job's session waited for meanwhile (who flushes); with
    window_settings (two a pair: as its quiet and its retention window began), the WAL writer's
    settings the server had in its windows, as a check that the variant got them."""
    quiet = [w for w in windows if w[0] == "quiet"]
    busy = [w for w in windows if w[0] == "busy"]
    busy_wal = [w for w in wal if w[0] == "busy"]
    quiet_wal = [w for w in wal if w[0] == "quiet"]  # the quiet windows before the job's, in order

    def inside(start: float, end: float, guard: float) -> list[float]:
        return [la for la, done in rows if start + guard <= done - la / 1000.0 and done <= end - guard]

    def top_waits(spans: list[tuple[float, float]], who: str = "") -> str:
        """The commonest waits of the submissions (who ""), of "walwriter" or of "job"."""
        counts: dict[str, int] = {}
        for t, wait in waits:
            process, _, event = wait.rpartition(" ")
            if process == who and any(s <= t <= e for s, e in spans):
                counts[event] = counts.get(event, 0) + 1
        total = sum(counts.values()) or 1
        return ", ".join(f"{w} {n / total:.0%}" for w, n in sorted(counts.items(), key=lambda x: -x[1])[:4])

    quiet_p99 = percentiles(quiet_side)[1]
    print(f"    quiet side: {len(quiet_side)} samples, p99 {fmt_ms(quiet_p99)}, "
          f"waits in the quiet windows paired with the job's: {top_waits([(s, e) for _, s, e in quiet[:len(busy)]])}",
          flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        for name in dict.fromkeys(window_variant):
            idx = [i for i, v in enumerate(window_variant) if v == name]
            ratios, pooled = [], []
            for i in idx:
                (_, qs, qe), (_, bs, be) = quiet[i], busy[i]
                q, b = inside(qs, qe, GUARD_SECONDS), inside(bs, be, 0.0)
                pooled += b
                if len(q) >= 100 and len(b) >= 100:
                    ratios.append(percentiles(b)[1] / percentiles(q)[1])
            seconds = sum(busy_wal[i][1] for i in idx)
            quiet_seconds = sum(quiet_wal[i][1] for i in idx)
            spans = [(busy[i][1], busy[i][2]) for i in idx]
            (batch_seconds, removed) = conn.execute(
                "select coalesce(extract(epoch from sum(duration)), 0), coalesce(sum(rows_removed), 0) "
                "from app.retention_runs where " + " or ".join(
                    ["started_at between to_timestamp(%s) and to_timestamp(%s)"] * len(idx)),
                [x for i in idx for x in (busy[i][1], busy[i][2])],
            ).fetchone()
            p99 = percentiles(pooled)[1]
            pooled_ratio = f"{p99 / quiet_p99:.2f}" if p99 and quiet_p99 else "-"
            pair = f"{statistics.median(ratios):.2f}" if ratios else "-"
            line = (f"{len(idx)} windows ({seconds:.0f} s), {len(pooled)} samples, p99 {fmt_ms(p99)} ms "
                    f"(pooled over quiet {pooled_ratio}), pair median {pair} over {len(ratios)} "
                    f"({', '.join(f'{r:.2f}' for r in ratios)}); "
                    f"WAL {sum(busy_wal[i][2] for i in idx) / max(seconds, 1e-9) / 1e6:.2f} MB/s, "
                    f"{int(removed):,} rows, in batches {float(batch_seconds) / max(seconds, 1e-9):.2f}; "
                    f"WAL syncs {sum(busy_wal[i][4] for i in idx) / max(seconds, 1e-9):.0f}/s, writes "
                    f"{sum(busy_wal[i][3] for i in idx) / max(seconds, 1e-9):.0f}/s (its quiet windows "
                    f"{sum(quiet_wal[i][4] for i in idx) / max(quiet_seconds, 1e-9):.0f}/s, "
                    f"{sum(quiet_wal[i][3] for i in idx) / max(quiet_seconds, 1e-9):.0f}/s); "
                    f"waits: {top_waits(spans)}; WAL writer: {top_waits(spans, 'walwriter')}; "
                    f"job: {top_waits(spans, 'job')}")
            if window_settings:
                line += "; server: " + " / ".join(sorted({window_settings[j] for i in idx for j in (2 * i, 2 * i + 1)}))
            report.figures[f"retention variant {name}"] = line
            print(f"    variant {name}: {line}", flush=True)


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
