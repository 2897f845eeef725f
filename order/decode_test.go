package order

import (
	stdjson "encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body, path, msg string
		mustNotContain        string // a value that must not be echoed
	}{
		{name: "empty", body: "", msg: "the body is empty"},
		{name: "only spaces", body: " \n\t", msg: "the body is empty"},
		{name: "null", body: "null", msg: "must be a JSON object (the order), not null"},
		{name: "array", body: `[{"id":"a"}]`, msg: "must be a JSON object (the order), not an array"},
		{name: "string", body: `"order"`, msg: "not a string"},
		{name: "unknown top-level field", body: `{"id":"a","zz":1}`, path: "zz",
			msg: `unknown field "zz"; the fields allowed at the top level are: id, card_type, express, holder, company, valid_until, photo, delivery, approvals`},
		{name: "unknown field named like a personnummer", body: `{"holder":{"19850412-1230":"x"}}`, path: "holder",
			msg: "not repeated here) is not part of the order; the fields allowed in holder are: first_name", mustNotContain: "19850412"},
		{name: "top-level field named like a personnummer", body: `{"19850412-1230":1}`,
			msg: "not repeated here) is not part of the order; the fields allowed at the top level", mustNotContain: "19850412"},
		{name: "field names are case-sensitive", body: `{"ID":"a"}`, path: "ID", msg: `unknown field "ID"`},
		{name: "unknown holder field", body: `{"holder":{"first_nam":"A"}}`, path: "holder.first_nam",
			msg: "the fields allowed in holder are: first_name, last_name, print_name, nationality, birth_date, id_number, email, phone"},
		{name: "unknown approval field", body: `{"approvals":[{"kind":"holder"},{"by":"x"}]}`, path: "approvals[1].by",
			msg: "allowed in approvals[1] are: kind, method, at"},
		{name: "string as bool", body: `{"id":true}`, path: "id", msg: "must be a string, not a boolean"},
		{name: "string as array", body: `{"card_type":["id06"]}`, path: "card_type", msg: "must be a string, not an array"},
		{name: "very long unknown name", body: `{"` + strings.Repeat("x", 41) + `":1}`, msg: "not repeated here"},
		{name: "bool as string", body: `{"express":"yes"}`, path: "express", msg: "must be true or false, not a string"},
		{name: "id number as number", body: `{"holder":{"id_number":198504121230}}`, path: "holder.id_number",
			msg: "must be a string, not a number", mustNotContain: "198504121230"},
		{name: "holder as string", body: `{"holder":"Anna"}`, path: "holder", msg: "must be an object, not a string"},
		{name: "approvals as object", body: `{"approvals":{}}`, path: "approvals", msg: "must be an array, not an object"},
		{name: "approval as number", body: `{"approvals":[1]}`, path: "approvals[0]", msg: "must be an object, not a number"},
		{name: "bad base64", body: `{"photo":"@@@"}`, path: "photo", msg: "not valid base64 (bad character at position 0)"},
		{name: "base64 with line breaks", body: `{"photo":"aGVsbG8=\naGVsbG8="}`, path: "photo", msg: "no line breaks"},
		{name: "base64 without padding", body: `{"photo":"aGVsbG8"}`, path: "photo", msg: "with = padding"},
		{name: "data URL", body: `{"company":{"logo":"data:image/png;base64,iVBORw0KGgo="}}`, path: "company.logo", msg: "without the \"data:…;base64,\" prefix"},
		{name: "logo as number", body: `{"company":{"logo":123}}`, path: "company.logo", msg: "must be a base64 string, not a number"},
		{name: "time in words", body: `{"approvals":[{"at":"yesterday"}]}`, path: "approvals[0].at",
			msg: "not a valid time: use RFC 3339", mustNotContain: "yesterday"},
		{name: "time without zone", body: `{"approvals":[{"at":"2026-11-22T10:00:00"}]}`, path: "approvals[0].at", msg: "RFC 3339 with a time zone"},
		{name: "time as number", body: `{"approvals":[{"at":1763805600}]}`, path: "approvals[0].at", msg: "must be an RFC 3339 time string"},
		{name: "trailing garbage", body: `{"id":"a"} x`, msg: "not valid JSON at line 1, column 12"},
		{name: "two objects", body: "{\"id\":\"a\"}\n{\"id\":\"b\"}", msg: "not valid JSON at line 2, column 1"},
		{name: "duplicate field", body: `{"id":"a","id":"b"}`, path: "id", msg: "appears more than once"},
		{name: "truncated", body: `{"id":"a"`, msg: "ends in the middle of the JSON"},
		{name: "trailing comma", body: `{"id":"a",}`, msg: "not valid JSON at line 1, column 10"},
		{name: "bad escape in holder field stays private", body: `{"holder":{"id_number":"850412\x1230"}}`,
			path: "holder.id_number", msg: "not valid JSON at line 1, column 31", mustNotContain: `\x`},
		{name: "invalid UTF-8", body: "{\"delivery\":{\"city\":\"G\xf6teborg\"}}", path: "delivery.city", msg: "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Decode([]byte(tt.body))
			if o != nil {
				t.Errorf("Decode returned an order with an error")
			}
			f := onlyField(t, err)
			if f.Path != tt.path {
				t.Errorf("path %q, want %q (message %q)", f.Path, tt.path, f.Message)
			}
			if !strings.Contains(f.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", f.Message, tt.msg)
			}
			if tt.mustNotContain != "" && strings.Contains(err.Error(), tt.mustNotContain) {
				t.Errorf("message %q echoes the value", err)
			}
		})
	}
}

// A null member is the same as a missing one: Validate reports it.
func TestDecodeNullMembers(t *testing.T) {
	o, err := Decode([]byte(`{"holder":null,"photo":null,"approvals":null,"express":null}`))
	if err != nil {
		t.Fatal(err)
	}
	verr := asValidation(t, o.Validate(Checks{Now: fixtureNow}))
	for _, p := range []string{"id", "holder.first_name", "photo", "delivery.country"} {
		if !hasPath(verr, p) {
			t.Errorf("no problem reported at %s: %v", p, verr)
		}
	}
}

func TestDecodeApproval(t *testing.T) {
	a, err := DecodeApproval([]byte(`{"kind":"trade_org","method":"eid","at":"2026-11-23T09:00:00+01:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Approval{Kind: KindTradeOrg, Method: MethodEID, At: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	if a.Kind != want.Kind || a.Method != want.Method || !a.At.Equal(want.At) {
		t.Fatalf("got %+v, want %+v", a, want)
	}
	if err := a.Validate(fixtureNow); err != nil {
		t.Fatal(err)
	}

	_, err = DecodeApproval([]byte(`{"kind":"holder","signature":"x"}`))
	f := onlyField(t, err)
	if f.Path != "signature" || !strings.Contains(f.Message, "allowed at the top level are: kind, method, at") {
		t.Errorf("got %+v", f)
	}
	if !strings.HasPrefix(err.Error(), "the approval has 1 problem: signature: unknown field") {
		t.Errorf("Error() = %q", err)
	}
}

func TestApprovalValidate(t *testing.T) {
	now := fixtureNow
	tests := []struct {
		name      string
		a         Approval
		wantPaths []string
	}{
		{"bankid now", Approval{KindHolder, MethodBankID, now}, nil},
		{"passport scan a month ago", Approval{KindHolder, MethodPassportScan, now.AddDate(0, -1, 0)}, nil},
		{"clock skew tolerated", Approval{KindTradeOrg, MethodEID, now.Add(4 * time.Minute)}, nil},
		{"future", Approval{KindHolder, MethodBankID, now.Add(6 * time.Minute)}, []string{"at"}},
		{"too old", Approval{KindHolder, MethodBankID, now.AddDate(-1, 0, -1)}, []string{"at"}},
		{"missing time", Approval{Kind: KindHolder, Method: MethodBankID}, []string{"at"}},
		{"unknown kind and method", Approval{"employer", "sms", now}, []string{"kind", "method"}},
		{"empty", Approval{}, []string{"kind", "method", "at"}},
		{"upper case", Approval{"Holder", "BankID", now}, []string{"kind", "method"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate(now)
			if tt.wantPaths == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := paths(asValidation(t, err)); strings.Join(got, " ") != strings.Join(tt.wantPaths, " ") {
				t.Errorf("paths %v, want %v (%v)", got, tt.wantPaths, err)
			}
		})
	}
}

func onlyField(t *testing.T, err error) FieldError {
	t.Helper()
	verr := asValidation(t, err)
	if len(verr.Fields) != 1 {
		t.Fatalf("%d fields, want 1: %v", len(verr.Fields), verr)
	}
	return verr.Fields[0]
}

func asValidation(t *testing.T, err error) *ValidationError {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return verr
}

func hasPath(verr *ValidationError, path string) bool {
	for _, f := range verr.Fields {
		if f.Path == path {
			return true
		}
	}
	return false
}

func paths(verr *ValidationError) []string {
	var out []string
	for _, f := range verr.Fields {
		out = append(out, f.Path)
	}
	return out
}

// The station stores orders with encoding/json and decodes them again with
// Decode in the pipeline: that must keep working, photo left out included.
func TestDecodeReadsEncodingJSON(t *testing.T) {
	o := loadFixture(t)
	o.Holder.LastName = "Svensson & <Söner>" // escaped by encoding/json as \u0026 \u003c
	o.Approvals[0].At = time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("", 3600))
	o.Photo, o.Company.Logo = nil, nil
	b, err := stdjson.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Holder != o.Holder || !back.Approvals[0].At.Equal(o.Approvals[0].At) || back.ValidUntil != o.ValidUntil || back.Photo != nil {
		t.Errorf("round trip through encoding/json changed the order:\n%+v\n%+v", back, o)
	}
}

// A body nested thousands deep (cut off, or past the depth limit) gets a
// short answer: the path names fields of the order only, never the whole
// nesting it was sent.
func TestDecodeDeepNestingKeepsTheAnswerShort(t *testing.T) {
	for _, field := range []string{"id", "holder", "photo", "approvals", "zz"} {
		for _, open := range []string{"[", `{"a":`, `{"kind":`, `{"first_name":`, `[{"holder":`} {
			for _, end := range []string{"", "1"} { // cut off, or just too deep
				body := `{"` + field + `":` + strings.Repeat(open, 10001) + end
				_, err := Decode([]byte(body))
				f := onlyField(t, err)
				if len(f.Path) > 64 || len(err.Error()) > 500 {
					t.Errorf("%s %s%s: path of %d bytes, message of %d: %.120s…", field, open, end, len(f.Path), len(err.Error()), err)
				}
			}
			_, err := DecodeApproval([]byte(strings.Repeat(open, 10001)))
			if len(err.Error()) > 500 {
				t.Errorf("approval %s: message of %d bytes", open, len(err.Error()))
			}
		}
	}
}
