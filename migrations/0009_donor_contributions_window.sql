-- The first version found each donor's first gift by joining a per-donor list, which the
-- planner, misjudging the list's size, ran as a nested loop: minutes at a million gifts.
-- The first gift is now the first row of a window over the donor's gifts.
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
    )
    select p.currency, p.period_kind, p.period_start, p.band, p.small,
           count(distinct p.donor_id) filter (where p.gifts > 0),
           sum(p.gifts)::bigint, sum(p.net)::bigint,
           count(distinct p.donor_id) filter (where p.first_gift)
    from periods p
    group by 1, 2, 3, 4, 5
$$;
