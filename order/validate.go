package order

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Checks holds what Validate needs from outside the order: the clock and the
// checks owned by other packages. A nil function skips that check.
type Checks struct {
	// Now is the time of intake (required: a zero Now puts every date in
	// the future). Its location decides which calendar day is "today" for
	// birth_date and valid_until: pass the station's local time.
	Now       time.Time
	Photo     func([]byte) error // header check of the photo (imaging.CheckPhotoHeader)
	Logo      func([]byte) error // header check of the logo (imaging.CheckLogoHeader)
	PrintName func(string) error // does the name fit the card face (printer.Template.CheckName)
}

// Limits of the rules, exported so that documentation and clients can quote them.
const (
	MaxIDLen        = 64
	MaxTextLen      = 100 // names, street, city, cost centre, department
	MaxApprovals    = 10
	MinHolderAge    = 13 // the youngest a person may work in Sweden, even lightly
	ClockSkew       = 5 * time.Minute
	MaxApprovalAge  = 365 * 24 * time.Hour
	earliestBirthYr = 1900
)

// Validate applies every rule of docs/design.md §8 and returns a *ValidationError
// listing each problem, or nil. An order without holder approval is valid: it
// waits (see ReadyForProduction).
func (o *Order) Validate(c Checks) error {
	v := &validator{}
	today := dateOf(c.Now)

	v.check("id", CheckID(o.ID))
	v.check("card_type", oneOf(o.CardType, "card type", CardID06, CardVisitor, CardTemporary))

	h := o.Holder
	v.check("holder.first_name", checkText(h.FirstName, true))
	v.check("holder.last_name", checkText(h.LastName, true))
	if err := checkText(h.PrintName, true); err != nil {
		v.check("holder.print_name", err)
	} else if c.PrintName != nil {
		v.check("holder.print_name", c.PrintName(h.PrintName))
	}
	natErr := CheckNationality(h.Nationality)
	v.check("holder.nationality", natErr)
	birthErr := checkBirthDate(h.BirthDate, today)
	v.check("holder.birth_date", birthErr)
	switch {
	case natErr == nil:
		birth := h.BirthDate
		if birthErr != nil {
			birth = "" // already reported; comparing would only repeat it
		}
		v.check("holder.id_number", CheckIDNumber(h.Nationality, h.IDNumber, birth))
	case h.IDNumber == "":
		// The number's format depends on the nationality, but its absence does not.
		v.check("holder.id_number", errIDNumberRequired)
	}
	v.check("holder.email", checkEmail(h.Email))
	v.check("holder.phone", checkPhone(h.Phone))

	co := o.Company
	v.check("company.name", checkText(co.Name, true))
	v.check("company.org_number", CheckOrgNumber(co.OrgNumber))
	if len(co.Logo) > 0 && c.Logo != nil {
		v.check("company.logo", c.Logo(co.Logo))
	}
	if co.ColorLogo && len(co.Logo) == 0 {
		v.check("company.color_logo", fmt.Errorf("a colour logo was ordered but company.logo is empty: send the logo or set color_logo to false"))
	}

	v.check("valid_until", checkValidUntil(o.ValidUntil, today))

	switch {
	case len(o.Photo) == 0:
		v.check("photo", fmt.Errorf("the photo is required: send the holder's portrait as a base64 JPEG or PNG"))
	case c.Photo != nil:
		v.check("photo", c.Photo(o.Photo))
	}

	d := o.Delivery
	v.check("delivery.name", checkText(d.Name, true))
	v.check("delivery.street", checkText(d.Street, true))
	v.check("delivery.city", checkText(d.City, true))
	countryErr := CheckNationality(d.Country)
	v.check("delivery.country", countryErr)
	if countryErr == nil {
		v.check("delivery.postal_code", checkPostalCode(d.PostalCode, d.Country))
	}
	v.check("delivery.cost_center", checkText(d.CostCenter, false))
	v.check("delivery.department", checkText(d.Department, false))

	if len(o.Approvals) > MaxApprovals {
		v.check("approvals", fmt.Errorf("at most %d approvals per order", MaxApprovals))
	} else {
		for i, a := range o.Approvals {
			a.check(v, fmt.Sprintf("approvals[%d].", i), c.Now)
		}
	}
	return v.err("order")
}

// Validate checks an approval sent on its own (POST /v1/orders/{id}/approvals).
func (a Approval) Validate(now time.Time) error {
	v := &validator{}
	a.check(v, "", now)
	return v.err("approval")
}

func (a Approval) check(v *validator, prefix string, now time.Time) {
	v.check(prefix+"kind", oneOf(a.Kind, "approval kind", KindHolder, KindTradeOrg))
	v.check(prefix+"method", oneOf(a.Method, "approval method", MethodBankID, MethodEID, MethodPassportScan))
	switch {
	case a.At.IsZero():
		v.check(prefix+"at", fmt.Errorf("the time of approval is required, in RFC 3339, e.g. 2026-11-22T10:00:00Z"))
	case a.At.After(now.Add(ClockSkew)):
		v.check(prefix+"at", fmt.Errorf("the approval time lies in the future: check the clock and time zone of the approving system"))
	case a.At.Before(now.Add(-MaxApprovalAge)):
		v.check(prefix+"at", fmt.Errorf("the approval is more than a year old: ask for a new approval"))
	}
}

type validator struct{ fields []FieldError }

func (v *validator) check(path string, err error) {
	if err != nil {
		v.fields = append(v.fields, FieldError{Path: path, Message: err.Error()})
	}
}

func (v *validator) err(subject string) error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Subject: subject, Fields: v.fields}
}

// CheckID is the one rule for order ids. Intake applies it, and every later
// stage may rely on it: an id is safe as a file name, a print job name and a
// URL path segment. That is why it must start with a letter or a digit: "."
// and ".." are not a name to a file system or a URL, and "-x" reads as an
// option to a command.
func CheckID(id string) error {
	if id == "" {
		return fmt.Errorf("the order id is required: your system's unique id for the order, 1–%d characters A–Z a–z 0–9 . _ -, starting with a letter or a digit", MaxIDLen)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("the order id is too long: at most %d characters", MaxIDLen)
	}
	for i := range len(id) {
		c := id[i]
		alnum := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("the order id may only contain letters A–Z a–z, digits and . _ -")
		}
		if i == 0 && !alnum {
			return fmt.Errorf("the order id must start with a letter or a digit (A–Z a–z 0–9); . _ - may follow")
		}
	}
	return nil
}

func oneOf(s, what string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	if s == "" {
		return fmt.Errorf("the %s is required: one of %s", what, strings.Join(allowed, ", "))
	}
	return fmt.Errorf("unknown %s: use one of %s (lower case)", what, strings.Join(allowed, ", "))
}

// checkText is the rule for names and address lines: at most MaxTextLen
// characters, no control or invisible formatting characters (they break the
// card face and can hide text), no surrounding spaces.
func checkText(s string, required bool) error {
	if strings.TrimSpace(s) == "" {
		if required {
			return fmt.Errorf("this field is required")
		}
		if s != "" {
			return fmt.Errorf("contains only spaces: leave it empty or fill it in")
		}
		return nil
	}
	if n := utf8.RuneCountInString(s); n > MaxTextLen {
		return fmt.Errorf("too long: %d characters, at most %d", n, MaxTextLen)
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("contains a control or invisible character (line break, tab, zero-width or direction mark): remove it")
		}
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("starts or ends with a space: remove it")
	}
	return nil
}

func checkBirthDate(s string, today time.Time) error {
	if s == "" {
		return fmt.Errorf("the birth date is required, as YYYY-MM-DD")
	}
	d, err := time.ParseInLocation(dateLayout, s, today.Location())
	if err != nil {
		return fmt.Errorf("not a valid date: write it as YYYY-MM-DD, e.g. 1985-04-12")
	}
	switch {
	case d.After(today):
		return fmt.Errorf("the birth date lies in the future: check the year")
	case d.Year() < earliestBirthYr:
		return fmt.Errorf("the birth date is before %d: check the year", earliestBirthYr)
	case d.After(addYears(today, -MinHolderAge)):
		return fmt.Errorf("the holder would be younger than %d years: check the year", MinHolderAge)
	}
	return nil
}

func checkEmail(s string) error {
	if s == "" {
		return fmt.Errorf("the holder's e-mail address is required")
	}
	const hint = "not a valid e-mail address: write only the address, like anna@example.se"
	if len(s) > 254 {
		return fmt.Errorf("the e-mail address is too long: at most 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return fmt.Errorf("%s", hint)
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") || strings.HasSuffix(domain, ".") {
		return fmt.Errorf("the e-mail domain must be a full domain name like example.se")
	}
	return nil
}

// checkPhone accepts E.164: "+", a country code not starting with 0, and
// 7–15 digits in all.
func checkPhone(s string) error {
	if s == "" {
		return fmt.Errorf("the holder's mobile number is required, in international form like +46701234567")
	}
	digits := strings.TrimPrefix(s, "+")
	if digits == s || !allDigits(digits) || len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return fmt.Errorf("write the phone number in international form: + and the country code, then 7–15 digits in all, no spaces (e.g. +46701234567)")
	}
	return nil
}

func checkValidUntil(s string, today time.Time) error {
	if s == "" {
		return nil
	}
	d, err := time.ParseInLocation(dateLayout, s, today.Location())
	if err != nil {
		return fmt.Errorf("not a valid date: write it as YYYY-MM-DD, or leave it out for the longest validity (%d years)", MaxValidityYears)
	}
	if !d.After(today) {
		return fmt.Errorf("valid_until must lie after today (%s): set a later date or leave it out", today.Format(dateLayout))
	}
	if latest := addYears(today, MaxValidityYears); d.After(latest) {
		return fmt.Errorf("a card is valid at most %d years: latest allowed is %s", MaxValidityYears, latest.Format(dateLayout))
	}
	return nil
}

// checkPostalCode wants the Swedish form "NNN NN" for Sweden; elsewhere 2–12
// letters, digits, spaces or hyphens.
func checkPostalCode(s, country string) error {
	if s == "" {
		return fmt.Errorf("the postal code is required")
	}
	if country == "SE" {
		if len(s) == 6 && s[3] == ' ' && allDigits(s[:3]) && allDigits(s[4:]) {
			return nil
		}
		return fmt.Errorf("a Swedish postal code is written NNN NN, e.g. 111 22")
	}
	if len(s) < 2 || len(s) > 12 {
		return fmt.Errorf("a postal code has 2–12 characters")
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == ' ' || r == '-') {
			return fmt.Errorf("a postal code has only letters A–Z, digits, spaces and hyphens")
		}
	}
	return nil
}
