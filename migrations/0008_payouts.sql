-- Payouts: Stripe's deposits to the bank, and the balance transactions each one carries,
-- each linked to our gift, refund or dispute row by Stripe ids, or marked unmatched.

create table payouts (
    payout_id text primary key,
    amount bigint not null,
    currency text not null,
    arrival_date timestamptz not null,
    status text not null,
    status_at timestamptz not null,
    failure_code text,
    created timestamptz not null,
    updated_at timestamptz not null default now()
);
create index payouts_arrival_date on payouts (arrival_date);

-- Failed and canceled are final; otherwise the later status wins (ties by this rank).
create function payout_status_rank(status text) returns int
    language sql immutable as $$
    select case status
        when 'pending' then 0
        when 'in_transit' then 1
        when 'paid' then 2
        when 'failed' then 3
        when 'canceled' then 3
        else 0 end
$$;

create table payout_items (
    balance_transaction_id text primary key,
    payout_id text not null references payouts (payout_id),
    type text not null,
    reporting_category text,
    amount bigint not null,
    fee bigint not null,
    net bigint not null,
    currency text not null,
    source_id text,
    created timestamptz not null,
    -- what it is in our ledger: gift, refund, dispute, or unmatched
    link text not null check (link in ('gift', 'refund', 'dispute', 'unmatched')),
    gift_id uuid,
    charge_id text,
    refund_id text,
    dispute_id text,
    updated_at timestamptz not null default now()
);
create index payout_items_payout on payout_items (payout_id);
