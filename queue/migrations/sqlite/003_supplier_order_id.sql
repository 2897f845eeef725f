-- An order id is the supplier's own: two suppliers may send the same one.
-- orders.id stays the station-wide key that events, blobs, card numbers and
-- the operator page use (the supplier's id itself when no other supplier
-- took it first); supplier_order_id is the supplier's id, unique per
-- supplier, by which the supplier API finds the order.
ALTER TABLE orders ADD COLUMN supplier_order_id TEXT;
UPDATE orders SET supplier_order_id = id;
CREATE UNIQUE INDEX orders_supplier_order ON orders (supplier, supplier_order_id);
