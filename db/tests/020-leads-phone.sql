-- Leads: phone numbers in their common spellings become E.164; the ITU country codes.
begin;
select plan(9);

-- Phone spellings.
select is((app_logic.phone_to_e164('+1 (415) 555-2671')).e164, '+14155552671', 'phone: brackets and dashes');
select is((app_logic.phone_to_e164('+1.415.555.2671')).e164, '+14155552671', 'phone: dots');
select is((app_logic.phone_to_e164('0049 30/1234567')).e164, '+49301234567', 'phone: a leading 00 and a slash');
select is((app_logic.phone_to_e164('+44 (0) 20 7946 0958')).e164, '+442079460958', 'phone: the British (0) is dropped');
select is((app_logic.phone_to_e164(E'+33\u00a01\u201342 68 53 00')).e164, '+33142685300', 'phone: typographic spaces and dashes');
select is((app_logic.phone_to_e164('+683 4002')).e164, '+6834002', 'phone: a short number of Niue');
select
    is(
        (app_logic.phone_to_e164('+259 1234567')).problem,
        'starts with +259, which is not an ITU country code.',
        'phone: a spare code is refused'
    );
select is(app_logic.itu_country_code('4420'), '44', 'the country code of +4420... is 44');
select is(app_logic.itu_country_code('35312'), '353', 'the country code of +35312... is 353');


select * from finish();
rollback;
