-- Donor figures for the summary, kept like daily_totals: unique and new donors per period,
-- and per period and band (each donor's band is set by their net giving in that calendar
-- year and currency), with the small-donor threshold line beside the bands.

alter table plans add column started_at timestamptz;

create table period_donor_totals (
    currency text not null,
    -- day, week, month or year
    period_kind text not null,
    period_start date not null,
    band text not null,
    -- the donor's yearly net is at or under SMALL_DONOR_THRESHOLD
    small boolean not null,
    donors bigint not null default 0,
    gifts bigint not null default 0,
    net bigint not null default 0,
    new_donors bigint not null default 0,
    primary key (currency, period_kind, period_start, band, small)
);

-- What the given donors (or everyone) add to period_donor_totals. `band_floors` ascending,
-- in minor units, named by `band_names`; a yearly net below the first floor falls in the
-- first band.
create function donor_contributions(
    tz text, everything boolean, donor_ids uuid[], band_floors bigint[], band_names text[], threshold bigint
) returns table (currency text, period_kind text, period_start date, band text, small boolean,
                 donors bigint, gifts bigint, net bigint, new_donors bigint)
language sql stable as $$
    with activity as (
        select g.donor_id, g.currency, (g.paid_at at time zone tz)::date as day, 1 as gifts, g.amount as net
        from gifts g
        where g.state = 'paid' and g.donor_id is not null and (everything or g.donor_id = any(donor_ids))
        union all
        select g.donor_id, r.currency, (r.created at time zone tz)::date, 0, -r.amount
        from refunds r join gifts g on g.payment_intent_id = r.payment_intent_id and g.state = 'paid'
        where r.status = 'succeeded' and g.donor_id is not null and (everything or g.donor_id = any(donor_ids))
        union all
        select g.donor_id, x.currency, (x.status_at at time zone tz)::date, 0, -x.amount
        from disputes x join gifts g on g.payment_intent_id = x.payment_intent_id and g.state = 'paid'
        where x.status = 'lost' and g.donor_id is not null and (everything or g.donor_id = any(donor_ids))
    ),
    years as (
        select donor_id, currency, extract(year from day)::int as year, sum(net) as year_net
        from activity group by 1, 2, 3
    ),
    firsts as (
        select distinct on (donor_id) donor_id, currency, day
        from activity where gifts > 0
        order by donor_id, day, currency
    ),
    tagged as (
        select a.donor_id, a.currency, a.day, a.gifts, a.net,
               coalesce((select band_names[i] from generate_subscripts(band_floors, 1) as i
                         where y.year_net >= band_floors[i] order by i desc limit 1), band_names[1]) as band,
               y.year_net <= threshold as small,
               coalesce(f.currency = a.currency and f.day = a.day, false) and a.gifts > 0 as first_gift
        from activity a
        join years y on y.donor_id = a.donor_id and y.currency = a.currency and y.year = extract(year from a.day)::int
        left join firsts f on f.donor_id = a.donor_id
    ),
    periods as (
        select t.*, iv.name as period_kind,
               case iv.name when 'day' then t.day else date_trunc(iv.name, t.day)::date end as period_start
        from tagged t cross join (values ('day'), ('week'), ('month'), ('year')) as iv(name)
    )
    select p.currency, p.period_kind, p.period_start, p.band, p.small,
           count(distinct p.donor_id) filter (where p.gifts > 0),
           sum(p.gifts)::bigint, sum(p.net)::bigint,
           count(distinct p.donor_id) filter (where p.first_gift)
    from periods p
    group by 1, 2, 3, 4, 5
$$;
