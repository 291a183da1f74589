-- Indexes behind the ledger reports (the gifts export, donor history, statements, LYBUNT):
-- refunds and disputes are read by the time they happen, gifts by donor.

create index refunds_created on refunds (created) where status = 'succeeded';
create index disputes_status_at on disputes (status_at);
create index gifts_donor_paid_at on gifts (donor_id, paid_at) where state = 'paid';
