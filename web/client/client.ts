// A typed client of the CHORUS API: openapi-fetch over the types that openapi-typescript
// generates from GET /api/ (generated/api.d.ts; `invoke web.client` makes it and runs tsc).
// The calls below are the ones the reference form and the dashboard make; if the OpenAPI
// document stopped describing them (a path, a field, an enum), this file would not compile.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

export type Lead = components["schemas"]["submit_lead_body"];

export function chorusClient(baseUrl = "http://127.0.0.1:8080", apiKey?: string) {
  return createClient<paths>({ baseUrl, headers: apiKey ? { "X-API-Key": apiKey } : {} });
}

// The seed's example request, as the form sends it.
export async function submitLead(baseUrl?: string): Promise<number> {
  const lead: Lead = {
    firstName: "John",
    lastName: "Doe",
    email: "john.doe@example.com",
    leadSource: "contact_form",
    gdprConsent: true,
    companyName: "Acme Corp",
    inquiryDetails: "Interested in technical deep dive",
    accessibilityTheme: "protanopia",
    deviceType: "desktop",
    coreWebVitals: { lcp: 2300, fid: 85, cls: 0.08 },
    logoInteractions: 3,
    timeOnSite: 145000,
    pagesViewed: ["/", "/ecosystem", "/contact"],
  };
  const { response, error } = await chorusClient(baseUrl).POST("/api/leads", { body: lead });
  if (error) {
    // 400: every bad field in errors[]; 429: Retry-After.
    for (const problem of error.errors ?? []) console.log(`${problem.field}: ${problem.message}`);
  }
  return response.status;
}

// @ts-expect-error: the document lists the themes, so a misspelt one does not compile.
export const wrongTheme: Lead["accessibilityTheme"] = "protanopya";

// The dashboard's reads, with a reader key.
export async function dashboard(apiKey: string, baseUrl?: string) {
  const client = chorusClient(baseUrl, apiKey);
  const me = await client.GET("/api/api-key");
  const role: "reader" | "admin" | undefined = me.data?.role;
  const vitals = await client.GET("/api/brand-analytics/performance");
  const p75: Array<number | null | undefined> = (vitals.data ?? []).map((row) => row.p75);
  const days = await client.GET("/api/brand-analytics/leads-per-day");
  const perDay = (days.data ?? []).map((row) => [row.day, row.leads] as const);
  const views = await client.GET("/api/brand-analytics/page-views-per-day");
  const leads = await client.GET("/api/leads", {
    params: { query: { select: "id,firstName,createdAt", order: "createdAt.desc", limit: 10 } },
  });
  const consent = await chorusClient(baseUrl).GET("/api/consent-text");
  return { role, p75, perDay, views: views.data, leads: leads.data, version: consent.data?.version };
}
