-- The kept totals are spread over slot rows, summed on read. Every gift of one day used to
-- update the same few rows (today's total, this week's, month's and year's donor figures),
-- so concurrent webhook deliveries queued on those rows' locks until each one committed.
-- Each recording transaction now adds its difference to one of 16 slots of a total; a rebuild
-- writes slot 0. Readers sum over slots (they already summed over campaigns and bands).
alter table daily_totals add column slot smallint not null default 0;
alter table daily_totals drop constraint daily_totals_pkey;
alter table daily_totals add primary key (day, currency, campaign, kind, slot);

alter table period_donor_totals add column slot smallint not null default 0;
alter table period_donor_totals drop constraint period_donor_totals_pkey;
alter table period_donor_totals add primary key (currency, period_kind, period_start, band, small, slot);
