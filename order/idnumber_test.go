package order

import (
	"strings"
	"testing"
)

// The valid numbers below were computed with an independent implementation
// (a Python script, not this package), or are published examples.

func TestCheckPersonnummer(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // substring; "" means valid
	}{
		{"19121212-1212", ""}, // Skatteverket's example holder Tolvan Tolvansson
		{"19850412-1230", ""}, // Luhn(850412123) = 0
		{"20000229-1235", ""}, // leap day
		{"19701063-2391", ""}, // samordningsnummer, day 03 + 60
		{"19850472-1237", ""}, // samordningsnummer for 1985-04-12
		{"19850412-1234", "personnummer check digit is wrong: expected 0, got 4"},
		{"19701063-2392", "samordningsnummer check digit is wrong: expected 1, got 2"},
		{"19850230-1234", "personnummer does not start with a valid date"},
		{"19851312-1234", "does not start with a valid date"},
		{"19010229-1234", "does not start with a valid date"},                   // 1901 is no leap year
		{"19850492-1234", "samordningsnummer does not start with a valid date"}, // day 32
		{"850412-1230", "four-digit year"},
		{"850412+1230", "four-digit year"},
		{"198504121230", "put a hyphen"},
		{"19850412 1230", "written YYYYMMDD-NNNC"},
		{"1985-04-12-1230", "written YYYYMMDD-NNNC"},
		{"", "written YYYYMMDD-NNNC"},
		{"19850412-12３0", "written YYYYMMDD-NNNC"},
		{"abcdefgh-ijkl", "written YYYYMMDD-NNNC"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkErr(t, CheckPersonnummer(tt.in), tt.wantErr, tt.in)
		})
	}
}

func TestCheckOrgNumber(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"556677-8899", ""}, // docs/design.md §7's example
		{"556036-0793", ""},
		{"640823-3234", ""}, // sole trader: personnummer 1964-08-23
		{"811218-9876", ""}, // sole trader
		{"000101-0016", ""}, // sole trader born 1900 or 2000
		{"701063-2391", ""}, // sole trader with a samordningsnummer
		{"556677-8898", "organisation number check digit is wrong: expected 9, got 8"},
		{"640823-3235", "check digit is wrong: expected 4, got 5"},
		{"001301-0012", "organisation number is not valid"}, // Luhn right, third digit < 2 and no date
		{"5566778899", "put a hyphen"},
		{"55667-78899", "written NNNNNN-NNNC"},
		{"556677-889", "written NNNNNN-NNNC"},
		{"16556677-8899", "written NNNNNN-NNNC"},
		{"", "organisation number is required"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkErr(t, CheckOrgNumber(tt.in), tt.wantErr, tt.in)
		})
	}
}

func TestCheckPESEL(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"44051401359", ""}, // the published example, 1944-05-14
		{"02210300125", ""}, // 2002-01-03: month + 20
		{"85123100013", ""},
		{"02292900000", ""}, // 2002-09-29
		{"44051401358", "PESEL check digit is wrong: expected 9, got 8"},
		{"99023012345", "does not start with a valid date"}, // 30 February
		{"99133112345", "does not start with a valid date"}, // month 13
		{"4405140135", "exactly 11 digits"},
		{"440514013599", "exactly 11 digits"},
		{"4405140135X", "exactly 11 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkErr(t, CheckPESEL(tt.in), tt.wantErr, tt.in)
		})
	}
}

func TestCheckIDNumber(t *testing.T) {
	tests := []struct {
		name, nat, id, birth, wantErr string
	}{
		{"SE personnummer", "SE", "19850412-1230", "1985-04-12", ""},
		{"SE samordningsnummer", "SE", "19850472-1237", "1985-04-12", ""},
		{"SE date mismatch", "SE", "19850412-1230", "1985-04-13", "does not match birth_date"},
		{"SE bad check digit", "SE", "19850412-1234", "1985-04-12", "check digit is wrong"},
		{"SE passport number instead", "SE", "AB1234567", "1985-04-12", "YYYYMMDD-NNNC"},
		{"SE birth date unknown skips comparison", "SE", "19850412-1230", "", ""},
		{"PL PESEL", "PL", "44051401359", "1944-05-14", ""},
		{"PL PESEL 2000s", "PL", "02210300125", "2002-01-03", ""},
		{"PL PESEL date mismatch", "PL", "44051401359", "1945-05-14", "does not match birth_date"},
		{"PL bad PESEL", "PL", "44051401358", "1944-05-14", "PESEL check digit"},
		{"PL with a Swedish personnummer", "PL", "19850412-1230", "1985-04-12", "goes with nationality SE"},
		{"PL with a samordningsnummer", "PL", "19850472-1237", "1985-04-12", ""},
		{"PL with a passport number", "PL", "EA1234567", "1985-04-12", ""},
		{"PL with an ID card number", "PL", "ABA300000", "1985-04-12", ""},
		{"PL with an Estonian isikukood", "PL", "37605030299", "1976-05-03", "PESEL does not start with a valid date"},
		{"SE with a PESEL", "SE", "44051401359", "1944-05-14", "YYYYMMDD-NNNC"},
		{"NO fødselsnummer", "NO", "12048512346", "1985-04-12", ""},
		{"NO fødselsnummer 2000s", "NO", "15060751274", "2007-06-15", ""},
		{"NO leap day", "NO", "29020050169", "2000-02-29", ""},
		{"NO D-nummer", "NO", "52048512410", "1985-04-12", ""},
		{"NO H-nummer", "NO", "12448512329", "1985-04-12", ""},
		{"NO 1800s", "NO", "43129950065", "1899-12-03", ""},
		{"NO second digit wrong", "NO", "12048512347", "1985-04-12", "second fødselsnummer check digit is wrong: expected 6, got 7"},
		{"NO first digit wrong", "NO", "12048512356", "1985-04-12", "first fødselsnummer check digit is wrong: expected 4, got 5"},
		{"NO no digit fits", "NO", "52048512500", "1985-04-12", "no check digit fits"},
		{"NO unassigned century", "NO", "31129987688", "1999-12-31", "valid date"},
		{"NO date mismatch", "NO", "12048512346", "1985-04-11", "does not match"},
		{"NO passport number", "NO", "FC1234567", "1985-04-12", ""},
		{"DK CPR", "DK", "070761-4285", "1961-07-07", ""},
		{"DK CPR without hyphen", "DK", "0707614285", "1961-07-07", ""},
		{"DK CPR 2000s", "DK", "010105-4000", "2005-01-01", ""},
		{"DK CPR 1800s", "DK", "010160-5000", "1860-01-01", ""},
		{"DK CPR seventh digit 5, 2000s", "DK", "010157-5000", "2057-01-01", ""},
		{"DK CPR bad date", "DK", "300201-1234", "1901-02-28", "valid date"},
		{"DK CPR date mismatch", "DK", "070761-4285", "2061-07-07", "does not match"},
		{"DK CPR with a letter is no CPR", "DK", "07076A-4285", "1961-07-07", "leave out spaces, hyphens"},
		{"DK CPR seventh digit 9, 2000s", "DK", "010136-9000", "2036-01-01", ""},
		{"DK CPR seventh digit 9, 1900s", "DK", "010137-9000", "1937-01-01", ""},
		{"FI HETU", "FI", "131052-308T", "1952-10-13", ""},
		{"FI HETU new 1900s sign", "FI", "010594Y9032", "1994-05-01", ""},
		{"FI HETU 2000s", "FI", "010100A123D", "2000-01-01", ""},
		{"FI HETU wrong check char", "FI", "131052-308U", "1952-10-13", "check character is wrong: expected T"},
		{"FI HETU bad century sign", "FI", "131052Z308T", "1952-10-13", "century sign"},
		{"FI HETU bad date", "FI", "311152-308T", "1952-11-31", "valid date"},
		{"FI HETU century mismatch", "FI", "131052A308T", "1952-10-13", "does not match"},
		{"FI passport number", "FI", "XP1234567", "1952-10-13", ""},
		{"EE isikukood", "EE", "37605030299", "1976-05-03", ""},
		{"EE isikukood second pass", "EE", "48504120009", "1985-04-12", ""},
		{"EE wrong check digit", "EE", "37605030298", "1976-05-03", "isikukood check digit is wrong: expected 9, got 8"},
		{"EE bad century digit", "EE", "97605030299", "1976-05-03", "1–8"},
		{"EE bad date", "EE", "37613030299", "1976-13-03", "no valid date"},
		{"LT asmens kodas", "LT", "33309240064", "1933-09-24", ""},
		{"LT 2000s", "LT", "50101010009", "2001-01-01", ""},
		{"LT leap day", "LT", "61202291237", "2012-02-29", ""},
		{"LT 29 February of a common year", "LT", "61302291237", "2013-02-29", "valid date"},
		{"LT wrong check digit", "LT", "33309240065", "1933-09-24", "asmens kodas check digit is wrong: expected 4, got 5"},
		{"DE passport", "DE", "C01X00T47", "1985-04-12", ""},
		{"GB passport lower case", "GB", "a1234567b", "1985-04-12", ""},
		{"DE too short", "DE", "C01X", "1985-04-12", "5–20 letters and digits"},
		{"DE too long", "DE", "C01X00T47C01X00T47C01", "1985-04-12", "5–20"},
		{"DE with hyphen", "DE", "C01-X00T47", "1985-04-12", "leave out spaces, hyphens"},
		{"DE with Swedish samordningsnummer", "DE", "19701063-2391", "1970-10-03", ""},
		{"DE with bad Swedish number", "DE", "19701063-2392", "1970-10-03", "samordningsnummer check digit"},
		{"DE with a Swedish personnummer", "DE", "19850412-1230", "1985-04-12", "goes with nationality SE"},
		{"DK passport number (9 digits)", "DK", "206123456", "1985-04-12", ""},
		{"EE document number", "EE", "K0012345", "1985-04-12", ""},
		{"LT 11 digits checked as asmens kodas", "LT", "37605030298", "1976-05-03", "asmens kodas check digit"},
		{"empty ID", "DE", "", "1985-04-12", "ID number is required"},
		{"bad nationality", "XX", "C01X00T47", "1985-04-12", "without a valid nationality"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckIDNumber(tt.nat, tt.id, tt.birth), tt.wantErr, tt.id)
		})
	}
}

func TestCheckNationality(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"SE", ""}, {"PL", ""}, {"GB", ""}, {"AX", ""}, {"ZW", ""}, {"XK", ""},
		{"se", "upper case: SE (Sweden)"},
		{"SWE", "two-letter code SE (Sweden)"},
		{"pol", "two-letter code PL (Poland)"},
		{"UK", "use GB"},
		{"", "required"},
		{"XX", "not an ISO 3166-1"},
		{"S", "not an ISO 3166-1"},
		{"Sweden", "not an ISO 3166-1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkErr(t, CheckNationality(tt.in), tt.wantErr, "")
		})
	}
	if n := len(countries); n != 250 { // 249 officially assigned codes + XK
		t.Errorf("%d country codes embedded, want 250", n)
	}
}

func TestLuhnDigit(t *testing.T) {
	// Reference values from an independent implementation, and the classic
	// Luhn example 7992739871 -> 3.
	tests := map[string]int{"850412123": 0, "121212121": 2, "701063239": 1, "556677889": 9, "7992739871": 3, "0": 0, "": 0}
	for in, want := range tests {
		if got := luhnDigit(in); got != want {
			t.Errorf("luhnDigit(%q) = %d, want %d", in, got, want)
		}
	}
}

// checkErr compares err with a wanted message substring ("" = no error), and
// makes sure the message does not quote the number checked.
func checkErr(t *testing.T, err error, wantErr, secret string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case wantErr != "" && err == nil:
		t.Fatalf("no error, want one containing %q", wantErr)
	case err != nil && !strings.Contains(err.Error(), wantErr):
		t.Fatalf("error %q does not contain %q", err, wantErr)
	case err != nil && len(secret) >= 5 && strings.Contains(err.Error(), secret):
		t.Fatalf("error %q quotes the number", err)
	}
}
