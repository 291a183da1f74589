-- The ledger: donors apart from gifts (so an erasure removes personal data and keeps the
-- money), plans for recurring gifts, one row per gift, refunds and disputes by Stripe id.
-- Money is always bigint minor units plus a currency; never a float.

create table donors (
    id uuid primary key,
    -- normalized (trimmed, lowercased); null once erased
    email text unique,
    name text,
    country text,
    created_at timestamptz not null default now()
);

-- Every Stripe customer seen for a donor.
create table donor_customers (
    customer_id text primary key,
    donor_id uuid not null references donors (id),
    created_at timestamptz not null default now()
);

create table plans (
    id uuid primary key,
    subscription_id text not null unique,
    donor_id uuid references donors (id),
    customer_id text,
    amount bigint not null check (amount >= 0),
    currency text not null,
    interval text not null check (interval in ('month', 'year')),
    status text not null,
    -- Stripe's `created` of the event that set the status: an older event never overwrites it.
    status_at timestamptz not null,
    canceled_at timestamptz,
    cancel_reason text,
    campaign text,
    origin text not null check (origin in ('checkout', 'stripe')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table gifts (
    id uuid primary key,
    -- pending: waiting for Checkout; paid; failed (bank debit failed); expired;
    -- checkout_failed: Stripe refused or was unreachable when we created the session.
    state text not null check (state in ('pending', 'paid', 'failed', 'expired', 'checkout_failed')),
    amount bigint not null check (amount > 0),
    currency text not null,
    -- the part of `amount` the donor added to cover processing fees
    covered_fee bigint not null default 0 check (covered_fee >= 0),
    frequency text not null check (frequency in ('once', 'monthly', 'yearly')),
    -- checkout: started at our form; stripe: seen only through Stripe (Payment Link, dashboard)
    origin text not null check (origin in ('checkout', 'stripe')),
    campaign text,
    utm_source text,
    utm_medium text,
    utm_campaign text,
    dedication text,
    -- business keys: one gift per payment whichever events tell us about it
    checkout_session_id text unique,
    payment_intent_id text unique,
    invoice_id text unique,
    plan_id uuid references plans (id),
    donor_id uuid references donors (id),
    customer_id text,
    paid_at timestamptz,
    failure text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index gifts_paid_at on gifts (paid_at) where state = 'paid';
create index gifts_plan on gifts (plan_id);

-- Each charge's fee and net from its balance transaction, joined to its gift through the
-- payment intent: a charge may be told before or after the gift it pays.
create table charges (
    charge_id text primary key,
    payment_intent_id text,
    amount bigint not null,
    currency text not null,
    balance_transaction_id text,
    fee bigint,
    net bigint,
    created timestamptz not null,
    updated_at timestamptz not null default now()
);
create index charges_payment_intent on charges (payment_intent_id);

-- Refunds and disputes point at the payment by its Stripe ids, not at our gift row, so one
-- that arrives before its gift is kept and joins the gift when it lands.
create table refunds (
    refund_id text primary key,
    charge_id text,
    payment_intent_id text,
    amount bigint not null check (amount >= 0),
    currency text not null,
    status text not null,
    created timestamptz not null,
    updated_at timestamptz not null default now()
);
create index refunds_payment_intent on refunds (payment_intent_id);

create table disputes (
    dispute_id text primary key,
    charge_id text,
    payment_intent_id text,
    amount bigint not null check (amount >= 0),
    currency text not null,
    status text not null,
    reason text,
    created timestamptz not null,
    status_at timestamptz not null,
    updated_at timestamptz not null default now()
);
create index disputes_payment_intent on disputes (payment_intent_id);

-- Precedence for merging states told in any order: a later-ranked state is never undone by
-- an earlier-ranked one, so the end state does not depend on delivery order.
create function gift_state_rank(state text) returns int
language sql immutable as $$
    select case state when 'paid' then 3 when 'failed' then 2 when 'expired' then 1 else 0 end
$$;

-- For two plan states with the same timestamp: the further along wins; canceled is final.
create function plan_status_rank(status text) returns int
language sql immutable as $$
    select case status
        when 'canceled' then 9 when 'incomplete_expired' then 8 when 'unpaid' then 7
        when 'past_due' then 6 when 'paused' then 5 when 'active' then 4 when 'trialing' then 3
        else 0 end
$$;

create function refund_status_rank(status text) returns int
language sql immutable as $$
    select case status when 'failed' then 3 when 'canceled' then 3 when 'succeeded' then 2
        when 'requires_action' then 1 else 0 end
$$;

-- A dispute's won or lost is final.
create function dispute_status_rank(status text) returns int
language sql immutable as $$
    select case when status in ('won', 'lost') then 2 when status = 'under_review' then 1 else 0 end
$$;
