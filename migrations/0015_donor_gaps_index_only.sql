-- Counting the gaps around a range read every matching gap's row to check its currency (most
-- of them other currencies' at a million gifts): 31 ms for one year. With the range stored and
-- the currency carried in the index, the count is an index-only scan: 4 ms.
alter table donor_gaps
    add column span daterange generated always as (daterange(after_day, before_day, '()')) stored;
drop index if exists donor_gaps_span;
create index donor_gaps_span on donor_gaps using spgist (span) include (currency);
