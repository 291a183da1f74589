-- Which slot row of a kept total this connection adds to: one per server connection (its
-- backend pid), no longer one drawn at random per transaction. Concurrent deliveries run
-- on distinct connections, so they now seldom share a slot row and wait on its lock until
-- the other commits (random slots made that likely: 16 deliveries at once over 16 slots).
create function my_slot(slots smallint) returns smallint
language sql stable parallel safe as $$
    select (pg_backend_pid() % slots)::smallint
$$;

-- Kept totals are updated in place all day long: room on each page lets the new version
-- stay on the page (a HOT update, no new index entry), so the rows' indexes do not bloat.
alter table daily_totals set (fillfactor = 50);
alter table period_donor_totals set (fillfactor = 50);
alter table gift_amounts set (fillfactor = 50);
alter table plan_days set (fillfactor = 50);
