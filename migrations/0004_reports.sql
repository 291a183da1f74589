-- Staff access and the kept aggregates behind the finance summary.

create table staff (
    name text primary key,
    role text not null check (role in ('viewer', 'finance', 'admin')),
    -- sha256 of the token; the token itself is shown once and never stored
    token_hash text not null unique,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

-- Who looked at personal data, what, and when.
create table audit_log (
    id bigserial primary key,
    staff_name text not null,
    action text not null,
    subject text,
    at timestamptz not null default now()
);

-- Money per calendar day (in the reporting time zone), currency, campaign and kind, kept
-- current by the transaction that records each gift, refund or dispute: the day's row is
-- recomputed from the ledger in that transaction, so it always equals a recomputation.
create table daily_totals (
    day date not null,
    currency text not null,
    campaign text not null default '',
    -- one_time or recurring
    kind text not null check (kind in ('one_time', 'recurring')),
    gross bigint not null default 0,
    gifts bigint not null default 0,
    refunded bigint not null default 0,
    disputed bigint not null default 0,
    fees bigint not null default 0,
    primary key (day, currency, campaign, kind)
);

-- What each ledger row adds to the daily totals: a paid gift its gross, count and fee on its
-- paid day; a succeeded refund and a lost dispute their amounts on the day they happened,
-- under their gift's campaign and kind. `everything` for a rebuild; otherwise only rows
-- reached from the given payment intents, invoices, sessions or gift ids.
create function ledger_contributions(
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
    )
    select (g.paid_at at time zone tz)::date, g.currency, coalesce(g.campaign, ''),
           case when g.frequency = 'once' then 'one_time' else 'recurring' end,
           g.amount, 1::bigint, 0::bigint, 0::bigint,
           coalesce((select c.fee from charges c where c.payment_intent_id = g.payment_intent_id
                     order by c.created, c.charge_id limit 1), 0)
    from g
    union all
    select (r.created at time zone tz)::date, r.currency, coalesce(p.campaign, ''),
           case when p.frequency = 'once' then 'one_time' else 'recurring' end,
           0, 0, r.amount, 0, 0
    from refunds r join gifts p on p.payment_intent_id = r.payment_intent_id and p.state = 'paid'
    where r.status = 'succeeded'
      and (everything or r.payment_intent_id in (select payment_intent_id from reached))
    union all
    select (x.status_at at time zone tz)::date, x.currency, coalesce(p.campaign, ''),
           case when p.frequency = 'once' then 'one_time' else 'recurring' end,
           0, 0, 0, x.amount, 0
    from disputes x join gifts p on p.payment_intent_id = x.payment_intent_id and p.state = 'paid'
    where x.status = 'lost'
      and (everything or x.payment_intent_id in (select payment_intent_id from reached))
$$;
