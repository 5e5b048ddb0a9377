"""The public HTTP paths and what PostgREST serves them with.

One table, read by the nginx config test (deploy/nginx/api.conf.template must map exactly
these), by the SQL-level request helper of the tests, and by the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str  # public method
    path: str  # public path, under /api
    target: str  # PostgREST path: /rpc/<function> or /<view>
    auth: str  # "public" or "reader" (reader or admin key) or "admin"

    @property
    def is_rpc(self) -> bool:
        return self.target.startswith("/rpc/")

    @property
    def sql_name(self) -> str:
        """The api-schema object behind the route."""
        return "api." + self.target.rsplit("/", 1)[1]


ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/leads", "/rpc/submit_lead", "public"),
    Route("GET", "/api/leads", "/leads", "reader"),
    Route("GET", "/api/leads/health", "/rpc/check_leads_health", "public"),
    Route("GET", "/api/lead-interactions", "/lead_interactions", "reader"),
    Route("POST", "/api/lead-interactions", "/rpc/add_lead_interaction", "admin"),
    Route("POST", "/api/accessibility-preferences", "/rpc/save_accessibility_preferences", "public"),
    Route("GET", "/api/accessibility-preferences/health", "/rpc/check_accessibility_preferences_health", "public"),
    Route("POST", "/api/brand-engagement", "/rpc/record_brand_engagement", "public"),
    Route("GET", "/api/brand-engagement/health", "/rpc/check_brand_engagement_health", "public"),
    Route("POST", "/api/page-views", "/rpc/record_page_view", "public"),
    Route("GET", "/api/page-views/health", "/rpc/check_page_views_health", "public"),
    Route("GET", "/api/brand-analytics/performance", "/brand_performance", "reader"),
    Route("GET", "/api/brand-analytics/accessibility-usage", "/accessibility_usage", "reader"),
    Route("GET", "/api/brand-analytics/design-effectiveness", "/design_effectiveness", "reader"),
    Route("POST", "/api/gdpr/export", "/rpc/export_personal_data", "admin"),
    Route("POST", "/api/gdpr/erase", "/rpc/erase_personal_data", "admin"),
    Route("POST", "/api/gdpr/consent", "/rpc/record_consent", "admin"),
    Route("POST", "/api/ab-tests", "/rpc/create_ab_test", "admin"),
    Route("GET", "/api/ab-tests/health", "/rpc/check_ab_tests_health", "public"),
    Route("POST", "/api/ab-tests/stop", "/rpc/stop_ab_test", "admin"),
    Route("GET", "/api/ab-tests/stop/health", "/rpc/check_ab_tests_stop_health", "public"),
    Route("GET", "/api/ab-tests/assignment", "/rpc/assign_ab_test", "public"),
    Route("POST", "/api/ab-tests/conversions", "/rpc/record_ab_test_conversion", "public"),
    Route("GET", "/api/ab-tests/conversions/health", "/rpc/check_ab_test_conversions_health", "public"),
    Route("GET", "/api/brand-analytics/ab-tests", "/ab_test_results", "reader"),
    Route("POST", "/api/logo-heatmaps", "/rpc/record_logo_heatmap", "public"),
    Route("GET", "/api/logo-heatmaps/health", "/rpc/check_logo_heatmaps_health", "public"),
    Route("GET", "/api/brand-analytics/logo-heatmap", "/rpc/logo_heatmap", "reader"),
    Route("GET", "/api/brand-analytics/logo-heatmap.svg", "/rpc/logo_heatmap_svg", "reader"),
)


# GETs whose query string PostgREST must not see as function arguments: nginx sends them as a
# POST of {} with the raw query string in X-Chorus-Query (api.conf.template, @query_string),
# and the SQL validates it (db/functions/201-query-strings.sql).
QUERY_STRING_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/ab-tests/assignment"),
        ("GET", "/api/brand-analytics/logo-heatmap"),
        ("GET", "/api/brand-analytics/logo-heatmap.svg"),
    }
)


def resolve(method: str, path: str) -> Route:
    path = path.split("?", 1)[0].rstrip("/") or "/"
    for route in ROUTES:
        if route.method == method.upper() and route.path == path:
            return route
    raise KeyError(f"no route for {method} {path}")
