-- Rate limits of GET /api/form-token and GET /api/challenge (issue 14): a client fetches one of
-- each per form it shows, so 30 a minute per address leaves a busy office room and stops a bot
-- from harvesting tokens and challenges by the thousand (db/functions/340-spam.sql).

insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('form_token', 'ip', 30, 60),
('challenge', 'ip', 30, 60);
