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
