-- Retention and the range's unique donors become kept figures instead of scans of every gift
-- on each summary.
--
-- donor_contributions also emits, per donor and currency (donors = 1 each, summed like the
-- rest, so the recording path keeps them by the same difference):
--   'retention' rows at 1 January of a year, band retained | new | recovered | lapsed;
--   'first' and 'last' rows on the day of the donor's first and last paid gift.
-- Unique donors with a paid gift in [F, T] = first <= T, minus last < F, minus those with two
-- consecutive gift days around the whole range (donor_gaps below).
create or replace function donor_contributions(
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

-- Each donor's gaps between consecutive paid-gift days (per currency, days in the reporting
-- time zone) at least two days apart: the donors who gave before a range and after it but
-- not in it. Kept whole per donor by the recording transaction (which holds the donor's
-- locks), not by difference. No unique key: the keeping statement deletes and inserts in one
-- snapshot.
create table donor_gaps (
    donor_id uuid not null,
    currency text not null,
    after_day date not null,
    before_day date not null
);
create index donor_gaps_donor on donor_gaps (donor_id);
-- "after_day < F and before_day > T" is daterange(after_day, before_day, '()') @> [F, T].
create index donor_gaps_span on donor_gaps using gist (daterange(after_day, before_day, '()'));

-- The gaps of the given donors (or everyone).
create function donor_gaps_of(tz text, everything boolean, donor_ids uuid[])
returns table (donor_id uuid, currency text, after_day date, before_day date)
language sql stable as $$
    select donor_id, currency, day, next_day
    from (select donor_id, currency, day,
                 lead(day) over (partition by donor_id, currency order by day) as next_day
          from (select distinct g.donor_id, g.currency, (g.paid_at at time zone tz)::date as day
                from gifts g
                where g.state = 'paid' and g.donor_id is not null
                  and (everything or g.donor_id = any(donor_ids))) d) x
    where next_day > day + 1
$$;
