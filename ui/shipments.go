package ui

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"id06/order"
	"id06/printer"
)

type shipmentRow struct {
	*order.Shipment
	Orders []orderRow
}

func (u *UI) uiShipments(w http.ResponseWriter, r *http.Request) {
	list, unshipped, err := u.shipments(r.Context())
	u.show(w, r, err, "shipments", "nav_shipments", map[string]any{"Shipments": list, "Unshipped": unshipped})
}

// shipments reads the newest parcels with their cards (two queries, however
// many parcels) and counts the produced cards not yet packed.
func (u *UI) shipments(ctx context.Context) ([]shipmentRow, int, error) {
	list, err := u.store.Shipments(ctx, 100)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, len(list))
	for i, sh := range list {
		ids[i] = sh.ID
	}
	orders, err := u.store.ShipmentOrders(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	cards, err := rows(orders)
	if err != nil {
		return nil, 0, err
	}
	in := map[string][]orderRow{}
	for _, c := range cards {
		in[c.ShipmentID] = append(in[c.ShipmentID], c)
	}
	out := make([]shipmentRow, len(list))
	for i, sh := range list {
		out[i] = shipmentRow{Shipment: sh, Orders: in[sh.ID]}
	}
	unshipped, err := u.store.Unshipped(ctx)
	return out, len(unshipped), err
}

// uiPack groups the produced, unpacked cards into parcels by delivery
// address, each express card a parcel of its own, and stores the whole run
// at once.
func (u *UI) uiPack(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orders, err := u.store.Unshipped(ctx)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	cards := make([]printer.ProducedCard, len(orders))
	for i, o := range orders {
		doc, err := o.Document()
		if err != nil {
			u.fail(w, r, err)
			return
		}
		d := doc.Delivery
		cards[i] = printer.ProducedCard{CardNumber: o.CardNumber, HolderName: doc.HolderName(), OrderID: o.ID, Express: o.Express,
			Orderer: d.Name, Address: []string{d.Name, d.Street, strings.TrimSpace(d.PostalCode + " " + d.City), d.Country},
			CostCenter: d.CostCenter, Department: d.Department}
	}
	if err := u.store.CreateShipments(ctx, printer.GroupShipments(cards, u.now()), actorOf(ctx)); err != nil {
		u.fail(w, r, err)
		return
	}
	u.audit(ctx, actorOf(ctx), "pack", fmt.Sprintf("%d cards packed", len(cards)))
	u.Changed()
	http.Redirect(w, r, "/ui/shipments?done=packed", http.StatusSeeOther)
}

func (u *UI) uiPackingList(w http.ResponseWriter, r *http.Request) {
	sh, orders, err := u.store.Shipment(r.Context(), chi.URLParam(r, "id"))
	var cards []orderRow
	if err == nil {
		cards, err = rows(orders)
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, c := range cards {
		sh.Cards = append(sh.Cards, order.ShipmentCard{CardNumber: c.CardNumber, HolderName: c.Holder, OrderID: c.ID})
	}
	pdf, err := printer.PackingList(*sh)
	if err != nil {
		u.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `inline; filename="`+sh.ID+`.pdf"`)
	w.Write(pdf)
}

func (u *UI) uiShipped(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	n, err := u.store.MarkShipped(r.Context(), id, actorOf(r.Context()))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.audit(r.Context(), actorOf(r.Context()), "shipped", fmt.Sprintf("%s: %d cards", id, n))
	u.deliverer.Wake()
	u.Changed()
	http.Redirect(w, r, "/ui/shipments?done=shipped", http.StatusSeeOther)
}
