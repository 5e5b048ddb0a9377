"""`invoke bench`: what the in-database logic costs, as ratios against baselines of the same run.

One module per part: `sql` (pgbench on the SQL path), `http` (wrk through PostgREST and nginx),
`retention` (the retention job at scale and its effect on submissions), `audit` (what the brand
audit log costs per write); `common` holds the runs,
the report and pgbench, `report` prints and writes them, `progress` shows what is going on.
"""

from .common import (  # noqa: F401 - the package's interface
    BENCH_DB, BENCH_DIR, GOALS, Goal, Report, drop, framed, machine, parse_pgbench, parse_pgbench_log, percentiles,
    prepare,
)
from .audit import audit_cost  # noqa: F401
from .encryption import encryption_cost  # noqa: F401
from .http import NGINX_TRUST_WRK, http_path, parse_wrk  # noqa: F401
from .report import goal_of, goals, print_summary, write  # noqa: F401
from .retention import retention_at_scale  # noqa: F401
from .sql import cost_growth, sql_path  # noqa: F401
