package order

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateRules(t *testing.T) {
	long := strings.Repeat("a", MaxTextLen+1)
	tests := []struct {
		name   string
		change func(o *Order)
		path   string // "" means the order stays valid
		msg    string
	}{
		{"fixture as is", func(o *Order) {}, "", ""},
		{"visitor card", func(o *Order) { o.CardType = CardVisitor }, "", ""},
		{"temporary card, express", func(o *Order) { o.CardType, o.Express = CardTemporary, true }, "", ""},
		{"no approvals is valid (waits)", func(o *Order) { o.Approvals = nil }, "", ""},
		{"no logo", func(o *Order) { o.Company.Logo = nil }, "", ""},
		{"no valid_until", func(o *Order) { o.ValidUntil = "" }, "", ""},
		{"valid_until exactly 5 years", func(o *Order) { o.ValidUntil = "2031-11-23" }, "", ""},
		{"valid_until tomorrow", func(o *Order) { o.ValidUntil = "2026-11-24" }, "", ""},
		{"foreign holder", func(o *Order) {
			o.Holder.Nationality, o.Holder.IDNumber, o.Holder.BirthDate = "PL", "44051401359", "1944-05-14"
		}, "", ""},
		{"delivery abroad", func(o *Order) { o.Delivery.Country, o.Delivery.PostalCode = "PL", "00-950" }, "", ""},
		{"Polish holder with a passport", func(o *Order) { o.Holder.Nationality, o.Holder.IDNumber = "PL", "EA1234567" }, "", ""},
		{"Polish holder with a samordningsnummer", func(o *Order) { o.Holder.Nationality, o.Holder.IDNumber = "PL", "19850472-1237" }, "", ""},
		{"sole trader", func(o *Order) { o.Company.OrgNumber = "850412-1230" }, "", ""},
		{"cost centre and department", func(o *Order) { o.Delivery.CostCenter, o.Delivery.Department = "4711", "Mark & Betong" }, "", ""},
		{"Polish letters", func(o *Order) { o.Holder.PrintName = "Zażółć Gęślą-Jaźń" }, "", ""},

		{"missing id", func(o *Order) { o.ID = "" }, "id", "order id is required"},
		{"id too long", func(o *Order) { o.ID = strings.Repeat("x", 65) }, "id", "at most 64"},
		{"id with slash", func(o *Order) { o.ID = "sup/1" }, "id", "only contain letters"},
		{"id with space", func(o *Order) { o.ID = "sup 1" }, "id", "only contain letters"},
		{"id of all characters", func(o *Order) { o.ID = "Sup-2026_000123.b" }, "", ""},
		{"id of one digit", func(o *Order) { o.ID = "7" }, "", ""},
		{"id of 64 characters", func(o *Order) { o.ID = strings.Repeat("a", 64) }, "", ""},
		{"id dot", func(o *Order) { o.ID = "." }, "id", "must start with a letter or a digit"},
		{"id dot dot", func(o *Order) { o.ID = ".." }, "id", "must start with a letter or a digit"},
		{"id dash", func(o *Order) { o.ID = "-" }, "id", "must start with a letter or a digit"},
		{"id like an option", func(o *Order) { o.ID = "-rf" }, "id", "must start with a letter or a digit"},
		{"id underscore first", func(o *Order) { o.ID = "_x" }, "id", "must start with a letter or a digit"},
		{"id hidden file", func(o *Order) { o.ID = ".sup-1" }, "id", "must start with a letter or a digit"},
		{"id non-ASCII letter", func(o *Order) { o.ID = "ö1" }, "id", "only contain letters"},
		{"unknown card type", func(o *Order) { o.CardType = "ID06" }, "card_type", "use one of id06, visitor, temporary"},
		{"missing card type", func(o *Order) { o.CardType = "" }, "card_type", "required"},
		{"missing first name", func(o *Order) { o.Holder.FirstName = "" }, "holder.first_name", "required"},
		{"blank last name", func(o *Order) { o.Holder.LastName = "   " }, "holder.last_name", "required"},
		{"name too long", func(o *Order) { o.Holder.LastName = long }, "holder.last_name", "at most 100"},
		{"name with newline", func(o *Order) { o.Holder.FirstName = "An\nna" }, "holder.first_name", "control or invisible"},
		{"name with zero-width space", func(o *Order) { o.Holder.FirstName = "An\u200bna" }, "holder.first_name", "control or invisible"},
		{"name with direction override", func(o *Order) { o.Holder.LastName = "\u202eSvensson" }, "holder.last_name", "control or invisible"},
		{"name with NUL", func(o *Order) { o.Holder.FirstName = "Anna\x00" }, "holder.first_name", "control or invisible"},
		{"name with trailing space", func(o *Order) { o.Holder.FirstName = "Anna " }, "holder.first_name", "starts or ends with a space"},
		{"missing print name", func(o *Order) { o.Holder.PrintName = "" }, "holder.print_name", "required"},
		{"bad nationality", func(o *Order) { o.Holder.Nationality = "Swedish" }, "holder.nationality", "ISO 3166-1"},
		{"lower-case nationality", func(o *Order) { o.Holder.Nationality = "se" }, "holder.nationality", "upper case"},
		{"missing birth date", func(o *Order) { o.Holder.BirthDate = "" }, "holder.birth_date", "required"},
		{"birth date format", func(o *Order) { o.Holder.BirthDate = "12/04/1985" }, "holder.birth_date", "YYYY-MM-DD"},
		{"birth date not a day", func(o *Order) { o.Holder.BirthDate = "1985-02-30" }, "holder.birth_date", "YYYY-MM-DD"},
		{"birth date in future", func(o *Order) {
			o.Holder.BirthDate, o.Holder.Nationality, o.Holder.IDNumber = "2027-01-01", "DE", "C01X00T47"
		}, "holder.birth_date", "in the future"},
		{"birth date before 1900", func(o *Order) {
			o.Holder.BirthDate, o.Holder.Nationality, o.Holder.IDNumber = "1899-12-31", "DE", "C01X00T47"
		}, "holder.birth_date", "before 1900"},
		{"holder too young", func(o *Order) {
			o.Holder.BirthDate, o.Holder.Nationality, o.Holder.IDNumber = "2013-11-24", "DE", "C01X00T47"
		}, "holder.birth_date", "younger than 13"},
		{"personnummer check digit", func(o *Order) { o.Holder.IDNumber = "19850412-1234" }, "holder.id_number",
			"personnummer check digit is wrong: expected 0, got 4 — check the number for typos"},
		{"personnummer of someone else", func(o *Order) { o.Holder.IDNumber = "19121212-1212" }, "holder.id_number", "does not match birth_date"},
		{"Swedish holder with a PESEL", func(o *Order) {
			o.Holder.IDNumber, o.Holder.BirthDate = "44051401359", "1944-05-14"
		}, "holder.id_number", "personnummer is written YYYYMMDD-NNNC"},
		{"Polish holder with a Swedish personnummer", func(o *Order) { o.Holder.Nationality = "PL" }, "holder.id_number",
			"a Swedish personnummer goes with nationality SE"},
		{"Polish holder with an Estonian number", func(o *Order) {
			o.Holder.Nationality, o.Holder.IDNumber, o.Holder.BirthDate = "PL", "37605030299", "1976-05-03"
		}, "holder.id_number", "PESEL"},
		{"Finnish holder with a Danish CPR", func(o *Order) {
			o.Holder.Nationality, o.Holder.IDNumber, o.Holder.BirthDate = "FI", "070761-4285", "1961-07-07"
		}, "holder.id_number", "henkilötunnus"},
		{"PESEL check digit", func(o *Order) {
			o.Holder.Nationality, o.Holder.IDNumber, o.Holder.BirthDate = "PL", "44051401358", "1944-05-14"
		}, "holder.id_number", "PESEL check digit"},
		{"missing email", func(o *Order) { o.Holder.Email = "" }, "holder.email", "required"},
		{"email without @", func(o *Order) { o.Holder.Email = "anna.example.se" }, "holder.email", "not a valid e-mail"},
		{"email with name", func(o *Order) { o.Holder.Email = "Anna <anna@example.se>" }, "holder.email", "only the address"},
		{"email without dot in domain", func(o *Order) { o.Holder.Email = "anna@localhost" }, "holder.email", "full domain name"},
		{"email with IP literal", func(o *Order) { o.Holder.Email = "anna@[10.0.0.1]" }, "holder.email", "full domain name"},
		{"email too long", func(o *Order) { o.Holder.Email = strings.Repeat("a", 250) + "@x.se" }, "holder.email", "too long"},
		{"missing phone", func(o *Order) { o.Holder.Phone = "" }, "holder.phone", "required"},
		{"phone national form", func(o *Order) { o.Holder.Phone = "0701234567" }, "holder.phone", "international form"},
		{"phone with spaces", func(o *Order) { o.Holder.Phone = "+46 70 123 45 67" }, "holder.phone", "no spaces"},
		{"phone too short", func(o *Order) { o.Holder.Phone = "+461234" }, "holder.phone", "7–15 digits"},
		{"phone too long", func(o *Order) { o.Holder.Phone = "+4670123456789012" }, "holder.phone", "7–15 digits"},
		{"phone country code 0", func(o *Order) { o.Holder.Phone = "+0701234567" }, "holder.phone", "country code"},
		{"missing company name", func(o *Order) { o.Company.Name = "" }, "company.name", "required"},
		{"org number check digit", func(o *Order) { o.Company.OrgNumber = "556677-8898" }, "company.org_number", "check digit is wrong: expected 9, got 8"},
		{"org number without hyphen", func(o *Order) { o.Company.OrgNumber = "5566778899" }, "company.org_number", "hyphen"},
		{"logo not an image", func(o *Order) { o.Company.Logo = []byte("not a picture") }, "company.logo", "unknown format"},
		{"logo too small", func(o *Order) { o.Company.Logo = gradientPNG(t, 300, 100) }, "company.logo", "too small"},
		{"colour logo without logo", func(o *Order) { o.Company.Logo, o.Company.ColorLogo = nil, true }, "company.color_logo", "logo is empty"},
		{"valid_until format", func(o *Order) { o.ValidUntil = "2031-11-22T00:00:00Z" }, "valid_until", "YYYY-MM-DD"},
		{"valid_until over 5 years", func(o *Order) { o.ValidUntil = "2031-11-24" }, "valid_until",
			"a card is valid at most 5 years: latest allowed is 2031-11-23"},
		{"valid_until today", func(o *Order) { o.ValidUntil = "2026-11-23" }, "valid_until", "after today (2026-11-23)"},
		{"valid_until in the past", func(o *Order) { o.ValidUntil = "2026-01-01" }, "valid_until", "after today"},
		{"missing photo", func(o *Order) { o.Photo = nil }, "photo", "photo is required"},
		{"photo not an image", func(o *Order) { o.Photo = []byte("GIF89a") }, "photo", "unknown format"},
		{"photo too small", func(o *Order) { o.Photo = gradientPNG(t, 200, 250) }, "photo", "too small"},
		{"missing delivery name", func(o *Order) { o.Delivery.Name = "" }, "delivery.name", "required"},
		{"missing street", func(o *Order) { o.Delivery.Street = "" }, "delivery.street", "required"},
		{"missing city", func(o *Order) { o.Delivery.City = "" }, "delivery.city", "required"},
		{"missing country", func(o *Order) { o.Delivery.Country = "" }, "delivery.country", "required"},
		{"missing postal code", func(o *Order) { o.Delivery.PostalCode = "" }, "delivery.postal_code", "required"},
		{"Swedish postal code without space", func(o *Order) { o.Delivery.PostalCode = "11122" }, "delivery.postal_code", "NNN NN"},
		{"Swedish postal code with letters", func(o *Order) { o.Delivery.PostalCode = "SE-111 22" }, "delivery.postal_code", "NNN NN"},
		{"foreign postal code with symbols", func(o *Order) { o.Delivery.Country, o.Delivery.PostalCode = "DE", "10115!" }, "delivery.postal_code", "only letters"},
		{"foreign postal code too long", func(o *Order) { o.Delivery.Country, o.Delivery.PostalCode = "DE", "1234567890123" }, "delivery.postal_code", "2–12"},
		{"department only spaces", func(o *Order) { o.Delivery.Department = "  " }, "delivery.department", "only spaces"},
		{"cost centre too long", func(o *Order) { o.Delivery.CostCenter = long }, "delivery.cost_center", "at most 100"},
		{"approval method", func(o *Order) { o.Approvals[0].Method = "sms" }, "approvals[0].method", "use one of bankid, eid, passport_scan"},
		{"approval kind", func(o *Order) { o.Approvals[0].Kind = "orderer" }, "approvals[0].kind", "use one of holder, trade_org"},
		{"approval in the future", func(o *Order) { o.Approvals[0].At = fixtureNow.Add(time.Hour) }, "approvals[0].at", "in the future"},
		{"second approval too old", func(o *Order) {
			o.Approvals = append(o.Approvals, Approval{KindTradeOrg, MethodEID, fixtureNow.AddDate(-2, 0, 0)})
		}, "approvals[1].at", "more than a year old"},
		{"too many approvals", func(o *Order) {
			for range MaxApprovals {
				o.Approvals = append(o.Approvals, o.Approvals[0])
			}
		}, "approvals", "at most 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := loadFixture(t)
			tt.change(o)
			err := o.Validate(fixtureChecks())
			if tt.path == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			f := onlyField(t, err)
			if f.Path != tt.path || !strings.Contains(f.Message, tt.msg) {
				t.Fatalf("got %s: %q, want %s: …%q…", f.Path, f.Message, tt.path, tt.msg)
			}
			for _, secret := range []string{o.Holder.IDNumber, o.Holder.FirstName, o.Holder.LastName} {
				if len(secret) >= 4 && strings.Contains(err.Error(), secret) {
					t.Errorf("message quotes personal data: %v", err)
				}
			}
		})
	}
}

// Every problem is listed at once, in document order, so the sender can fix
// them in one go.
func TestValidateListsAllProblems(t *testing.T) {
	o := loadFixture(t)
	o.CardType = "x"
	o.Holder.IDNumber = "19850412-1234"
	o.Photo = nil
	o.Approvals[0].Method = ""
	err := o.Validate(fixtureChecks())
	verr := asValidation(t, err)
	want := []string{"card_type", "holder.id_number", "photo", "approvals[0].method"}
	if got := paths(verr); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	if !strings.HasPrefix(err.Error(), "the order has 4 problems: card_type: unknown card type") {
		t.Errorf("Error() = %q", err)
	}
}

func TestValidateUsesPrintNameCheck(t *testing.T) {
	o := loadFixture(t)
	c := fixtureChecks()
	var got string
	c.PrintName = func(s string) error {
		got = s
		return errors.New("the name does not fit on two lines at 6 pt: shorten it")
	}
	f := onlyField(t, o.Validate(c))
	if got != o.Holder.PrintName || f.Path != "holder.print_name" || !strings.Contains(f.Message, "does not fit") {
		t.Fatalf("checked %q, reported %+v", got, f)
	}
}

func TestReadiness(t *testing.T) {
	at := fixtureNow.Add(-time.Hour)
	holder := Approval{KindHolder, MethodBankID, at}
	trade := Approval{KindTradeOrg, MethodEID, at}
	tests := []struct {
		name                  string
		required              bool
		approvals             []Approval
		wantHolder, wantTrade bool
		wantReady             bool
	}{
		{"none", false, nil, false, false, false},
		{"holder", false, []Approval{holder}, true, false, true},
		{"trade org only", false, []Approval{trade}, false, true, false},
		{"trade org required, missing", true, []Approval{holder}, true, false, false},
		{"trade org required, present", true, []Approval{trade, holder}, true, true, true},
		{"trade org required, holder missing", true, []Approval{trade}, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := loadFixture(t)
			o.Company.TradeOrgApprovalRequired, o.Approvals = tt.required, tt.approvals
			if err := o.Validate(fixtureChecks()); err != nil {
				t.Fatalf("an order waiting for approval must still be valid: %v", err)
			}
			if o.HasHolderApproval() != tt.wantHolder || o.HasTradeOrgApproval() != tt.wantTrade || o.ReadyForProduction() != tt.wantReady {
				t.Errorf("holder %v trade %v ready %v, want %v %v %v", o.HasHolderApproval(), o.HasTradeOrgApproval(),
					o.ReadyForProduction(), tt.wantHolder, tt.wantTrade, tt.wantReady)
			}
		})
	}
}

func TestValidUntilDate(t *testing.T) {
	stockholm := time.FixedZone("CET", 3600)
	tests := []struct {
		validUntil string
		production time.Time
		want       string
	}{
		{"", time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC), "2031-11-23"},
		{"2028-06-30", time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC), "2028-06-30"},
		{"", time.Date(2028, 2, 29, 9, 0, 0, 0, time.UTC), "2033-02-28"}, // never past 5 years
		{"", time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC).In(stockholm), "2031-11-24"},
		// Produced later than intake: valid_until still caps it at 5 years.
		{"2031-11-23", time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), "2031-11-20"},
	}
	for _, tt := range tests {
		o := Order{ValidUntil: tt.validUntil}
		got := o.ValidUntilDate(tt.production)
		if got.Format(dateLayout) != tt.want || got.Hour() != 0 || got.Location() != tt.production.Location() {
			t.Errorf("ValidUntilDate(%q, %v) = %v, want %s 00:00 in %v", tt.validUntil, tt.production, got, tt.want, tt.production.Location())
		}
	}
}
