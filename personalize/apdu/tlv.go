package apdu

import "fmt"

// TLV encodes one BER-TLV: tag as its big-endian bytes (1 to 3 bytes, e.g.
// 0x5FC102), definite length in the shortest form.
func TLV(tag uint, value []byte) []byte {
	out := make([]byte, 0, len(value)+8)
	out = appendTag(out, tag)
	out = AppendLength(out, len(value))
	return append(out, value...)
}

func appendTag(b []byte, tag uint) []byte {
	switch {
	case tag > 0xFFFF:
		return append(b, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		return append(b, byte(tag>>8), byte(tag))
	default:
		return append(b, byte(tag))
	}
}

// AppendLength appends a BER definite length (up to 3 length bytes after 8x).
func AppendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xFF:
		return append(b, 0x81, byte(n))
	case n <= 0xFFFF:
		return append(b, 0x82, byte(n>>8), byte(n))
	default:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
}

// TLVItem is one parsed BER-TLV.
type TLVItem struct {
	Tag   uint
	Value []byte
}

// ParseTLV parses a sequence of BER-TLVs at one nesting level. Padding bytes
// 00 and FF between objects are not accepted: PIV objects carry none.
func ParseTLV(b []byte) ([]TLVItem, error) {
	var items []TLVItem
	for len(b) > 0 {
		it, rest, err := parseOne(b)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		b = rest
	}
	return items, nil
}

func parseOne(b []byte) (TLVItem, []byte, error) {
	if len(b) == 0 {
		return TLVItem{}, nil, fmt.Errorf("tlv: no data")
	}
	tag := uint(b[0])
	i := 1
	if b[0]&0x1F == 0x1F {
		for {
			if i >= len(b) {
				return TLVItem{}, nil, fmt.Errorf("tlv: truncated tag %X", tag)
			}
			if i >= 3 {
				return TLVItem{}, nil, fmt.Errorf("tlv: tag %X… is longer than 3 bytes", tag)
			}
			tag = tag<<8 | uint(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return TLVItem{}, nil, fmt.Errorf("tlv: tag %X has no length", tag)
	}
	n := int(b[i])
	i++
	if n > 0x80 {
		k := n - 0x80
		if k > 3 {
			return TLVItem{}, nil, fmt.Errorf("tlv: tag %X length of %d bytes is not supported", tag, k)
		}
		if i+k > len(b) {
			return TLVItem{}, nil, fmt.Errorf("tlv: tag %X truncated length", tag)
		}
		n = 0
		for _, c := range b[i : i+k] {
			n = n<<8 | int(c)
		}
		i += k
	} else if n == 0x80 {
		return TLVItem{}, nil, fmt.Errorf("tlv: tag %X has indefinite length", tag)
	}
	if n > len(b)-i {
		return TLVItem{}, nil, fmt.Errorf("tlv: tag %X declares %d bytes, %d present", tag, n, len(b)-i)
	}
	return TLVItem{Tag: tag, Value: b[i : i+n : i+n]}, b[i+n:], nil
}

// Find returns the value of the first item with tag, and whether it exists.
func Find(items []TLVItem, tag uint) ([]byte, bool) {
	for _, it := range items {
		if it.Tag == tag {
			return it.Value, true
		}
	}
	return nil, false
}

// UnwrapItems is Unwrap followed by ParseTLV of the value: the data
// objects inside a template such as 7C or AC.
func UnwrapItems(b []byte, tag uint) ([]TLVItem, error) {
	v, err := Unwrap(b, tag)
	if err != nil {
		return nil, err
	}
	return ParseTLV(v)
}

// Unwrap parses b as exactly one TLV with the given tag and returns its value.
func Unwrap(b []byte, tag uint) ([]byte, error) {
	it, rest, err := parseOne(b)
	if err != nil {
		return nil, err
	}
	if it.Tag != tag {
		return nil, fmt.Errorf("tlv: expected tag %X, found %X", tag, it.Tag)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("tlv: %d bytes after tag %X", len(rest), tag)
	}
	return it.Value, nil
}
