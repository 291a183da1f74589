-- Every verified Stripe event, stored once (the primary key decides, inside the transaction
-- that applies it) with its raw payload, so it can be replayed or reviewed.
create table stripe_events (
    event_id text primary key,
    type text not null,
    api_version text,
    created timestamptz not null,
    livemode boolean not null,
    payload jsonb not null,
    received_at timestamptz not null default now(),
    processed_at timestamptz,
    -- set when the event could not be interpreted: kept for review, answered 200
    error text,
    needs_review boolean not null default false
);
create index stripe_events_review on stripe_events (received_at) where needs_review;
