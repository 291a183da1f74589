-- Checkout request idempotency and rate limits. Both live in Postgres so that several
-- instances behind a load balancer agree.

create table checkout_requests (
    idempotency_key text primary key,
    -- sha256 of the canonical request body: the same key with another body is a conflict
    body_hash text not null,
    gift_id uuid references gifts (id),
    response jsonb,
    created_at timestamptz not null default now()
);

-- Fixed-window counters: one row per (bucket, window start).
create table rate_limit_hits (
    bucket text not null,
    window_start timestamptz not null,
    hits integer not null,
    primary key (bucket, window_start)
);
