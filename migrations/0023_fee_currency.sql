-- A charge's fee is in the currency of its balance transaction: the account's settlement
-- currency, which for a converted gift is not the gift's (a EUR gift on a USD account pays
-- its fee in USD). It was counted under the gift's currency, subtracting cents of one
-- currency from another. charges.fee_currency keeps it (null: told before this, taken as the
-- charge's), and the kept fees count each fee in its own currency, on its gift's day.
alter table charges add column fee_currency text;

create or replace function ledger_contributions(
    tz text, everything boolean, pis text[], invoices text[], sessions text[], gift_ids uuid[]
) returns table (day date, currency text, campaign text, kind text,
                 gross bigint, gifts bigint, refunded bigint, disputed bigint, fees bigint)
language sql stable as $$
    with g as (
        select * from gifts
        where state = 'paid'
          and (everything or payment_intent_id = any(pis) or invoice_id = any(invoices)
               or checkout_session_id = any(sessions) or id = any(gift_ids))
    ),
    reached as (
        select payment_intent_id from g where payment_intent_id is not null
        union select unnest(pis)
    ),
    -- refunds and lost disputes of the reached payments (probed), or all of them (rebuild)
    taken as (
        select r.payment_intent_id, r.created as at, r.currency, r.amount as refunded, 0::bigint as disputed
        from reached x
        cross join lateral (select * from refunds r
                            where r.payment_intent_id = x.payment_intent_id and r.status = 'succeeded'
                            offset 0) r
        where not everything
        union all
        select d.payment_intent_id, d.status_at, d.currency, 0, d.amount
        from reached x
        cross join lateral (select * from disputes d
                            where d.payment_intent_id = x.payment_intent_id and d.status = 'lost'
                            offset 0) d
        where not everything
        union all
        select payment_intent_id, created, currency, amount, 0 from refunds
        where everything and status = 'succeeded'
        union all
        select payment_intent_id, status_at, currency, 0, amount from disputes
        where everything and status = 'lost'
    ),
    -- each paid gift with its first charge's fee, looked up once
    charged as (
        select (g.paid_at at time zone tz)::date as day, g.currency, coalesce(g.campaign, '') as campaign,
               case when g.frequency = 'once' then 'one_time' else 'recurring' end as kind,
               g.amount, coalesce(c.fee, 0) as fee, coalesce(c.fee_currency, g.currency) as fee_currency
        from g
        left join lateral (select c.fee, c.fee_currency from charges c
                           where c.payment_intent_id = g.payment_intent_id
                           order by c.created, c.charge_id limit 1) c on true
    )
    select day, currency, campaign, kind, amount, 1::bigint, 0::bigint, 0::bigint,
           case when fee_currency = currency then fee else 0 end
    from charged
    union all
    -- a fee Stripe took in another currency (the account's, for a gift it converted) counts
    -- there, on the gift's day
    select day, fee_currency, campaign, kind, 0, 0, 0, 0, fee
    from charged
    where fee_currency <> currency and fee <> 0
    union all
    select (t.at at time zone tz)::date, t.currency, coalesce(p.campaign, ''),
           case when p.frequency = 'once' then 'one_time' else 'recurring' end,
           0, 0, t.refunded, t.disputed, 0
    from taken t join gifts p on p.payment_intent_id = t.payment_intent_id and p.state = 'paid'
$$;
