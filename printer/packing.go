package printer

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"id06/order"
)

// ProducedCard is a produced card waiting to be shipped, as the queue knows it.
type ProducedCard struct {
	CardNumber, HolderName, OrderID string
	Express                         bool
	Orderer                         string
	Address                         []string
	CostCenter, Department          string
}

// GroupShipments puts produced cards into parcels: one per delivery address
// (with the same orderer, cost centre and department, which the packing list
// shows once), and one per express card, since express cards are picked up
// within two hours and must not wait for others. Express shipments come
// first. IDs are derived from the content, so the same input gives the same
// shipments.
func GroupShipments(cards []ProducedCard, now time.Time) []order.Shipment {
	var out []order.Shipment
	index := map[string]int{}
	for _, c := range cards {
		key := shipmentKey(c)
		if c.Express {
			key = "express\x00" + c.CardNumber
		}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, order.Shipment{
				Express: c.Express, Orderer: strings.TrimSpace(c.Orderer), Address: trimLines(c.Address),
				CostCenter: strings.TrimSpace(c.CostCenter), Department: strings.TrimSpace(c.Department),
				CreatedAt: now,
			})
		}
		out[i].Cards = append(out[i].Cards, order.ShipmentCard{CardNumber: c.CardNumber, HolderName: c.HolderName, OrderID: c.OrderID})
	}
	for i := range out {
		s := &out[i]
		slices.SortFunc(s.Cards, func(a, b order.ShipmentCard) int { return cmp.Compare(a.CardNumber, b.CardNumber) })
		h := sha256.New()
		for _, c := range s.Cards {
			h.Write([]byte(c.CardNumber + "\x00"))
		}
		s.ID = "SHP-" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(h.Sum(nil))[:10]
	}
	slices.SortStableFunc(out, func(a, b order.Shipment) int {
		if a.Express != b.Express {
			if a.Express {
				return -1
			}
			return 1
		}
		return cmp.Compare(strings.Join(a.Address, "\n"), strings.Join(b.Address, "\n"))
	})
	return out
}

// shipmentKey normalises what must be equal for cards to share a parcel.
func shipmentKey(c ProducedCard) string {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	parts := []string{norm(c.Orderer), norm(c.CostCenter), norm(c.Department)}
	for _, l := range c.Address {
		if n := norm(l); n != "" {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "\x00")
}

func trimLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// PackingList renders the packing list of a shipment as an A4 PDF.
func PackingList(s order.Shipment) ([]byte, error) {
	if len(s.Cards) == 0 {
		return nil, fmt.Errorf("packing list %s: the shipment has no cards", s.ID)
	}
	if len(trimLines(s.Address)) == 0 {
		return nil, fmt.Errorf("packing list %s: the shipment has no delivery address", s.ID)
	}
	m, err := newMeasurer()
	if err != nil {
		return nil, err
	}
	texts := append([]string{s.ID, s.Orderer, s.CostCenter, s.Department}, s.Address...)
	for _, c := range s.Cards {
		texts = append(texts, c.CardNumber, c.HolderName, c.OrderID)
	}
	for _, t := range texts {
		if err := m.checkPrintable("packing list text", t); err != nil {
			return nil, fmt.Errorf("packing list %s: %w", s.ID, err)
		}
	}

	doc := fpdf.New("P", "mm", "A4", "")
	doc.SetCreationDate(s.CreatedAt)
	doc.SetModificationDate(s.CreatedAt)
	doc.SetCatalogSort(true)
	doc.SetTitle("Packing list "+s.ID, true)
	doc.SetCreator("id06 station", true)
	doc.AddUTF8FontFromBytes(fontRegular, "", fontTTF[fontRegular])
	doc.AddUTF8FontFromBytes(fontBold, "", fontTTF[fontBold])
	doc.SetMargins(20, 20, 20)
	doc.SetAutoPageBreak(true, 20)
	doc.SetFooterFunc(func() {
		doc.SetY(-15)
		doc.SetFont(fontRegular, "", 8)
		doc.CellFormat(0, 5, fmt.Sprintf("%s — sida/page %d", s.ID, doc.PageNo()), "", 0, "C", false, 0, "")
	})
	doc.AddPage()

	doc.SetFont(fontBold, "", 18)
	doc.CellFormat(0, 10, "Följesedel / Packing list", "", 1, "L", false, 0, "")
	if s.Express {
		doc.SetFillColor(0, 0, 0)
		doc.SetTextColor(255, 255, 255)
		doc.SetFont(fontBold, "", 14)
		doc.CellFormat(0, 9, "EXPRESS — upphämtning inom 2 timmar / pick-up within 2 hours", "", 1, "C", true, 0, "")
		doc.SetTextColor(0, 0, 0)
	}
	doc.Ln(3)
	field := func(label, value string) {
		if strings.TrimSpace(value) == "" {
			return
		}
		doc.SetFont(fontBold, "", 10)
		doc.CellFormat(55, 6, label, "", 0, "L", false, 0, "")
		doc.SetFont(fontRegular, "", 10)
		doc.MultiCell(0, 6, value, "", "L", false)
	}
	field("Försändelse / Shipment", s.ID)
	if !s.CreatedAt.IsZero() {
		field("Datum / Date", s.CreatedAt.Format(time.DateOnly))
	}
	field("Beställare / Orderer", s.Orderer)
	field("Leveransadress / Address", strings.Join(trimLines(s.Address), "\n"))
	field("Kostnadsställe / Cost centre", s.CostCenter)
	field("Avdelning / Department", s.Department)
	doc.Ln(4)

	header := func() {
		doc.SetFont(fontBold, "", 10)
		doc.SetFillColor(225, 225, 225)
		for i, h := range []string{"#", "Kortnummer / Card number", "Namn / Holder", "Order"} {
			doc.CellFormat(packCols[i], 7, h, "1", 0, "L", true, 0, "")
		}
		doc.Ln(-1)
	}
	header()
	doc.SetFont(fontRegular, "", 10)
	for i, c := range s.Cards {
		// Break before fpdf's automatic break would, to repeat the header.
		if doc.GetY()+7 > 297-20-0.5 {
			doc.AddPage()
			header()
			doc.SetFont(fontRegular, "", 10)
		}
		for j, v := range []string{fmt.Sprint(i + 1), c.CardNumber, fitCell(doc, c.HolderName, packCols[2]), fitCell(doc, c.OrderID, packCols[3])} {
			doc.CellFormat(packCols[j], 7, v, "1", 0, "L", false, 0, "")
		}
		doc.Ln(-1)
	}
	doc.Ln(3)
	doc.SetFont(fontBold, "", 11)
	doc.CellFormat(0, 7, fmt.Sprintf("Antal kort / Cards: %d", len(s.Cards)), "", 1, "L", false, 0, "")

	var out bytes.Buffer
	if err := doc.Output(&out); err != nil {
		return nil, fmt.Errorf("packing list %s: %w", s.ID, err)
	}
	return out.Bytes(), nil
}

// packCols are the table column widths in mm (170 mm between margins).
var packCols = []float64{10, 45, 75, 40}

// fitCell shortens text with an ellipsis so a table cell never overflows.
func fitCell(doc *fpdf.Fpdf, s string, w float64) string {
	const pad = 2
	if doc.GetStringWidth(s) <= w-pad {
		return s
	}
	r := []rune(s)
	for len(r) > 1 && doc.GetStringWidth(string(r)+"…") > w-pad {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}
