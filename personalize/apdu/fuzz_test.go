package apdu

import (
	"bytes"
	"testing"
)

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte{0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8, 0})
	f.Add([]byte{0, 0xDB, 0x3F, 0xFF, 0, 1, 0, 0x5C})
	f.Add([]byte{0, 0xCB, 0x3F, 0xFF, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes.
		out, err := c.Bytes()
		if err != nil {
			t.Fatalf("parsed % X but cannot encode: %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip % X -> % X", b, out)
		}
	})
}

func FuzzParseTLV(f *testing.F) {
	f.Add([]byte{0x5C, 3, 0x5F, 0xC1, 2, 0x53, 0x82, 0, 1, 0})
	f.Add([]byte{0x7F, 0x49, 0x81, 1, 0x86})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := ParseTLV(b)
		if err != nil {
			return
		}
		var back []byte
		for _, it := range items {
			back = append(back, TLV(it.Tag, it.Value)...)
		}
		// Re-encoding uses the shortest lengths, so it can only shrink.
		if len(back) > len(b) {
			t.Fatalf("re-encoded % X longer than input % X", back, b)
		}
		if again, err := ParseTLV(back); err != nil || len(again) != len(items) {
			t.Fatalf("re-encoded TLVs do not parse: %v", err)
		}
	})
}
