package order_test

import (
	"errors"
	"fmt"
	"time"

	"id06/order"
)

// The station answers a *ValidationError with 422 and its Fields.
func ExampleDecode() {
	body := []byte(`{"id":"sup-1","card_type":"id06","colour":"red"}`)
	_, err := order.Decode(body)
	var verr *order.ValidationError
	if errors.As(err, &verr) {
		for _, f := range verr.Fields {
			fmt.Printf("%s: %s\n", f.Path, f.Message)
		}
	}
	// Output:
	// colour: unknown field "colour"; the fields allowed at the top level are: id, card_type, express, holder, company, valid_until, photo, delivery, approvals
}

func ExampleOrder_Validate() {
	o := &order.Order{ID: "sup-2", CardType: "id06",
		Holder: order.Holder{FirstName: "Anna", LastName: "Svensson", PrintName: "Anna Svensson",
			Nationality: "SE", BirthDate: "1985-04-12", IDNumber: "19850412-1234",
			Email: "anna@example.se", Phone: "+46701234567"},
		Company:    order.Company{Name: "Bygg AB", OrgNumber: "556677-8899"},
		ValidUntil: "2032-01-01",
		Photo:      []byte("(a JPEG)"),
		Delivery:   order.Delivery{Name: "Bygg AB", Street: "Storgatan 1", PostalCode: "111 22", City: "Stockholm", Country: "SE"},
	}
	err := o.Validate(order.Checks{Now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)})
	fmt.Println(err)
	fmt.Println("ready:", o.ReadyForProduction())
	// Output:
	// the order has 2 problems: holder.id_number: the personnummer check digit is wrong: expected 0, got 4 — check the number for typos; valid_until: a card is valid at most 5 years: latest allowed is 2031-11-23
	// ready: false
}
