-- Leads: who may call what (issue 3).

select 1 as nothing_granted_yet;
