-- The holder's names as the operators' search finds them (print name, then
-- first and last name, one per line), written at intake from the decoded
-- order; the search no longer reads the stored document. Orders accepted
-- before this migration get theirs from the document once, here.
ALTER TABLE orders ADD COLUMN holder_names TEXT NOT NULL DEFAULT '';
UPDATE orders SET holder_names = coalesce(json_extract(doc, '$.holder.print_name'), '') || char(10) ||
    trim(coalesce(json_extract(doc, '$.holder.first_name'), '') || ' ' || coalesce(json_extract(doc, '$.holder.last_name'), ''))
    WHERE json_valid(doc);
