package order

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The checks below name the kind of number, never its value: the messages may
// be logged, and an ID number is personal data.

// CheckPersonnummer checks a Swedish personnummer or samordningsnummer
// (day of birth + 60) written YYYYMMDD-NNNC: a valid date and the Luhn check
// digit over the ten digits YYMMDDNNN C. The ten-digit form is refused: it
// hides the century, which the card and the birth-date check need.
func CheckPersonnummer(s string) error {
	_, _, err := parsePersonnummer(s)
	return err
}

// parsePersonnummer returns the birth date encoded in a personnummer or
// samordningsnummer, and which of the two it is.
func parsePersonnummer(s string) (birth time.Time, samordning bool, err error) {
	switch {
	case len(s) == 13 && s[8] == '-' && allDigits(s[:8]) && allDigits(s[9:]):
	case len(s) == 11 && (s[6] == '-' || s[6] == '+') && allDigits(s[:6]) && allDigits(s[7:]):
		return time.Time{}, false, errors.New("write the personnummer with a four-digit year: YYYYMMDD-NNNC")
	case len(s) == 12 && allDigits(s):
		return time.Time{}, false, errors.New("put a hyphen before the last four digits of the personnummer: YYYYMMDD-NNNC")
	default:
		return time.Time{}, false, errors.New("a personnummer is written YYYYMMDD-NNNC (eight digits, a hyphen, four digits)")
	}
	name, day := "personnummer", atoi(s[6:8])
	if samordning = day > 60; samordning {
		name, day = "samordningsnummer", day-60
	}
	birth, ok := makeDate(atoi(s[:4]), atoi(s[4:6]), day)
	if !ok {
		return time.Time{}, false, fmt.Errorf("the %s does not start with a valid date (YYYYMMDD; a samordningsnummer adds 60 to the day): check it for typos", name)
	}
	if err := checkLuhn(s[2:8]+s[9:], name); err != nil {
		return time.Time{}, false, err
	}
	return birth, samordning, nil
}

// CheckOrgNumber checks a Swedish organisation number NNNNNN-NNNC: Luhn check
// digit, and a third digit of 2 or more. A sole trader's organisation number
// is the owner's personnummer in its ten-digit form YYMMDD-NNNC, so a third
// digit below 2 is accepted when the first six digits are a date.
func CheckOrgNumber(s string) error {
	switch {
	case s == "":
		return errors.New("the organisation number is required, as NNNNNN-NNNC")
	case len(s) == 11 && s[6] == '-' && allDigits(s[:6]) && allDigits(s[7:]):
	case len(s) == 10 && allDigits(s):
		return errors.New("put a hyphen before the last four digits of the organisation number: NNNNNN-NNNC")
	default:
		return errors.New("an organisation number is written NNNNNN-NNNC (six digits, a hyphen, four digits); for a sole trader, the owner's personnummer as YYMMDD-NNNC")
	}
	digits := s[:6] + s[7:]
	if digits[2] < '2' {
		day := atoi(digits[4:6])
		if day > 60 {
			day -= 60
		}
		month := atoi(digits[2:4])
		// Either century will do: the ten-digit form does not say which.
		_, ok19 := makeDate(1900+atoi(digits[:2]), month, day)
		_, ok20 := makeDate(2000+atoi(digits[:2]), month, day)
		if !ok19 && !ok20 {
			return errors.New("the organisation number is not valid: a company's number has 2 or more as its third digit, and a sole trader's (a personnummer, YYMMDD-NNNC) starts with a date; check it for typos")
		}
	}
	return checkLuhn(digits, "organisation number")
}

// checkLuhn checks the last digit of digits against the Luhn sum of the others.
func checkLuhn(digits, name string) error {
	want := luhnDigit(digits[:len(digits)-1])
	if got := int(digits[len(digits)-1] - '0'); got != want {
		return fmt.Errorf("the %s check digit is wrong: expected %d, got %d — check the number for typos", name, want, got)
	}
	return nil
}

// luhnDigit computes the Luhn check digit for payload (ASCII digits): every
// second digit from the right, starting with the rightmost, is doubled.
func luhnDigit(payload string) int {
	sum := 0
	for i := range len(payload) {
		d := int(payload[len(payload)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// CheckPESEL checks a Polish PESEL: 11 digits YYMMDDZZZXQ, the month carrying
// the century (+80 1800s, +0 1900s, +20 2000s, +40 2100s, +60 2200s), check
// digit with weights 1 3 7 9 1 3 7 9 1 3.
func CheckPESEL(s string) error {
	if !elevenDigits(s) {
		return errors.New("a PESEL has exactly 11 digits, with no spaces or other characters")
	}
	_, err := parsePESEL(s)
	return err
}

// The parsers below check a number that already has their shape (see
// nationalNumbers) and return the birth date it encodes.

func parsePESEL(s string) (time.Time, error) {
	yy, mm, dd := atoi(s[:2]), atoi(s[2:4]), atoi(s[4:6])
	century := map[int]int{4: 1800, 0: 1900, 1: 2000, 2: 2100, 3: 2200}[mm/20]
	birth, ok := makeDate(century+yy, mm%20, dd)
	if !ok {
		return time.Time{}, errors.New("the PESEL does not start with a valid date (YYMMDD, the month carrying the century): check it for typos")
	}
	weights := [10]int{1, 3, 7, 9, 1, 3, 7, 9, 1, 3}
	sum := 0
	for i, w := range weights {
		sum += w * int(s[i]-'0')
	}
	if want, got := (10-sum%10)%10, int(s[10]-'0'); want != got {
		return time.Time{}, fmt.Errorf("the PESEL check digit is wrong: expected %d, got %d — check the number for typos", want, got)
	}
	return birth, nil
}

// parseNorwegian checks a Norwegian fødselsnummer or D-nummer (day + 40):
// 11 digits DDMMYYIIIKK with two mod-11 check digits. H-numbers (month + 40)
// are accepted too. The century follows from the individual number.
func parseNorwegian(s string) (time.Time, error) {
	name := "fødselsnummer"
	dd, mm, yy, ind := atoi(s[:2]), atoi(s[2:4]), atoi(s[4:6]), atoi(s[6:9])
	if dd > 40 {
		name, dd = "D-nummer", dd-40
	}
	if mm > 40 {
		mm -= 40
	}
	year := -1
	switch {
	case ind < 500:
		year = 1900 + yy
	case ind < 750 && yy >= 54:
		year = 1800 + yy
	case yy < 40:
		year = 2000 + yy
	case ind >= 900:
		year = 1900 + yy
	}
	birth, ok := makeDate(year, mm, dd)
	if year < 0 || !ok {
		return time.Time{}, fmt.Errorf("the %s does not start with a valid date (DDMMYY): check it for typos", name)
	}
	k1 := mod11(s[:9], []int{3, 7, 6, 1, 8, 9, 4, 5, 2})
	k2 := mod11(s[:9]+string(rune('0'+k1)), []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2})
	if k1 == 10 || k2 == 10 {
		return time.Time{}, fmt.Errorf("the %s is not valid (no check digit fits it): check the number for typos", name)
	}
	if got := int(s[9] - '0'); got != k1 {
		return time.Time{}, fmt.Errorf("the first %s check digit is wrong: expected %d, got %d — check the number for typos", name, k1, got)
	}
	if got := int(s[10] - '0'); got != k2 {
		return time.Time{}, fmt.Errorf("the second %s check digit is wrong: expected %d, got %d — check the number for typos", name, k2, got)
	}
	return birth, nil
}

// mod11 is the Norwegian control digit: 11 - (weighted sum mod 11), where 11
// means 0 and 10 means no digit fits.
func mod11(digits string, weights []int) int {
	sum := 0
	for i, w := range weights {
		sum += w * int(digits[i]-'0')
	}
	return (11 - sum%11) % 11
}

// cprShape is DDMMYY-SSSS, the hyphen optional.
func cprShape(s string) bool {
	return len(s) == 10 && allDigits(s) || len(s) == 11 && s[6] == '-' && allDigits(s[:6]) && allDigits(s[7:])
}

// parseDanish checks a Danish CPR number. Denmark dropped the mod-11 check in
// 2007, so only the date is checked; the century follows from the seventh
// digit.
func parseDanish(s string) (time.Time, error) {
	s = strings.Replace(s, "-", "", 1)
	dd, mm, yy, seventh := atoi(s[:2]), atoi(s[2:4]), atoi(s[4:6]), int(s[6]-'0')
	year := 1900 + yy
	switch {
	case (seventh == 4 || seventh == 9) && yy <= 36:
		year = 2000 + yy
	case seventh >= 5 && seventh <= 8 && yy <= 57:
		year = 2000 + yy
	case seventh >= 5 && seventh <= 8:
		year = 1800 + yy
	}
	birth, ok := makeDate(year, mm, dd)
	if !ok {
		return time.Time{}, errors.New("the CPR number does not start with a valid date (DDMMYY): check it for typos")
	}
	return birth, nil
}

// parseFinnish checks a Finnish henkilötunnus DDMMYYCZZZQ: the century sign
// C (+ 1800s; - Y X W V U 1900s; A B C D E F 2000s), and the check character
// Q = DDMMYYZZZ mod 31 looked up in "0123456789ABCDEFHJKLMNPRSTUVWXY".
func parseFinnish(s string) (time.Time, error) {
	const checkChars = "0123456789ABCDEFHJKLMNPRSTUVWXY"
	century := map[byte]int{'+': 1800, '-': 1900, 'Y': 1900, 'X': 1900, 'W': 1900, 'V': 1900, 'U': 1900,
		'A': 2000, 'B': 2000, 'C': 2000, 'D': 2000, 'E': 2000, 'F': 2000}[s[6]]
	if century == 0 {
		return time.Time{}, errors.New("the henkilötunnus has no valid century sign as its seventh character (- or Y X W V U for 1900s, A–F for 2000s, + for 1800s)")
	}
	birth, ok := makeDate(century+atoi(s[4:6]), atoi(s[2:4]), atoi(s[:2]))
	if !ok {
		return time.Time{}, errors.New("the henkilötunnus does not start with a valid date (DDMMYY): check it for typos")
	}
	n := atoi(s[:6] + s[7:10])
	if want := checkChars[n%31]; s[10] != want {
		return time.Time{}, fmt.Errorf("the henkilötunnus check character is wrong: expected %c — check the number for typos", want)
	}
	return birth, nil
}

// hetuShape is DDMMYY?ZZZ? with any century sign and check character.
func hetuShape(s string) bool {
	return len(s) == 11 && allDigits(s[:6]) && allDigits(s[7:10])
}

// parseBaltic checks an Estonian isikukood or Lithuanian asmens kodas:
// 11 digits GYYMMDDSSSC, G giving sex and century (1–2 1800s, 3–4 1900s,
// 5–6 2000s, 7–8 2100s), C the two-pass mod-11 check digit.
func parseBaltic(s, name string) (time.Time, error) {
	g := int(s[0] - '0')
	if g < 1 || g > 8 {
		return time.Time{}, fmt.Errorf("the first digit of an %s is 1–8 (sex and century): check it for typos", name)
	}
	birth, ok := makeDate(1800+100*((g-1)/2)+atoi(s[1:3]), atoi(s[3:5]), atoi(s[5:7]))
	if !ok {
		return time.Time{}, fmt.Errorf("the %s has no valid date in digits 2–7 (YYMMDD): check it for typos", name)
	}
	sum := func(w [10]int) int {
		t := 0
		for i, x := range w {
			t += x * int(s[i]-'0')
		}
		return t % 11
	}
	want := sum([10]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 1})
	if want == 10 {
		want = sum([10]int{3, 4, 5, 6, 7, 8, 9, 1, 2, 3}) % 10 // a second 10 means 0
	}
	if got := int(s[10] - '0'); got != want {
		return time.Time{}, fmt.Errorf("the %s check digit is wrong: expected %d, got %d — check the number for typos", name, want, got)
	}
	return birth, nil
}

// CheckIDNumber checks that id is an ID number that fits the holder's
// nationality, as the ID06 portals demand ("the format of the personnummer
// must match the chosen nationality"):
//   - a Swedish holder (SE) has a personnummer, YYYYMMDD-NNNC, and approves
//     with BankID; a holder of another nationality with a Swedish personnummer
//     must be ordered as SE;
//   - a samordningsnummer (day + 60) is accepted with any nationality: ID06
//     asks for it when a foreign holder has one;
//   - otherwise the holder approves with a passport or national ID card of
//     that nationality. A number shaped like that country's personal number is
//     checked as one: Polish PESEL, Norwegian fødselsnummer or D-nummer,
//     Danish CPR, Finnish henkilötunnus, Estonian isikukood, Lithuanian
//     asmens kodas. Any other number is taken as the document's number:
//     5–20 letters and digits.
//
// Where the number encodes a date it must equal birthDate (YYYY-MM-DD); an
// empty or unreadable birthDate skips that comparison.
func CheckIDNumber(nationality, id, birthDate string) error {
	if err := CheckNationality(nationality); err != nil {
		return fmt.Errorf("the ID number cannot be checked without a valid nationality: %w", err)
	}
	if id == "" {
		return errIDNumberRequired
	}
	birth, hasBirth, err := parseIDNumber(nationality, id)
	if err != nil {
		return err
	}
	want, err := time.Parse(dateLayout, birthDate)
	if hasBirth && err == nil && !birth.Equal(want) {
		return errors.New("the birth date inside the ID number does not match birth_date: check both for typos")
	}
	return nil
}

var errIDNumberRequired = errors.New("the ID number is required: the personnummer for a Swedish holder, otherwise the number of the passport or national ID card")

// nationalNumbers are the personal numbers checked with their check digits,
// by nationality; shape tells them apart from passport and ID card numbers.
var nationalNumbers = map[string]struct {
	shape func(string) bool
	parse func(string) (time.Time, error)
}{
	"PL": {elevenDigits, parsePESEL},
	"NO": {elevenDigits, parseNorwegian},
	"DK": {cprShape, parseDanish},
	"FI": {hetuShape, parseFinnish},
	"EE": {elevenDigits, func(s string) (time.Time, error) { return parseBaltic(s, "isikukood") }},
	"LT": {elevenDigits, func(s string) (time.Time, error) { return parseBaltic(s, "asmens kodas") }},
}

func parseIDNumber(nationality, id string) (birth time.Time, hasBirth bool, err error) {
	if nationality == "SE" || len(id) == 13 && id[8] == '-' {
		birth, samordning, err := parsePersonnummer(id)
		if err == nil && nationality != "SE" && !samordning {
			return time.Time{}, false, errors.New("a Swedish personnummer goes with nationality SE (the holder approves with BankID): set the nationality to SE, or give the number of the passport or ID card the holder approves with")
		}
		return birth, err == nil, err
	}
	if n, ok := nationalNumbers[nationality]; ok && n.shape(id) {
		birth, err := n.parse(id)
		return birth, err == nil, err
	}
	return time.Time{}, false, checkDocumentNumber(id)
}

// checkDocumentNumber accepts the number of a passport or national ID card:
// 5–20 ASCII letters and digits.
func checkDocumentNumber(id string) error {
	if len(id) < 5 || len(id) > 20 {
		return errors.New("a passport or national ID number has 5–20 letters and digits")
	}
	for i := range len(id) {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return errors.New("a passport or national ID number has only letters A–Z and digits: leave out spaces, hyphens and other characters")
		}
	}
	return nil
}

func elevenDigits(s string) bool { return len(s) == 11 && allDigits(s) }

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// atoi converts a string already known to be ASCII digits.
func atoi(s string) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// makeDate is the date y-m-d in UTC, or false when there is no such day.
func makeDate(y, m, d int) (time.Time, bool) {
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return t, m >= 1 && m <= 12 && d >= 1 && t.Year() == y && int(t.Month()) == m && t.Day() == d
}
