-- Managing a recurring gift and donor privacy: one-time sign-in links (only their hash is
-- kept), the local outbox that captures mail when no SMTP server is configured (stand-in
-- mode, tests), and the marker an erasure leaves on a donor.

create table manage_links (
    -- sha256 (hex) of the token; the token itself exists only in the mail
    token_hash text primary key,
    donor_id uuid not null references donors (id),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);
create index manage_links_donor on manage_links (donor_id);

create table mail_outbox (
    id bigserial primary key,
    recipient text not null,
    subject text not null,
    body text not null,
    created_at timestamptz not null default now()
);
create index mail_outbox_recipient on mail_outbox (recipient);

-- Set by `chipin donor erase`: email, name and country are null from then on, and the
-- donor's id is the pseudonymous marker their gifts and plans keep pointing at.
alter table donors add column erased_at timestamptz;
