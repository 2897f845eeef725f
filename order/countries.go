package order

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed countries.txt
var countriesTxt string

type country struct{ alpha2, name string }

// countries maps alpha-2 codes to countries; alpha3 maps alpha-3 codes, only
// to suggest the right code to a sender who used one.
var countries, alpha3 = parseCountries(countriesTxt)

func parseCountries(txt string) (map[string]country, map[string]country) {
	by2, by3 := map[string]country{}, map[string]country{}
	for line := range strings.Lines(txt) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			panic(fmt.Sprintf("order: countries.txt: malformed line %q", line))
		}
		c := country{alpha2: parts[0], name: parts[2]}
		by2[parts[0]], by3[parts[1]] = c, c
	}
	return by2, by3
}

// CheckNationality checks an ISO 3166-1 alpha-2 country code in upper case
// (plus XK for Kosovo).
func CheckNationality(code string) error {
	if _, ok := countries[code]; ok {
		return nil
	}
	up := strings.ToUpper(code)
	if c, ok := countries[up]; ok {
		return fmt.Errorf("write the country code in upper case: %s (%s)", c.alpha2, c.name)
	}
	if c, ok := alpha3[up]; ok {
		return fmt.Errorf("use the two-letter code %s (%s), not the three-letter one", c.alpha2, c.name)
	}
	if up == "UK" {
		return fmt.Errorf("use GB for the United Kingdom (ISO 3166-1)")
	}
	if code == "" {
		return fmt.Errorf("the country code is required: two letters of ISO 3166-1, e.g. SE")
	}
	return fmt.Errorf("not an ISO 3166-1 two-letter country code (e.g. SE, PL, DE)")
}
