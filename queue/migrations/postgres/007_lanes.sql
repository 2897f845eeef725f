-- sqlite/007_lanes.sql; the same in PostgreSQL.
-- Production lanes (docs/design.md §9). lane: the lane whose encoder or
-- printer holds the order's card, and then the one that made it; a card in
-- a lane's hand is only ever claimed by that lane. print_printer, print_job:
-- the print recorded before it is submitted, so that after a crash the lane
-- asks that printer about that job before anything else.
ALTER TABLE orders ADD COLUMN lane TEXT;
ALTER TABLE orders ADD COLUMN print_printer TEXT;
ALTER TABLE orders ADD COLUMN print_job TEXT;
-- A one-lane station's card in hand is lane main's.
UPDATE orders SET lane = 'main' WHERE state IN ('encoding', 'printing');
CREATE INDEX orders_lane ON orders (lane, state) WHERE lane IS NOT NULL;
