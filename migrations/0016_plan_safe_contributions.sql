-- The recording transaction's reads of what a payment or a donor contributes now keep one
-- generic plan per connection (see `aggregates::plan_once`), so their SQL must be good for
-- any argument: a refund or dispute joined to the touched gifts is probed by its payment
-- intent, never found by scanning every refund (which a hash join with a generic estimate
-- of the touched rows would do). Rebuilds (`everything`) keep their joins in branches of
-- their own; a call with a literal `false` plans those branches away.

create or replace function donor_contributions(
    tz text, everything boolean, donor_ids uuid[], band_floors bigint[], band_names text[], threshold bigint
) returns table (currency text, period_kind text, period_start date, band text, small boolean,
                 donors bigint, gifts bigint, net bigint, new_donors bigint)
language sql stable as $$
    -- paid gifts (+1 gift, +amount), succeeded refunds and lost disputes (-amount)
    with activity as (
        select g.donor_id, g.currency, (g.paid_at at time zone tz)::date as day, 1 as gifts, g.amount as net
        from gifts g
        where g.state = 'paid' and g.donor_id is not null and (everything or g.donor_id = any(donor_ids))
        union all
        select g.donor_id, r.currency, (r.created at time zone tz)::date, 0, -r.amount
        from gifts g
        cross join lateral (select r.currency, r.created, r.amount from refunds r
                            where r.payment_intent_id = g.payment_intent_id and r.status = 'succeeded'
                            offset 0) r
        where not everything and g.state = 'paid' and g.donor_id = any(donor_ids)
        union all
        select g.donor_id, x.currency, (x.status_at at time zone tz)::date, 0, -x.amount
        from gifts g
        cross join lateral (select x.currency, x.status_at, x.amount from disputes x
                            where x.payment_intent_id = g.payment_intent_id and x.status = 'lost'
                            offset 0) x
        where not everything and g.state = 'paid' and g.donor_id = any(donor_ids)
        union all
        select g.donor_id, r.currency, (r.created at time zone tz)::date, 0, -r.amount
        from refunds r join gifts g on g.payment_intent_id = r.payment_intent_id and g.state = 'paid'
        where everything and r.status = 'succeeded' and g.donor_id is not null
        union all
        select g.donor_id, x.currency, (x.status_at at time zone tz)::date, 0, -x.amount
        from disputes x join gifts g on g.payment_intent_id = x.payment_intent_id and g.state = 'paid'
        where everything and x.status = 'lost' and g.donor_id is not null
    ),
    years as (
        select donor_id, currency, extract(year from day)::int as year, sum(net) as year_net
        from activity group by 1, 2, 3
    ),
    tagged as (
        select a.donor_id, a.currency, a.day, a.gifts, a.net,
               coalesce((select band_names[i] from generate_subscripts(band_floors, 1) as i
                         where y.year_net >= band_floors[i] order by i desc limit 1), band_names[1]) as band,
               y.year_net <= threshold as small,
               a.gifts > 0 and a.gift_rank = 1 as first_gift
        from (select activity.*,
                     row_number() over (partition by donor_id, gifts > 0 order by day, currency) as gift_rank
              from activity) a
        join years y on y.donor_id = a.donor_id and y.currency = a.currency and y.year = extract(year from a.day)::int
    ),
    periods as (
        select t.*, iv.name as period_kind,
               case iv.name when 'day' then t.day else date_trunc(iv.name, t.day)::date end as period_start
        from tagged t cross join (values ('day'), ('week'), ('month'), ('year')) as iv(name)
    ),
    -- Years with a paid gift, per donor and currency, with the years given before and after.
    given as (
        select donor_id, currency, year,
               lag(year) over w as prev_year, lead(year) over w as next_year
        from (select distinct donor_id, currency, extract(year from day)::int as year
              from activity where gifts > 0) d
        window w as (partition by donor_id, currency order by year)
    ),
    retention as (
        select currency, year,
               case when prev_year = year - 1 then 'retained'
                    when prev_year is null then 'new'
                    else 'recovered' end as band
        from given
        union all
        select currency, year + 1, 'lapsed' from given where next_year is distinct from year + 1
    ),
    spans as (
        select donor_id, currency, min(day) as first_day, max(day) as last_day
        from activity where gifts > 0 group by 1, 2
    )
    select p.currency, p.period_kind, p.period_start, p.band, p.small,
           count(distinct p.donor_id) filter (where p.gifts > 0),
           sum(p.gifts)::bigint, sum(p.net)::bigint,
           count(distinct p.donor_id) filter (where p.first_gift)
    from periods p
    group by 1, 2, 3, 4, 5
    union all
    select currency, 'retention', make_date(year, 1, 1), band, false, count(*), 0, 0, 0
    from retention group by 1, 3, 4
    union all
    select currency, 'first', first_day, '', false, count(*), 0, 0, 0 from spans group by 1, 3
    union all
    select currency, 'last', last_day, '', false, count(*), 0, 0, 0 from spans group by 1, 3
$$;

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
    )
    select (g.paid_at at time zone tz)::date, g.currency, coalesce(g.campaign, ''),
           case when g.frequency = 'once' then 'one_time' else 'recurring' end,
           g.amount, 1::bigint, 0::bigint, 0::bigint,
           coalesce((select c.fee from charges c where c.payment_intent_id = g.payment_intent_id
                     order by c.created, c.charge_id limit 1), 0)
    from g
    union all
    select (t.at at time zone tz)::date, t.currency, coalesce(p.campaign, ''),
           case when p.frequency = 'once' then 'one_time' else 'recurring' end,
           0, 0, t.refunded, t.disputed, 0
    from taken t join gifts p on p.payment_intent_id = t.payment_intent_id and p.state = 'paid'
$$;
