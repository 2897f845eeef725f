-- sqlite/003_supplier_order_id.sql for PostgreSQL.
ALTER TABLE orders ADD COLUMN supplier_order_id TEXT;
UPDATE orders SET supplier_order_id = id;
CREATE UNIQUE INDEX orders_supplier_order ON orders (supplier, supplier_order_id);
