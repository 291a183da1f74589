-- Gifts and plans whose donor is not known yet, by Stripe customer. When an event tells a
-- customer's email, `record_donor` joins them to its donor: that update read every gift (24 ms
-- at 117,000 gifts, growing with the ledger) and now reads this index (0.08 ms). Such gifts
-- are few: those told by an event that named a customer but no email.
create index gifts_customer_without_donor on gifts (customer_id)
    where donor_id is null and customer_id is not null;
create index plans_customer_without_donor on plans (customer_id)
    where donor_id is null and customer_id is not null;

-- lock_touched also locks the payments of those gifts: the event that joins one to its donor
-- changes that donor's figures through it, so a rival event about the same payment (its
-- charge's fee, a refund) must not read the gift's figures with the donor before and after
-- without waiting for it. Otherwise unchanged from migration 0021.
create or replace function lock_touched(keys text[], pis text[], invoices text[], sessions text[],
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
                                   or id = any(gift_ids)
                                   or (customer_id = any(customers) and donor_id is null))
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
