-- The donors an event touches: those of the gifts it reaches (by payment intent, invoice,
-- session or gift id), of the Stripe customers and of the emails it names. The recording
-- transaction locks them, reads their figures and keeps their gaps: one definition, so the
-- donors it locks are the donors it reads. Inlined into its callers.
create function touched_donors(pis text[], invoices text[], sessions text[], gift_ids uuid[],
                               customers text[], emails text[])
returns table (donor_id uuid)
language sql stable as $$
    select donor_id from gifts
    where donor_id is not null
      and (payment_intent_id = any(pis) or invoice_id = any(invoices)
           or checkout_session_id = any(sessions) or id = any(gift_ids))
    union all
    select donor_id from donor_customers where customer_id = any(customers)
    union all
    select id from donors where email = any(emails)
$$;
