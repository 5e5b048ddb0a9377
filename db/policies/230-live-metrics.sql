-- Live brand metrics: the stream is for reader and admin keys (nginx asks
-- api.live_brand_metrics before the relay streams). The notifications are sent by triggers
-- running as the writing endpoint's owner; the relay only LISTENs, as the authenticator role,
-- which needs no privilege for that.

grant execute on function api.live_brand_metrics() to reader, admin;
grant usage on domain api."text/event-stream" to anon, reader, admin;  -- noqa: RF05
