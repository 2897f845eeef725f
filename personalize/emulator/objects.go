package emulator

import (
	"id06/personalize/apdu"
)

// Data object tags with access rules (SP 800-73-4 part 1 table 3).
const (
	tagDiscovery  = 0x7E
	tagBITGroup   = 0x7F61
	tagFingerprnt = 0x5FC103
	tagFacial     = 0x5FC108
	tagPrinted    = 0x5FC109
	tagIris       = 0x5FC121
)

// discovery is the built-in Discovery Object: the PIV AID and a PIN usage
// policy of "PIV Card Application PIN only" (part 1 §3.3.2).
var discovery = apdu.TLV(tagDiscovery, append(apdu.TLV(0x4F, pivAID), apdu.TLV(0x5F2F, []byte{0x40, 0x00})...))

// objectTag validates a data object tag: PIV objects 5FC101–5FC123, the
// vendor range 5FFFxx YubiKey tools use, discovery 7E and BIT group 7F61.
func objectTag(b []byte) (uint, bool) {
	switch len(b) {
	case 1:
		return uint(b[0]), b[0] == tagDiscovery
	case 2:
		t := uint(b[0])<<8 | uint(b[1])
		return t, t == tagBITGroup
	case 3:
		t := uint(b[0])<<16 | uint(b[1])<<8 | uint(b[2])
		return t, (t >= 0x5FC101 && t <= 0x5FC123) || t>>8 == 0x5FFF
	}
	return 0, false
}

func pinProtected(tag uint) bool {
	switch tag {
	case tagFingerprnt, tagFacial, tagPrinted, tagIris:
		return true
	}
	return false
}

// getData: 00 CB 3F FF with data 5C L tag (part 2 §3.1.2).
func (c *Card) getData(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x3F || cmd.P2 != 0xFF {
		return nil, swIncorrectP1P2
	}
	tagBytes, err := apdu.Unwrap(cmd.Data, 0x5C)
	if err != nil {
		return nil, swWrongData
	}
	tag, ok := objectTag(tagBytes)
	if !ok {
		return nil, swNotFound
	}
	if tag == tagDiscovery {
		return discovery, swOK
	}
	if pinProtected(tag) && !c.pinVerified {
		return nil, swSecurity
	}
	obj, ok := c.st.Objects[fmtTag(tag)]
	if !ok {
		return nil, swNotFound
	}
	return obj, swOK
}

// putData: 00 DB 3F FF with data 5C L tag 53 L value, or a 7F61 template
// (part 2 §3.3.2). An empty 53 deletes the object. Needs management key
// authentication.
func (c *Card) putData(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x3F || cmd.P2 != 0xFF {
		return nil, swIncorrectP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurity
	}
	items, err := apdu.ParseTLV(cmd.Data)
	if err != nil || len(items) == 0 {
		return nil, swWrongData
	}
	var tag uint
	var stored []byte
	switch {
	case items[0].Tag == tagDiscovery:
		return nil, swConditions // the discovery object is fixed at issuance of the stock
	case items[0].Tag == tagBITGroup && len(items) == 1:
		tag, stored = tagBITGroup, cmd.Data
	case items[0].Tag == 0x5C && len(items) == 2 && items[1].Tag == 0x53:
		var ok bool
		if tag, ok = objectTag(items[0].Value); !ok || tag == tagBITGroup || tag == tagDiscovery {
			return nil, swWrongData
		}
		stored = apdu.TLV(0x53, items[1].Value)
		if len(items[1].Value) == 0 {
			stored = nil
		}
	default:
		return nil, swWrongData
	}
	name := fmtTag(tag)
	if stored == nil {
		if _, ok := c.st.Objects[name]; ok {
			delete(c.st.Objects, name)
			c.markDirty()
		}
		return nil, swOK
	}
	if c.st.MaxObject > 0 && len(stored) > c.st.MaxObject {
		return nil, swMemoryFull
	}
	if c.used()-len(c.st.Objects[name])+len(stored) > c.st.Capacity {
		return nil, swMemoryFull
	}
	c.st.Objects[name] = stored
	c.markDirty()
	return nil, swOK
}
