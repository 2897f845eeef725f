-- sqlite/007_lanes.sql in PostgreSQL's types. A lane's name is its
-- station's: the card in hand is the order with this station and lane.
ALTER TABLE orders ADD COLUMN lane TEXT;
ALTER TABLE orders ADD COLUMN print_printer TEXT;
ALTER TABLE orders ADD COLUMN print_job TEXT;
UPDATE orders SET lane = 'main' WHERE state IN ('encoding', 'printing');
CREATE INDEX orders_lane ON orders (lane, state) WHERE lane IS NOT NULL;
