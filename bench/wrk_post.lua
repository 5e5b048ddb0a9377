-- wrk script: POST a JSON body with a unique email per request and, with SET_REAL_IP=1, a
-- random X-Real-IP: the client address nginx sets for PostgREST (the benchmark's nginx trusts
-- it from loopback), so each request is its own client as on the internet.
-- BODY_STYLE: "api" (camelCase lead, as the website sends), "table" (snake_case columns of
-- the bare table) or "pageviews" (a batch of BATCH page views, {"events": [...]}). All are set
-- through the environment of wrk. BODY_STYLE "read": a GET of the URL with READ_KEY in X-API-Key
-- (`invoke bench --only ops`, reads on the replica). With COUNT_STATUS=1 every response's status
-- is counted and the first bodies of each status other than 2xx kept: wrk's own summary says only
-- "Non-2xx or 3xx responses: N". done() prints them as "status <code> <count>" and
-- "body <code> <text>" lines (chorus_db.bench.http.parse_wrk reads them). Off by default: a
-- response() function makes wrk parse every response into Lua.
local style = os.getenv("BODY_STYLE") or "api"
local read_key = os.getenv("READ_KEY") or ""
local spoof_ip = os.getenv("SET_REAL_IP") == "1"
local batch = tonumber(os.getenv("BATCH") or "100")
local count_status = os.getenv("COUNT_STATUS") == "1"
local counter = 0
local thread_tag = 0
local threads = {}
-- Per thread (each has its own Lua state): counts by status, and up to 3 bodies per status >= 300.
statuses = {}
bodies = {}

function setup(thread)
  thread_tag = thread_tag + 1
  thread:set("tag", thread_tag)
  table.insert(threads, thread)
end

if count_status then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status >= 300 and statuses[status] <= 3 then
      -- One line per body: newlines folded, at most 300 bytes (an error body is short JSON).
      table.insert(bodies, string.format("%d %s", status, string.sub(string.gsub(body or "", "%s+", " "), 1, 300)))
    end
  end

  function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
        total[status] = (total[status] or 0) + n
      end
      for _, line in ipairs(thread:get("bodies")) do
        io.write("body " .. line .. "\n")
      end
    end
    for status, n in pairs(total) do
      io.write(string.format("status %d %d\n", status, n))
    end
  end
end

function init(args)
  math.randomseed(os.time() + (tag or 0) * 7919)
end

local function real_ip()
  return string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
end

request = function()
  if style == "read" then
    local headers = {["X-API-Key"] = read_key}
    if spoof_ip then
      headers["X-Real-IP"] = real_ip()
    end
    return wrk.format("GET", nil, headers)
  end
  counter = counter + 1
  local email = string.format("w%d-%d-%d@example.com", tag or 0, counter, math.random(1, 1000000000))
  local body
  if style == "pageviews" then
    local events = {}
    for i = 1, batch do
      events[i] = string.format('{"sessionId":"w%d-%d","path":"/ecosystem/%d?utm=x","referrer":"https://www.example.com/blog",'
        .. '"deviceType":"desktop","durationMs":%d}', tag or 0, counter, i, i * 100)
    end
    body = '{"events":[' .. table.concat(events, ",") .. ']}'
  elseif style == "table" then
    body = string.format('{"first_name":"John","last_name":"Doe","email":"%s","company_name":"Acme Corp",'
      .. '"inquiry_details":"Interested in technical deep dive","lead_source":"contact_form",'
      .. '"accessibility_theme":"protanopia","gdpr_consent":true,"device_type":"desktop",'
      .. '"core_web_vitals":{"lcp":2300,"fid":85,"cls":0.08},"logo_interactions":3,"time_on_site":145000,'
      .. '"pages_viewed":["/","/ecosystem","/contact"]}', email)
  else
    body = string.format('{"firstName":"John","lastName":"Doe","email":"%s","leadSource":"contact_form",'
      .. '"gdprConsent":true,"companyName":"Acme Corp","inquiryDetails":"Interested in technical deep dive",'
      .. '"accessibilityTheme":"protanopia","deviceType":"desktop","coreWebVitals":{"lcp":2300,"fid":85,"cls":0.08},'
      .. '"logoInteractions":3,"timeOnSite":145000,"pagesViewed":["/","/ecosystem","/contact"]}', email)
  end
  local headers = {["Content-Type"] = "application/json", ["Prefer"] = "return=minimal"}
  if spoof_ip then
    headers["X-Real-IP"] = real_ip()
  end
  return wrk.format("POST", nil, headers, body)
end
