package order

import "time"

// Shipment is a parcel of produced cards for one delivery address, or one
// express card. The store keeps it, the operator page shows it and the
// packing list prints it.
type Shipment struct {
	ID                     string
	Express                bool
	Orderer                string
	Address                []string
	CostCenter, Department string
	Cards                  []ShipmentCard
	CreatedAt              time.Time
	CreatedBy              string
	ShippedAt              time.Time
	ShippedBy              string
}

// ShipmentCard is one card in a parcel: a line of its packing list.
type ShipmentCard struct{ CardNumber, HolderName, OrderID string }
