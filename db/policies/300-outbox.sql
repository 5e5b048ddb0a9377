-- The outbox: no API role reads or writes it; the mail worker's role only claims and records.

grant usage on schema app_logic to mail_worker;
grant execute on function app_logic.claim_outbox_message() to mail_worker;
grant execute on function app_logic.outbox_delivered(bigint, text) to mail_worker;
grant execute on function app_logic.outbox_attempt_failed(bigint, text, boolean) to mail_worker;
-- The three are SECURITY DEFINER and read settings and the clock as the owner.
-- Left out on purpose: no grant on app.outbox to anon, reader, admin or mail_worker, and no
-- RLS policy: endpoints and triggers enqueue through the SECURITY DEFINER functions above.
