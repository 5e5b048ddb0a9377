-- Lead ids are time-ordered (UUID version 7, RFC 9562): 48 bits of Unix time in milliseconds,
-- then the random bits of gen_random_uuid() with the version set to 7. New ids land at the right
-- edge of leads_pkey and of lead_interactions_lead_idx instead of on random leaf pages, so a
-- submission's cost stays flat as leads accumulate (README: Benchmarks, cost growth). The time
-- an id shows is the lead's createdAt, which its readers see anyway. Existing ids stay as they are.
alter table app.leads alter column id set default encode(
    -- Bits 52 and 53 turn version 4 (0100) into 7 (0111); the variant bits stay RFC 9562's.
    set_bit(
        set_bit(
            substr(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint), 3)
            || substr(uuid_send(gen_random_uuid()), 7),
            52, 1
        ),
        53, 1
    ),
    'hex'
)::uuid;
