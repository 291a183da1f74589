-- lock_touched answers how much was known about what an event touches, not only whether it
-- had figures: 2 = it had figures (a paid gift reached, a touched donor with paid gifts, a
-- plan); 1 = no figures, but rows the figures would read (a charge, refund or dispute of a
-- touched payment intent, a touched donor's kept gap); 0 = neither. At 0, the figures after a
-- one-time payment come only from the gift row its own statement writes, so the recording
-- transaction takes them from that statement instead of reading them back (one statement
-- fewer for a new reader's gift, the commonest event). Locks and their order are unchanged
-- (migrations 0018, 0020).
drop function lock_touched(text[], text[], text[], text[], uuid[], text[], text[], text[]);

create function lock_touched(keys text[], pis text[], invoices text[], sessions text[],
                             gift_ids uuid[], customers text[], emails text[],
                             subscriptions text[])
returns integer
language plpgsql as $$
declare
    donors uuid[];
begin
    -- unnest yields the keys in order, and each row's lock is taken as it is read.
    perform set_config('plan_cache_mode', 'force_generic_plan', true),
            (select count(pg_advisory_xact_lock(hashtextextended(k, 7))) from unnest(keys) as k);
    with found as materialized (
        select array(select distinct donor_id
                     from touched_donors(pis, invoices, sessions, gift_ids, customers, emails)) as ids
    )
    select f.ids into donors
    from found f,
         lateral (select count(pg_advisory_xact_lock(hashtextextended(k, 7)))
                  from (select distinct k from (
                            select 'payment:' || payment_intent_id as k from gifts
                            where payment_intent_id is not null
                              and (invoice_id = any(invoices) or checkout_session_id = any(sessions)
                                   or id = any(gift_ids))
                            union all
                            select 'donor:' || d from unnest(f.ids) as d) linked
                        where k is not null and not (k = any(keys))
                        order by 1) ordered) taken;
    -- A statement of its own, after every lock is held (its snapshot sees what rivals committed).
    return case
        when exists (select 1 from gifts
                     where state = 'paid'
                       and (payment_intent_id = any(pis) or invoice_id = any(invoices)
                            or checkout_session_id = any(sessions) or id = any(gift_ids)))
          or exists (select 1 from gifts where donor_id = any(donors) and state = 'paid')
          or exists (select 1 from plans where subscription_id = any(subscriptions))
        then 2
        when exists (select 1 from charges where payment_intent_id = any(pis))
          or exists (select 1 from refunds where payment_intent_id = any(pis))
          or exists (select 1 from disputes where payment_intent_id = any(pis))
          or exists (select 1 from donor_gaps where donor_id = any(donors))
        then 1
        else 0
    end;
end
$$;
