-- Daily reconciliation against Stripe's balance transactions: each run, and each difference
-- it found. A difference is kept once per (day, kind, Stripe object) whatever the number of
-- runs that see it, so a nightly schedule never piles up copies; it stays open until a run no
-- longer finds it (resolved) or a person explains it (acknowledged, with a reason).

create table reconciliation_runs (
    id uuid primary key,
    -- the day compared, cut in `time_zone` (REPORT_TIME_ZONE at the time of the run)
    day date not null,
    time_zone text not null,
    repair boolean not null,
    -- cli or schedule, and which process ran it (host:pid), for a reader of the history
    trigger text not null check (trigger in ('cli', 'schedule')),
    instance text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    stripe_items int,
    ledger_items int,
    issues_open int,
    repaired int,
    resolved int,
    -- set when the run stopped early (Stripe unreachable, say)
    error text
);
create index reconciliation_runs_day on reconciliation_runs (day, started_at);

create table reconciliation_issues (
    id uuid primary key,
    day date not null,
    kind text not null check (kind in ('missing_here', 'missing_at_stripe', 'amount_mismatch',
                                       'fee_mismatch', 'currency_mismatch')),
    -- charge, refund or dispute id (or, for a gift Stripe does not show, its payment intent)
    object_id text not null,
    object_type text not null check (object_type in ('charge', 'refund', 'dispute')),
    balance_transaction_id text,
    -- ours against Stripe's, minor units each in its own currency
    ours_amount bigint,
    theirs_amount bigint,
    ours_fee bigint,
    theirs_fee bigint,
    ours_currency text,
    theirs_currency text,
    status text not null default 'open' check (status in ('open', 'resolved', 'acknowledged')),
    reason text,
    acknowledged_by text,
    first_run_id uuid not null references reconciliation_runs (id),
    last_run_id uuid not null references reconciliation_runs (id),
    first_seen timestamptz not null default now(),
    last_seen timestamptz not null default now(),
    resolved_at timestamptz,
    unique (day, kind, object_id),
    check (status <> 'acknowledged' or (reason is not null and reason <> ''))
);
create index reconciliation_issues_open on reconciliation_issues (day) where status = 'open';
