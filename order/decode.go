package order

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	// The JSON v2 design (encoding/json/v2 behind GOEXPERIMENT=jsonv2 in Go
	// 1.26) reports every error with a JSON pointer, refuses duplicate names
	// and trailing data and matches names case-sensitively: exactly the strict
	// decoding docs/design.md §7 asks for, without a hand-written tokenizer.
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Decode parses an order body strictly: unknown fields, duplicate fields,
// wrong types, bad base64, bad times and trailing data are refused with the
// path of the field. Every error it returns is a *ValidationError. Decode does
// not apply the rules of docs/design.md §8: call Validate.
func Decode(body []byte) (*Order, error) {
	var o Order
	if err := decodeStrict(body, &o, "order"); err != nil {
		return nil, err
	}
	return &o, nil
}

// DecodeApproval parses the body of POST /v1/orders/{id}/approvals,
// {"kind","method","at"}, as strictly as Decode.
func DecodeApproval(body []byte) (*Approval, error) {
	var a Approval
	if err := decodeStrict(body, &a, "approval"); err != nil {
		return nil, err
	}
	return &a, nil
}

// DecodeStrict decodes any other JSON body of the API (a photo upload, say)
// as strictly as Decode: every error is a *ValidationError naming the field
// at fault, the unknown field itself when there is one. subject names the
// body in messages.
func DecodeStrict(body []byte, v any, subject string) error { return decodeStrict(body, v, subject) }

func decodeStrict(body []byte, v any, subject string) error {
	switch trimmed := bytes.TrimSpace(body); {
	case len(trimmed) == 0:
		return &ValidationError{Subject: subject, Fields: []FieldError{{
			Message: fmt.Sprintf("the body is empty: send the %s as a JSON object", subject)}}}
	case string(trimmed) == "null":
		// JSON v2 would decode null into an empty struct without complaint.
		return &ValidationError{Subject: subject, Fields: []FieldError{{
			Message: fmt.Sprintf("the body must be a JSON object (the %s), not null", subject)}}}
	}
	err := json.Unmarshal(body, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	return &ValidationError{Subject: subject, Fields: []FieldError{describe(err, body, reflect.TypeOf(v).Elem(), subject)}}
}

// describe turns a decoding error into a message a person can act on. It
// writes its own text rather than the library's, whose messages may quote the
// value (a personnummer in a time field, say).
func describe(err error, body []byte, root reflect.Type, subject string) FieldError {
	var se *json.SemanticError
	if errors.As(err, &se) {
		path, parent, hidden := fieldPath(root, se.JSONPointer)
		switch {
		case se.Err == json.ErrUnknownName:
			msg := fmt.Sprintf("unknown field %q", se.JSONPointer.LastToken())
			where := pathOf(path)
			if hidden {
				msg = "a member whose name is not a field name (not repeated here) is not part of the " + subject
				where = "at the top level"
				if path != "" {
					where = "in " + path
				}
			}
			if allowed := fieldNames(parent); allowed != "" {
				msg += fmt.Sprintf("; the fields allowed %s are: %s", where, allowed)
			}
			return FieldError{Path: path, Message: msg}
		case path == "" && !hidden:
			return FieldError{Message: fmt.Sprintf("the body must be a JSON object (the %s), not %s", subject, kindName(se.JSONKind))}
		}
		msg := typeMessage(se)
		if se.GoType == bytesType && bytes.HasPrefix(body[min(max(se.ByteOffset, 0), int64(len(body))):], []byte(`"data:`)) {
			msg = "send only the base64 data, without the \"data:…;base64,\" prefix of a data URL"
		}
		return FieldError{Path: path, Message: msg}
	}
	var sy *jsontext.SyntacticError
	if errors.As(err, &sy) {
		path, _, _ := fieldPath(root, sy.JSONPointer)
		line, col := position(body, sy.ByteOffset)
		switch {
		case sy.Err == jsontext.ErrDuplicateName:
			return FieldError{Path: path, Message: "the field appears more than once: send it once"}
		case errors.Is(sy.Err, io.ErrUnexpectedEOF):
			return FieldError{Message: "the body ends in the middle of the JSON: check that it was sent completely and that every { [ and \" is closed"}
		}
		msg := fmt.Sprintf("the body is not valid JSON at line %d, column %d", line, col)
		// The library's text can quote a few bytes of a string; holder fields
		// are personal data, so their text is left out.
		if !strings.HasPrefix(path, "holder") {
			msg += ": " + sy.Err.Error()
		}
		return FieldError{Path: path, Message: msg}
	}
	return FieldError{Message: "the body could not be read as JSON: " + err.Error()}
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

func typeMessage(se *json.SemanticError) string {
	var ce base64.CorruptInputError
	switch {
	case se.GoType == bytesType && errors.As(se.Err, &ce):
		return fmt.Sprintf("is not valid base64 (bad character at position %d): send the file as standard base64 (RFC 4648, with = padding, no line breaks)", int64(ce))
	case se.GoType == timeType && se.JSONKind == '"':
		return "is not a valid time: use RFC 3339 with a time zone, e.g. 2026-11-22T10:00:00Z"
	}
	return fmt.Sprintf("must be %s, not %s", expected(se.GoType), kindName(se.JSONKind))
}

func expected(t reflect.Type) string {
	switch {
	case t == nil:
		return "a different type"
	case t == bytesType:
		return "a base64 string"
	case t == timeType:
		return "an RFC 3339 time string such as 2026-11-22T10:00:00Z"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return t.String()
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "this value"
}

// fieldPath renders a JSON pointer as "holder.id_number" or
// "approvals[0].method", following the Go type so that array indexes and
// object names are told apart. It also returns the type of the innermost
// container, to list the fields allowed there. A name that does not look like
// a field name (it could be anything, a personnummer say) ends the path and
// sets hidden, so that it is never repeated in a message. The path ends, too,
// one name past the order's own types: what lies below an unknown or
// mistyped member is the sender's, and may be nested thousands deep.
func fieldPath(root reflect.Type, ptr jsontext.Pointer) (path string, parent reflect.Type, hidden bool) {
	var b strings.Builder
	t := root
	parent = root
	for tok := range ptr.Tokens() {
		if t == nil {
			break
		}
		parent = t
		if t != nil && t.Kind() == reflect.Slice && t != bytesType {
			if _, err := strconv.Atoi(tok); err == nil {
				b.WriteString("[" + tok + "]")
				t = t.Elem()
				continue
			}
		}
		if !looksLikeFieldName(tok) {
			return b.String(), parent, true
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
		t = fieldType(t, tok)
	}
	return b.String(), parent, false
}

// looksLikeFieldName accepts names such as card_type or firstName.
func looksLikeFieldName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func fieldType(t reflect.Type, name string) reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	for f := range t.Fields() {
		if jsonName(f) == name {
			return f.Type
		}
	}
	return nil
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func fieldNames(t reflect.Type) string {
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	var names []string
	for f := range t.Fields() {
		if n := jsonName(f); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// pathOf says where an unknown field sat, for its message.
func pathOf(path string) string {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "at the top level"
	}
	return "in " + path[:i]
}

// position converts a byte offset into a 1-based line and column.
func position(body []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(body)))
	before := body[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
