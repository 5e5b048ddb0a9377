-- Leads: validation helpers, submission and reading (issue 3).

-- Phone numbers: the common international spellings (spaces, dashes, dots, brackets, a
-- leading 00) become E.164. A number without a country code cannot be normalised safely.
create function app_logic.phone_to_e164(p_raw text, out e164 text, out problem text)
language plpgsql immutable
as $$
declare
    v_digits text := regexp_replace(p_raw, '[[:space:]().\-/]', '', 'g');
begin
    if v_digits ~ '^00' then
        v_digits := '+' || substr(v_digits, 3);
    end if;
    if v_digits !~ '^\+' then
        problem := 'must start with a country code, such as +44 or 0044.';
    elsif v_digits !~ '^\+[1-9][0-9]{6,14}$' then
        problem := 'must be an international phone number of 7 to 15 digits.';
    else
        e164 := v_digits;
    end if;
end
$$;
comment on function app_logic.phone_to_e164(text) is
'E.164 form of a phone number, or the reason it cannot be one (problem).';
