package printer

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"id06/internal/integration"
	"id06/order"
)

var packNow = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

func TestGroupShipments(t *testing.T) {
	sthlm := []string{"Bygg AB", "Storgatan 1", "111 22 Stockholm", "SE"}
	card := func(n string, express bool, addr []string, cc string) ProducedCard {
		return ProducedCard{CardNumber: n, HolderName: "Holder " + n, OrderID: "ord-" + n, Express: express,
			Orderer: "Eva Beställare", Address: addr, CostCenter: cc}
	}
	cards := []ProducedCard{
		card("BB-0000-000003", false, sthlm, "4711"),
		card("BB-0000-000001", false, []string{" Bygg AB", "Storgatan  1 ", "111 22 STOCKHOLM", "SE", ""}, "4711"),
		card("BB-0000-000002", true, sthlm, "4711"),
		card("BB-0000-000004", false, []string{"Bygg AB", "Hamngatan 5", "411 04 Göteborg", "SE"}, "4711"),
		card("BB-0000-000005", false, sthlm, "9000"),
		card("BB-0000-000006", true, sthlm, "4711"),
	}
	got := GroupShipments(cards, packNow)
	var summary []string
	for _, s := range got {
		var nums []string
		for _, c := range s.Cards {
			nums = append(nums, strings.TrimPrefix(c.CardNumber, "BB-0000-00000"))
		}
		summary = append(summary, fmt.Sprintf("%v:%s:%s", s.Express, s.CostCenter, strings.Join(nums, ",")))
	}
	want := []string{"true:4711:2", "true:4711:6", "false:4711:4", "false:4711:1,3", "false:9000:5"}
	if strings.Join(summary, " ") != strings.Join(want, " ") {
		t.Errorf("shipments = %v, want %v", summary, want)
	}
	ids := map[string]bool{}
	for _, s := range got {
		if !regexp.MustCompile(`^SHP-20261123-[0-9a-f]{10}$`).MatchString(s.ID) || ids[s.ID] {
			t.Errorf("bad or duplicate shipment ID %q", s.ID)
		}
		ids[s.ID] = true
		if !s.CreatedAt.Equal(packNow) {
			t.Errorf("CreatedAt = %v", s.CreatedAt)
		}
	}
	again := GroupShipments(cards, packNow)
	for i := range got {
		if again[i].ID != got[i].ID {
			t.Error("grouping the same cards twice gave different shipment IDs")
		}
	}
	// The parcel takes the address as first written; spacing and case
	// differences did not split it.
	if s := got[3]; strings.Join(s.Address, "|") != strings.Join(sthlm, "|") {
		t.Errorf("address = %q, want %q", s.Address, sthlm)
	}
	if len(GroupShipments(nil, packNow)) != 0 {
		t.Error("no cards gave shipments")
	}
}

func TestPackingList(t *testing.T) {
	pdfinfo := integration.Tool(t, "pdfinfo", "poppler-utils")
	pdftotext := integration.Tool(t, "pdftotext", "poppler-utils")
	s := order.Shipment{
		ID: "SHP-20261123-0123456789", Express: true, Orderer: "Eva Beställare",
		Address:    []string{"Bygg & Betong i Norr AB", "Storgatan 1", "111 22 Stockholm"},
		CostCenter: "4711", Department: "Östra regionen", CreatedAt: packNow,
	}
	for i := 1; i <= 60; i++ { // more than one page
		s.Cards = append(s.Cards, order.ShipmentCard{CardNumber: fmt.Sprintf("BB-1234-%06d", i), HolderName: fmt.Sprintf("Łukasz Żółć %d", i), OrderID: fmt.Sprintf("sup-2026-%06d", i)})
	}
	s.Cards[0].HolderName = "Maximilian-Alexander Wolfeschlegelsteinhausenbergerdorff von Hohenzollern"
	pdf, err := PackingList(s)
	if err != nil {
		t.Fatal(err)
	}
	p := writePDF(t, t.TempDir(), pdf)
	info := run(t, pdfinfo, p)
	if !regexp.MustCompile(`Page size:\s+595.28 x 841.89 pts \(A4\)`).MatchString(info) {
		t.Errorf("not A4:\n%s", info)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindStringSubmatch(info)
	if m == nil || m[1] == "1" {
		t.Fatalf("60 cards should take more than one page:\n%s", info)
	}
	text := run(t, pdftotext, p, "-")
	for _, want := range []string{"Följesedel / Packing list", "EXPRESS", s.ID, "2026-11-23", "Eva Beställare",
		"Bygg & Betong i Norr AB", "111 22 Stockholm", "4711", "Östra regionen", "BB-1234-000001", "BB-1234-000060",
		"Łukasz Żółć 60", "sup-2026-000060", "Antal kort / Cards: 60", "Maximilian-Alexander"} {
		if !strings.Contains(text, want) {
			t.Errorf("packing list lacks %q", want)
		}
	}
	if n := strings.Count(text, "Kortnummer / Card number"); n < 2 {
		t.Errorf("table header printed %d times; it must repeat on each page of the table", n)
	}
	if got := fmt.Sprint(strings.Count(text, "sida/page")); got != m[1] {
		t.Errorf("page footer printed %s times on %s pages", got, m[1])
	}

	for name, bad := range map[string]order.Shipment{
		"no cards":   {ID: "SHP-1", Address: []string{"x"}},
		"no address": {ID: "SHP-2", Cards: s.Cards[:1], Address: []string{" "}},
		"bad letter": {ID: "SHP-3", Cards: []order.ShipmentCard{{CardNumber: "BB-1", HolderName: "王小明"}}, Address: []string{"x"}},
	} {
		if _, err := PackingList(bad); err == nil || !strings.Contains(err.Error(), bad.ID) {
			t.Errorf("%s: PackingList error = %v, want one naming the shipment", name, err)
		}
	}
}
