-- lock_touched in three statements instead of five (each statement of a plpgsql function is
-- a query of its own, run on every delivery): the plan cache setting goes with the first
-- locks, and the touched donors are found in the statement that takes the second locks.
-- What it locks, in what order, and what it answers are unchanged (migration 0018). The
-- answer is still read by a statement of its own, after every lock is held: a statement's
-- snapshot is taken when it starts, so one that waited for a lock would not see what the
-- rival it waited for committed.
create or replace function lock_touched(keys text[], pis text[], invoices text[], sessions text[],
                                        gift_ids uuid[], customers text[], emails text[],
                                        subscriptions text[])
returns boolean
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
    return exists (select 1 from gifts
                   where state = 'paid'
                     and (payment_intent_id = any(pis) or invoice_id = any(invoices)
                          or checkout_session_id = any(sessions) or id = any(gift_ids)))
        or exists (select 1 from gifts where donor_id = any(donors) and state = 'paid')
        or exists (select 1 from plans where subscription_id = any(subscriptions));
end
$$;
