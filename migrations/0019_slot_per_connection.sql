-- Which slot row of a kept total this connection adds to: one per server connection (its
-- backend pid), no longer one drawn at random per transaction. Concurrent deliveries run
-- on distinct connections, so they now seldom share a slot row and wait on its lock until
-- the other commits (random slots made that likely: 16 deliveries at once over 16 slots).
create function my_slot(slots smallint) returns smallint
language sql stable parallel safe as $$
    select (pg_backend_pid() % slots)::smallint
$$;

