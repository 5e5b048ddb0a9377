-- Consent audit: rows name the submission that wrote them; a submission's ask that did not take effect is a request.

alter table app.consent_audit add column submission_id bigint;
alter table app.consent_audit drop constraint consent_audit_event_check;
alter table app.consent_audit add constraint consent_audit_event_check check (event in ('consent', 'request', 'erasure'));
alter table app.consent_audit drop constraint consent_audit_consent_fields;
alter table app.consent_audit add constraint consent_audit_consent_fields check (
    event not in ('consent', 'request') or (consent_type is not null and granted is not null)
);
