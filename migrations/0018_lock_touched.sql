-- The recording transaction's locks in one call instead of three statements, and whether
-- anything the event touches had figures before it: when nothing did (a new reader's first
-- gift, the commonest event), the "before" reads are skipped, since they would find nothing.
--
-- keys: the sorted payment, customer, email and subscription keys the event names; locked in
-- that order, then (once held, so that a rival's links are visible) the payment intents of
-- gifts reached by another key and the donors of everything touched.
create function lock_touched(keys text[], pis text[], invoices text[], sessions text[],
                             gift_ids uuid[], customers text[], emails text[],
                             subscriptions text[])
returns boolean
language plpgsql as $$
declare
    donors uuid[];
begin
    -- The contribution reads that follow are inlined SQL functions whose custom plans took
    -- ten times longer to make than to run: one generic plan each per connection.
    perform set_config('plan_cache_mode', 'force_generic_plan', true);
    -- unnest yields the keys in order, and each row's lock is taken as it is read.
    perform pg_advisory_xact_lock(hashtextextended(k, 7)) from unnest(keys) as k;
    -- Found once the first locks are held, then both locked and checked for figures.
    donors := array(select distinct donor_id
                    from touched_donors(pis, invoices, sessions, gift_ids, customers, emails));
    perform pg_advisory_xact_lock(hashtextextended(k, 7))
    from (select distinct k from (
              select 'payment:' || payment_intent_id as k from gifts
              where payment_intent_id is not null
                and (invoice_id = any(invoices) or checkout_session_id = any(sessions) or id = any(gift_ids))
              union all
              select 'donor:' || d from unnest(donors) as d) found
          where k is not null and not (k = any(keys))
          order by 1) linked;
    -- Figures come only from paid gifts (and the refunds and disputes of paid gifts) reached by
    -- these keys or belonging to these donors, and from these subscriptions' plans.
    return exists (select 1 from gifts
                   where state = 'paid'
                     and (payment_intent_id = any(pis) or invoice_id = any(invoices)
                          or checkout_session_id = any(sessions) or id = any(gift_ids)))
        or exists (select 1 from gifts where donor_id = any(donors) and state = 'paid')
        or exists (select 1 from plans where subscription_id = any(subscriptions));
end
$$;
