-- The median gift and the plan figures become kept figures instead of scans per summary.

-- Paid gifts counted by amount, per currency, campaign and day, and again per month so that a
-- year by month reads twelve months of rows, not 365 days. Kept by difference and spread over
-- slots like daily_totals (a rebuild writes slot 0).
create table gift_amounts (
    currency text not null,
    -- day or month
    period_kind text not null check (period_kind in ('day', 'month')),
    period_start date not null,
    campaign text not null default '',
    amount bigint not null,
    slot smallint not null default 0,
    gifts bigint not null,
    primary key (currency, period_kind, period_start, campaign, amount, slot)
);

-- What plans add, per day (in the reporting time zone), currency and campaign: a started plan
-- +1 active and its monthly revenue on its start day, the same taken away on the day it is
-- both started and cancelled, and +1 cancellation on its cancellation day. Active plans and
-- MRR at a period's end are the sums over the days before it.
create table plan_days (
    day date not null,
    currency text not null,
    campaign text not null default '',
    slot smallint not null default 0,
    active bigint not null default 0,
    mrr bigint not null default 0,
    cancellations bigint not null default 0,
    primary key (currency, day, campaign, slot)
);

-- What the given subscriptions (or every plan) add to plan_days.
create function plan_contributions(tz text, everything boolean, subscription_ids text[])
returns table (day date, currency text, campaign text, active bigint, mrr bigint, cancellations bigint)
language sql stable as $$
    with p as (
        select (started_at at time zone tz)::date as started, (canceled_at at time zone tz)::date as canceled,
               currency, coalesce(campaign, '') as campaign,
               case when interval = 'year' then amount / 12 else amount end as mrr
        from plans
        where everything or subscription_id = any(subscription_ids)
    )
    select started, currency, campaign, 1::bigint, mrr, 0::bigint from p where started is not null
    union all
    select greatest(started, canceled), currency, campaign, -1::bigint, -mrr, 0::bigint
    from p where started is not null and canceled is not null
    union all
    select canceled, currency, campaign, 0::bigint, 0::bigint, 1::bigint from p where canceled is not null
$$;
