-- The OpenAPI document: built from the route table, the rule functions and the api views.
begin;
select plan(18);

-- A route of our own, with its function, its rule and a view, so the test does not depend on
-- which endpoints exist in this build.
create function api.openapi_probe(jsonb) returns jsonb
language sql volatile as $$ select '{}'::jsonb $$;
comment on function api.openapi_probe(jsonb) is 'A probe endpoint.';
create function app_logic.openapi_probe_rule() returns jsonb
language sql immutable as $$
    select '{
        "type": "object", "additionalProperties": false, "required": ["email"],
        "properties": {
            "email": {"type": "email", "maxLength": 254, "description": "Address."},
            "phone": {"type": "phone", "description": "Phone."},
            "name": {"type": "string", "trim": true, "minLength": 1, "maxLength": 100, "description": "Name."},
            "slug": {"type": "string", "pattern": "^[a-z]+$", "patternText": "lower-case letters", "description": "Slug."},
            "agree": {"type": "boolean", "const": true, "description": "Consent."},
            "info": {"type": "object", "maxBytes": 4096, "description": "Anything."},
            "pages": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 5}, "description": "Paths."}
        }
    }'::jsonb
$$;
create view api.openapi_probe_rows with (security_invoker = true) as
select
    1::bigint as id,
    'x'::text as "firstName",
    now() as "createdAt";
comment on view api.openapi_probe_rows is 'Probe rows.';
comment on column api.openapi_probe_rows."firstName" is 'First name.';

create temporary table probe_doc on commit drop as
select app_logic.openapi_document('[
    {"method": "POST", "path": "/api/probe", "target": "/rpc/openapi_probe", "key": "none", "success": [201],
     "rate_limit": "probe"},
    {"method": "GET", "path": "/api/probe", "target": "/openapi_probe_rows", "key": "reader", "success": [200, 206]}
]'::jsonb) as doc;

select is(
    (select doc ->> 'openapi' from probe_doc), '3.0.3',
    'the document declares OpenAPI 3.0.3'
);
select is(
    (select array_agg(k.k order by k.k) from probe_doc as p cross join jsonb_object_keys(p.doc #> '{paths,/api/probe}') as k (k)),
    array['get', 'post'],
    'both routes of the path are documented'
);
select throws_ok(
    $$ select app_logic.openapi_document('[{"method": "POST", "path": "/api/missing",
        "target": "/rpc/openapi_missing", "key": "admin", "success": [201]}]'::jsonb) $$,
    'CHX03', 'route POST /api/missing names api.openapi_missing, which does not exist',
    'a route whose api object is missing is an error, not a shorter document'
);
select is(
    (select doc #> '{paths,/api/probe,post,responses}' from probe_doc) ? '429'
    and not (
        app_logic.openapi_document('[{"method": "POST", "path": "/api/probe", "target": "/rpc/openapi_probe",
            "key": "none", "success": [201], "rate_limit": null}]'::jsonb) #> '{paths,/api/probe,post,responses}'
    ) ? '429',
    true,
    'a POST documents 429 exactly when the route counts against a rate limit'
);
-- How each rule word reaches the OpenAPI schema: every probe field's whole translation (an
-- optional field is nullable).
select is(p.doc #> array['components', 'schemas', 'openapi_probe_body', 'properties', t.field], t.schema, t.description)
from probe_doc as p
cross join (
    values
    (
        1, 'email', '{"type": "string", "format": "email", "maxLength": 254, "description": "Address."}'::jsonb,
        'an email rule becomes a string of format email'
    ),
    (
        2, 'phone', '{"type": "string", "nullable": true, "description": "Phone."}',
        'a phone rule becomes a string, nullable because it is optional'
    ),
    (
        3, 'name', '{"type": "string", "nullable": true, "minLength": 1, "maxLength": 100, "description": "Name."}',
        'trim is not an OpenAPI word and is dropped'
    ),
    (
        4, 'slug',
        '{"type": "string", "pattern": "^[a-z]+$", "nullable": true, "description": "Slug. Must be lower-case letters."}',
        'patternText is folded into the description'
    ),
    (
        5, 'agree', '{"type": "boolean", "enum": [true], "nullable": true, "description": "Consent."}',
        'const becomes a one-value enum (OpenAPI 3.0 has no const)'
    ),
    (
        6, 'info', '{"type": "object", "nullable": true, "description": "Anything. At most 4096 bytes of JSON."}',
        'maxBytes is folded into the description'
    ),
    (
        7, 'pages',
        '{"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 5}, "nullable": true,
          "description": "Paths."}',
        'array items are translated too'
    )
) as t (position, field, schema, description)
order by t.position;
-- The rest of the document, by where it stands.
select is(p.doc #> t.path, t.expected, t.description)
from probe_doc as p
cross join (
    values
    (1, '{components,schemas,openapi_probe_body,required}'::text[], '["email"]'::jsonb, 'required fields are kept'),
    (2, '{paths,/api/probe,post,responses,429,$ref}', '"#/components/responses/TooManyRequests"', 'a POST documents 429'),
    (
        3, '{components,responses,TooManyRequests,headers,Retry-After}',
        '{"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait before trying again."}',
        'the 429 response documents Retry-After, in whole seconds'
    ),
    (4, '{paths,/api/probe,get,security}', '[{"ApiKey": []}]', 'a reader route needs the X-API-Key scheme'),
    (
        5, '{components,schemas,openapi_probe_rows,properties,firstName}',
        '{"type": "string", "nullable": true, "description": "First name."}',
        'view columns are described with their type and comment'
    )
) as t (position, path, expected, description)
order by t.position;

select ok(
    has_function_privilege('anon', 'api.openapi()', 'execute'),
    'anon may fetch the document'
);
select ok(
    not has_function_privilege('public', 'api.openapi()', 'execute'),
    'PUBLIC holds no EXECUTE on api.openapi() (granted per role)'
);

select * from finish();
rollback;
