-- Leads: the rule of POST /api/leads, one bad field at a time (400, the field named with its
-- message), several at once, and nothing stored by a rejected submission. Requests run as
-- PostgREST runs them: set local role + request.headers with set_config(..., true).
begin;
select plan(88);

-- [[...[1]...]]: an array nested p_depth levels deep.
create function pg_temp.nested(p_depth integer) returns jsonb
language sql immutable as $$
    select (repeat('[', p_depth) || '1' || repeat(']', p_depth))::jsonb
$$;
grant execute on function pg_temp.nested(integer) to anon;

-- Rate limits are tested in 040-rate-limits; here they would stop the sixth request.
delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.10", "user-agent": "pgtap"}', true);
set local role anon;

-- Each rule, one bad field at a time: 400, the field named with its message.
select
    is(
        tap.lead_errors(c.body),
        case when c.field is not null then tap.one_error(c.field, c.message) end,
        c.description
    )
from (
    values
    (
        1, '{"firstName": ""}'::jsonb,
        'firstName', 'firstName must be between 1 and 100 characters.',
        'firstName: empty is refused'
    ),
    (
        2, '{"firstName": "   "}'::jsonb,
        'firstName', 'firstName must be between 1 and 100 characters.',
        'firstName: blank after trimming is refused'
    ),
    (
        3, jsonb_build_object('firstName', repeat('x', 101)),
        'firstName', 'firstName must be between 1 and 100 characters.',
        'firstName: 101 characters are refused'
    ),
    (
        4, jsonb_build_object('firstName', ' ' || repeat('x', 100) || ' '),
        null, null,
        'firstName: 100 characters with surrounding spaces pass'
    ),
    (
        5, '{"firstName": 7}'::jsonb,
        'firstName', 'firstName must be a string.',
        'firstName: a number is refused'
    ),
    (
        6, '{"firstName": "A\u0007da"}'::jsonb,
        'firstName', 'firstName must be free of control characters.',
        'firstName: a control character is refused'
    ),
    (
        7, '{"firstName": null}'::jsonb,
        'firstName', 'firstName is required.',
        'firstName: null counts as missing'
    ),
    (
        8, jsonb_build_object('lastName', repeat('y', 101)),
        'lastName', 'lastName must be between 1 and 100 characters.',
        'lastName: 101 characters are refused'
    ),
    (
        9, '{"lastName": ""}'::jsonb,
        'lastName', 'lastName must be between 1 and 100 characters.',
        'lastName: empty is refused'
    ),
    (
        10, '{"email": "not-an-address"}'::jsonb,
        'email', 'email must be a valid email address.',
        'email: no @ is refused'
    ),
    (
        11, '{"email": "a@b"}'::jsonb,
        'email', 'email must be a valid email address.',
        'email: an undotted domain is refused'
    ),
    (
        12, '{"email": "a..b@example.org"}'::jsonb,
        'email', 'email must be a valid email address.',
        'email: two dots in a row are refused'
    ),
    (
        13, jsonb_build_object('email', 'a@' || repeat('b', 250) || '.com'),
        'email', 'email must be at most 254 characters.',
        'email: over 254 characters is refused'
    ),
    (
        14, '{"email": true}'::jsonb,
        'email', 'email must be a string.',
        'email: a boolean is refused'
    ),
    (
        15, '{"phone": "020 7946 0958"}'::jsonb,
        'phone', 'phone needs the country code: start with + or 00, e.g. +44 20 7946 0958.',
        'phone: a national number is refused with the hint to add the country code'
    ),
    (
        16, '{"phone": "+999 1234 5678"}'::jsonb,
        'phone', 'phone starts with +999, which is not an ITU country code.',
        'phone: an unassigned country code is refused'
    ),
    (
        17, '{"phone": "+44 20"}'::jsonb,
        'phone', 'phone must have 7 to 15 digits including the country code.',
        'phone: too few digits are refused'
    ),
    (
        18, '{"phone": "+44 2079 4609 5812 345"}'::jsonb,
        'phone', 'phone must have 7 to 15 digits including the country code.',
        'phone: more than 15 digits are refused'
    ),
    (
        19, '{"phone": "+1 415 555 267"}'::jsonb,
        'phone', 'phone with country code +1 must have 10 digits after it.',
        'phone: a North American number needs 10 digits'
    ),
    (
        20, '{"phone": "+44 20 7946 0958 ext 1"}'::jsonb,
        'phone', 'phone may contain only digits, spaces, dashes, dots, slashes and brackets, after a leading + or 00.',
        'phone: letters are refused'
    ),
    (
        21, jsonb_build_object('phone', '+' || repeat('1', 40)),
        'phone', 'phone must be at most 40 characters.',
        'phone: over 40 characters is refused'
    ),
    (
        22, '{"phone": 442079460958}'::jsonb,
        'phone', 'phone must be a string.',
        'phone: a number is refused'
    ),
    (
        23, jsonb_build_object('companyName', repeat('c', 201)),
        'companyName', 'companyName must be at most 200 characters.',
        'companyName: 201 characters are refused'
    ),
    (
        24, jsonb_build_object('inquiryDetails', repeat('i', 5001)),
        'inquiryDetails', 'inquiryDetails must be at most 5000 characters.',
        'inquiryDetails: 5001 characters are refused'
    ),
    (
        25, jsonb_build_object('inquiryDetails', repeat('i', 4999) || E'\n'),
        null, null,
        'inquiryDetails: 5000 characters and a newline pass'
    ),
    (
        26, '{"leadSource": "Contact Form"}'::jsonb,
        'leadSource', 'leadSource must be 1 to 50 lower-case letters, digits or underscores.',
        'leadSource: capitals and spaces are refused'
    ),
    (
        27, jsonb_build_object('leadSource', repeat('a', 51)),
        'leadSource', 'leadSource must be at most 50 characters.',
        'leadSource: 51 characters are refused'
    ),
    (
        28, '{"gdprConsent": false}'::jsonb,
        'gdprConsent', 'gdprConsent must be true.',
        'gdprConsent: false is refused'
    ),
    (
        29, '{"gdprConsent": "true"}'::jsonb,
        'gdprConsent', 'gdprConsent must be true or false.',
        'gdprConsent: a string is refused'
    ),
    (
        30, '{"gdprConsent": null}'::jsonb,
        'gdprConsent', 'gdprConsent is required.',
        'gdprConsent: missing is refused'
    ),
    (
        31, '{"marketingConsent": 1}'::jsonb,
        'marketingConsent', 'marketingConsent must be true or false.',
        'marketingConsent: a number is refused'
    ),
    (
        32, '{"accessibilityTheme": "sepia"}'::jsonb,
        'accessibilityTheme', 'accessibilityTheme must be one of: default, protanopia, deuteranopia, tritanopia, achromatopsia.',
        'accessibilityTheme: an unknown theme is refused'
    ),
    (
        33, '{"preferredCommunication": "fax"}'::jsonb,
        'preferredCommunication', 'preferredCommunication must be one of: email, phone.',
        'preferredCommunication: fax is refused'
    ),
    (
        34, '{"preferredCommunication": "phone"}'::jsonb,
        'preferredCommunication', 'preferredCommunication can be phone only when a phone number is given.',
        'preferredCommunication: phone without a phone number is refused'
    ),
    (
        35, '{"preferredCommunication": "phone", "phone": " "}'::jsonb,
        'preferredCommunication', 'preferredCommunication can be phone only when a phone number is given.',
        'preferredCommunication: phone with a blank phone is refused'
    ),
    (
        36, '{"preferredCommunication": "phone", "phone": "+44 20 7946 0958"}'::jsonb,
        null, null,
        'preferredCommunication: phone with a phone number passes'
    ),
    (
        37, '{"deviceType": "watch"}'::jsonb,
        'deviceType', 'deviceType must be one of: mobile, tablet, desktop.',
        'deviceType: an unknown device is refused'
    ),
    (
        38, '{"coreWebVitals": [1]}'::jsonb,
        'coreWebVitals', 'coreWebVitals must be an object.',
        'coreWebVitals: an array is refused'
    ),
    (
        39, '{"coreWebVitals": {"lcp": -1}}'::jsonb,
        'coreWebVitals.lcp', 'coreWebVitals.lcp must be between 0 and 3600000.',
        'coreWebVitals.lcp: negative is refused'
    ),
    (
        40, '{"coreWebVitals": {"inp": 1e400}}'::jsonb,
        'coreWebVitals.inp', 'coreWebVitals.inp must be between 0 and 3600000.',
        'coreWebVitals.inp: 1e400 is refused'
    ),
    (
        41, '{"coreWebVitals": {"cls": "0.1"}}'::jsonb,
        'coreWebVitals.cls', 'coreWebVitals.cls must be a number.',
        'coreWebVitals.cls: a string is refused'
    ),
    (
        42, '{"coreWebVitals": {"fcp": 1}}'::jsonb,
        'coreWebVitals.fcp', 'coreWebVitals.fcp is not a known field.',
        'coreWebVitals: an unknown metric is refused'
    ),
    (
        43, '{"coreWebVitals": {"lcp": 0, "fid": 1.5, "cls": 0.08, "inp": 2, "ttfb": 3}}'::jsonb,
        null, null,
        'coreWebVitals: all five metrics pass'
    ),
    (
        44, '{"logoInteractions": -1}'::jsonb,
        'logoInteractions', 'logoInteractions must be between 0 and 2147483647.',
        'logoInteractions: negative is refused'
    ),
    (
        45, '{"logoInteractions": 2.5}'::jsonb,
        'logoInteractions', 'logoInteractions must be a whole number.',
        'logoInteractions: a fraction is refused'
    ),
    (
        46, '{"timeOnSite": 2147483648}'::jsonb,
        'timeOnSite', 'timeOnSite must be between 0 and 2147483647.',
        'timeOnSite: above the integer range is refused'
    ),
    (
        47, '{"timeOnSite": 1e400}'::jsonb,
        'timeOnSite', 'timeOnSite must be between 0 and 2147483647.',
        'timeOnSite: 1e400 is refused'
    ),
    (
        48, '{"timeOnSite": "145000"}'::jsonb,
        'timeOnSite', 'timeOnSite must be a number.',
        'timeOnSite: a string is refused'
    ),
    (
        49, '{"pagesViewed": "/"}'::jsonb,
        'pagesViewed', 'pagesViewed must be an array.',
        'pagesViewed: a string is refused'
    ),
    (
        50, jsonb_build_object('pagesViewed', (select jsonb_agg('/'::text) from generate_series(1, 101))),
        'pagesViewed', 'pagesViewed must have at most 100 items.',
        'pagesViewed: 101 paths are refused'
    ),
    (
        51, '{"pagesViewed": ["/", "contact"]}'::jsonb,
        'pagesViewed[1]', 'pagesViewed[1] must be a path that starts with / and has no spaces.',
        'pagesViewed: a path without a leading / is refused'
    ),
    (
        52, '{"pagesViewed": ["/a b"]}'::jsonb,
        'pagesViewed[0]', 'pagesViewed[0] must be a path that starts with / and has no spaces.',
        'pagesViewed: a path with a space is refused'
    ),
    (
        53, jsonb_build_object('pagesViewed', jsonb_build_array('/' || repeat('p', 200))),
        'pagesViewed[0]', 'pagesViewed[0] must be at most 200 characters.',
        'pagesViewed: a path over 200 characters is refused'
    ),
    (
        54, '{"pagesViewed": [3]}'::jsonb,
        'pagesViewed[0]', 'pagesViewed[0] must be a string.',
        'pagesViewed: a number is refused'
    ),
    (
        55, '{"browserInfo": "Firefox"}'::jsonb,
        'browserInfo', 'browserInfo must be an object.',
        'browserInfo: a string is refused'
    ),
    (
        56, jsonb_build_object('browserInfo', jsonb_build_object('ua', repeat('x', 4100))),
        'browserInfo', 'browserInfo must be at most 4096 bytes of JSON.',
        'browserInfo: over 4 KiB is refused'
    ),
    (
        57, jsonb_build_object('sessionId', repeat('s', 101)),
        'sessionId', 'sessionId must be at most 100 characters.',
        'sessionId: 101 characters are refused'
    ),
    (
        58, '{"sessionId": "s\u0001"}'::jsonb,
        'sessionId', 'sessionId must be free of control characters.',
        'sessionId: a control character is refused'
    ),
    -- Unicode: trimming and the control-character check know more than ASCII.
    (
        59, '{"firstName": "\u009b"}'::jsonb,
        'firstName', 'firstName must be free of control characters.',
        'firstName: a C1 control (U+009B) is refused'
    ),
    (
        60, '{"lastName": "Love\u202elace"}'::jsonb,
        'lastName', 'lastName must be free of control characters.',
        'lastName: a bidi override inside is refused'
    ),
    (
        61, '{"companyName": "Acme\u2066 Ltd"}'::jsonb,
        'companyName', 'companyName must be free of control characters.',
        'companyName: a bidi isolate inside is refused'
    ),
    (
        62, '{"sessionId": "sess\u001b[2J\u0007"}'::jsonb,
        'sessionId', 'sessionId must be free of control characters.',
        'sessionId: ESC and BEL are refused'
    ),
    (
        63, '{"inquiryDetails": "line one\nline two\ttabbed\r\n"}'::jsonb,
        null, null,
        'inquiryDetails: a multi-line text keeps tab, LF and CR'
    ),
    (
        64, '{"inquiryDetails": "ring \u0007 the bell"}'::jsonb,
        'inquiryDetails', 'inquiryDetails must be free of control characters.',
        'inquiryDetails: BEL is refused even in a multi-line text'
    ),
    (
        65, '{"pagesViewed": ["/a\u001bb"]}'::jsonb,
        'pagesViewed[0]', 'pagesViewed[0] must be free of control characters.',
        'pagesViewed: a control character in a path is refused'
    ),
    (
        66, '{"firstName": "Zo\u00eb \u200dJ", "email": "\u00a0ada@example.org\u3000"}'::jsonb,
        null, null,
        'a joiner inside a name and Unicode spaces around an email pass'
    ),
    -- Sizes are bounded by the body, not by the magnitude of what is in it. 8,192 numbers 1e131071
    -- are 74 KB of JSON but would be 1.07 GB as text, over PostgreSQL's 1 GB limit for one value:
    -- a check that printed them would fail with an error instead of answering.
    (
        67, jsonb_build_object('browserInfo', jsonb_build_object(
            'x', (select jsonb_agg('1e131071'::jsonb) from generate_series(1, 8192))
        )),
        'browserInfo',
        'browserInfo may hold only numbers below 10^15 in magnitude, and none closer to 0 than 10^-15 but 0 itself.',
        'browserInfo: huge exponents are refused by magnitude, without turning a number into text'
    ),
    (
        68, '{"browserInfo": {"screen": {"w": 1920, "dpr": 1.5, "t": 1767225600000, "z": 0, "n": -0.25}}}'::jsonb,
        null, null,
        'browserInfo: ordinary numbers pass'
    ),
    (
        69, jsonb_build_object('browserInfo', jsonb_build_object('x', pg_temp.nested(10))),
        'browserInfo', 'browserInfo must be nested at most 10 levels deep.',
        'browserInfo: nesting deeper than 10 levels is refused'
    ),
    (
        70, jsonb_build_object('browserInfo', jsonb_build_object('x', pg_temp.nested(9))),
        null, null,
        'browserInfo: 10 levels pass'
    ),
    (
        71, jsonb_build_object('browserInfo', jsonb_build_object('x', pg_temp.nested(30000))),
        'browserInfo', 'browserInfo must be nested at most 10 levels deep.',
        'browserInfo: 30,000 levels (the deepest 64 KiB allows) are refused after a walk of 11'
    ),
    (
        72, '{"browserInfo": {"ua": "Mozilla\u001b[31m"}}'::jsonb,
        'browserInfo', 'browserInfo must be free of control characters.',
        'browserInfo: a control character in a string is refused'
    ),
    (
        73, '{"browserInfo": {"u\u202ea": "x"}}'::jsonb,
        'browserInfo', 'browserInfo must be free of control characters.',
        'browserInfo: a control character in a key is refused'
    ),
    (
        74, '{"coreWebVitals": {"lcp": 1e131071}}'::jsonb,
        'coreWebVitals.lcp', 'coreWebVitals.lcp must be between 0 and 3600000.',
        'coreWebVitals: a huge exponent is out of range'
    ),
    (
        75, '{"timeOnSite": 1e131071}'::jsonb,
        'timeOnSite', 'timeOnSite must be between 0 and 2147483647.',
        'timeOnSite: a huge exponent is out of range'
    ),
    (
        76, '{"referrer": "x"}'::jsonb,
        'referrer', 'referrer is not a known field.',
        'an unknown field is refused'
    )
) as c (n, body, field, message, description)
order by c.n;

-- Unicode: trimming and the control-character check know more than ASCII.
select is(
    (
        select
            array_agg(
                coalesce(tap.lead_errors(jsonb_build_object('firstName', n)) -> 0 ->> 'message', 'stored')
                order by n
            )
        from unnest(array[
            E'\u00a0\u00a0', E'\u200b', E'\u3000', E'\u202e', E'\u0085', E'\u200b\u00a0\u2060\ufeff'
        ]) as n
    ),
    array_fill('firstName must be between 1 and 100 characters.'::text, array[6]),
    'firstName: NBSP, zero-width space, ideographic space, RTL override, U+0085 or a mix alone trim to nothing'
);
reset role;
select is(
    app_logic.lead_fields(tap.lead('{"firstName": "\u00a0\u200bAda\u3000", "email": "\u2003ada@example.org\ufeff"}'))
    - array[
        'lastName', 'gdprConsent', 'marketingConsent', 'leadSource', 'accessibilityTheme',
        'preferredCommunication'
    ],
    '{"firstName": "Ada", "email": "ada@example.org"}',
    'what is stored is trimmed the same way it was measured'
);
set local role anon;
select is(
    tap.lead_errors('{"browserInfo": {"x": 1e-16383}}') -> 0 ->> 'field', 'browserInfo',
    'browserInfo: a number 16,383 places after the point is refused'
);
select is(
    tap.lead_errors(jsonb_build_object('preferredCommunication', '1e131071'::jsonb, 'phone', '1e131071'::jsonb)),
    '[{"field": "phone", "message": "phone must be a string."},
      {"field": "preferredCommunication", "message": "preferredCommunication must be a string."}]',
    'numbers where text belongs are refused by type, never read as text'
);
select
    is(
        api.submit_lead('[]') -> 'errors',
        tap.one_error('body', 'The request body must be a JSON object.'),
        'a body that is not an object is refused'
    );

select is(
    (
        select jsonb_agg(e -> 'field' order by e ->> 'field')
        from jsonb_array_elements(api.submit_lead('{"email": "x", "deviceType": "tv", "colour": 1}') -> 'errors') as e
    ),
    '["colour", "deviceType", "email", "firstName", "gdprConsent", "lastName"]'::jsonb,
    'several bad fields are all named in one answer'
);
select is(current_setting('response.status'), '400', 'an invalid submission is answered 400');
select is(
    api.submit_lead('{"email": "x", "deviceType": "tv"}') ->> 'message',
    '5 fields are invalid: deviceType, email, firstName, gdprConsent, lastName.',
    'the message names every bad field'
);

reset role;
select is((select count(*)::integer from app.leads), 0, 'no rejected submission stored a lead');
select is((select count(*)::integer from app.consent_audit), 0, 'no rejected submission stored a consent');

-- What a valid submission without a phone calls: the cross-field check is inlined into
-- submit_lead's statement and phone_to_e164 is not called (an SQL function the planner could not
-- inline, or a PL/pgSQL one, is counted).
set local track_functions = 'all';
select is(api.submit_lead(tap.lead()), '{"status": "received"}', 'a valid lead without a phone is received');
select is(
    (
        select array_agg(f.funcname::text order by f.funcname) from pg_stat_xact_user_functions as f
        where f.funcname in ('submit_lead_checks', 'submit_lead_checks_pass', 'phone_to_e164', 'submit_lead_passes_sure')
    ),
    null,
    'a valid lead without a phone calls neither the checks, nor phone_to_e164, nor the sure test'
);

select * from finish();
rollback;
