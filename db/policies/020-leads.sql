-- Leads: who may call and read what (issue 3). anon may only submit; reader and admin read
-- leads and their history through the security_invoker views; only admin adds CRM entries.

-- The views run with the caller's rights, so the caller needs the schema and the columns too.
grant usage on schema app to reader, admin;

grant execute on function api.submit_lead(jsonb) to anon, reader, admin;
grant execute on function api.add_lead_interaction(jsonb) to admin;
-- Left out on purpose: reader has no EXECUTE on api.add_lead_interaction (403), anon none (401).

grant select on api.leads to reader, admin;
grant select on api.lead_interactions to reader, admin;
grant select on app.leads to reader, admin;
grant select on app.lead_interactions to reader, admin;
-- Left out on purpose: no INSERT, UPDATE or DELETE on the views or tables for any API role
-- (writes go through the SECURITY DEFINER endpoints), and nothing at all for anon.

create policy leads_select_with_key on app.leads
for select to reader, admin
using (true);
comment on policy leads_select_with_key on app.leads is 'A reader or admin key reads every lead.';

create policy lead_interactions_select_with_key on app.lead_interactions
for select to reader, admin
using (true);
comment on policy lead_interactions_select_with_key on app.lead_interactions is
'A reader or admin key reads every lead''s history.';

-- A JSON body nested tens of thousands of levels deep (a 64 KiB body allows ~32,000) exhausts
-- the default 2 MB stack while PostgreSQL parses it, before any function runs: PostgREST would
-- answer 500. 6 MB parses the deepest body nginx lets through. Set only where the server's
-- stack limit allows it (ALTER ROLE checks the value); PostgREST's logins pick it up.
do $stack$
begin
    perform set_config('max_stack_depth', '6MB', true);
    execute 'alter role authenticator set max_stack_depth = ''6MB''';
exception when invalid_parameter_value or insufficient_privilege then
    raise notice 'max_stack_depth left at its default: the stack limit is below 6.5 MB or the builder is no superuser';
end
$stack$;
