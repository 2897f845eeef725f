-- sqlite/004_holder_names.sql for PostgreSQL: the documents of orders
-- stored before it are read once for their holders' names.
ALTER TABLE orders ADD COLUMN holder_names TEXT NOT NULL DEFAULT '';
UPDATE orders SET holder_names = coalesce(d #>> '{holder,print_name}', '') || chr(10) ||
    trim(coalesce(d #>> '{holder,first_name}', '') || ' ' || coalesce(d #>> '{holder,last_name}', ''))
    FROM (SELECT id AS doc_id, convert_from(doc, 'UTF8')::jsonb AS d FROM orders) AS docs WHERE docs.doc_id = orders.id;
