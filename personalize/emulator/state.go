package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// state is everything a card keeps across power cycles: what its EEPROM holds.
type state struct {
	UID        []byte `json:"uid"`
	Salt       []byte `json:"salt"`
	PINHash    []byte `json:"pin_hash"`
	PUKHash    []byte `json:"puk_hash"`
	PINRetries int    `json:"pin_retries"`
	PUKRetries int    `json:"puk_retries"`
	PINMax     int    `json:"pin_max"`
	PUKMax     int    `json:"puk_max"`
	PINDefault bool   `json:"pin_default"`
	PUKDefault bool   `json:"puk_default"`
	MgmtAlg    byte   `json:"mgmt_alg"`
	MgmtKey    []byte `json:"mgmt_key"`
	MgmtDef    bool   `json:"mgmt_default"`
	Capacity   int    `json:"capacity"`
	MaxObject  int    `json:"max_object"`
	Yubico     bool   `json:"yubico,omitempty"`
	NoAES      bool   `json:"no_aes,omitempty"`
	// Objects maps a data object tag (hex) to its stored BER-TLV, as GET
	// DATA returns it (53 L value, or 7E/7F61 for those objects).
	Objects map[string][]byte `json:"objects"`
	Keys    map[string]*slot  `json:"keys"` // key reference (hex) → key
}

type slot struct {
	Alg    byte   `json:"alg"`
	PKCS8  []byte `json:"pkcs8"`
	Origin byte   `json:"origin"` // 1 generated on card, 2 imported
	priv   crypto.Signer
}

func blankState(s Stock, uid []byte) state {
	salt := make([]byte, 16)
	rand.Read(salt)
	pin, _ := padPIN(s.PIN)
	return state{
		UID:        uid,
		Salt:       salt,
		PINHash:    secretHash(salt, pin),
		PUKHash:    secretHash(salt, padRef(s.PUK)),
		PINRetries: maxPIN, PUKRetries: maxPUK, PINMax: maxPIN, PUKMax: maxPUK,
		PINDefault: true, PUKDefault: true,
		MgmtAlg:  s.MgmtAlg,
		MgmtKey:  append([]byte(nil), s.MgmtKey...),
		MgmtDef:  true,
		Capacity: s.Capacity, MaxObject: s.MaxObject,
		Yubico: s.Yubico, NoAES: s.NoAES,
		Objects: map[string][]byte{},
		Keys:    map[string]*slot{},
	}
}

func keyName(ref byte) string { return strconv.FormatUint(uint64(ref), 16) }

func (c *Card) key(ref byte) *slot { return c.st.Keys[keyName(ref)] }

func (s *slot) signer() (crypto.Signer, error) {
	if s.priv != nil {
		return s.priv, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(s.PKCS8)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		s.priv = k
	case *rsa.PrivateKey:
		s.priv = k
	default:
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s.priv, nil
}

func (c *Card) used() int {
	n := 0
	for _, v := range c.st.Objects {
		n += len(v)
	}
	return n
}

// serial is a stable 32-bit serial number derived from the UID.
func (c *Card) serial() []byte {
	out := make([]byte, 4)
	var v uint32
	for _, b := range c.st.UID {
		v = v*31 + uint32(b)
	}
	binary.BigEndian.PutUint32(out, v%100000000)
	return out
}

// MarshalBinary exports the card's persistent state (objects, keys, counters,
// hashed PIN/PUK) as JSON; volatile security status is not part of it.
func (c *Card) MarshalBinary() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marshalLocked()
}

func (c *Card) marshalLocked() ([]byte, error) {
	return json.MarshalIndent(&c.st, "", " ")
}

// UnmarshalBinary replaces the card's state with one MarshalBinary produced.
func (c *Card) UnmarshalBinary(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("emulator: card state: %w", err)
	}
	if len(st.UID) == 0 || len(st.Salt) == 0 || len(st.PINHash) == 0 || len(st.PUKHash) == 0 {
		return fmt.Errorf("emulator: card state lacks UID, PIN or PUK")
	}
	if n, err := mgmtKeyLen(st.MgmtAlg); err != nil || n != len(st.MgmtKey) {
		return fmt.Errorf("emulator: card state has an invalid management key")
	}
	if st.Objects == nil {
		st.Objects = map[string][]byte{}
	}
	if st.Keys == nil {
		st.Keys = map[string]*slot{}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Keys)) {
		if _, err := strconv.ParseUint(name, 16, 8); err != nil {
			return fmt.Errorf("emulator: card state key reference %q", name)
		}
		if _, err := st.Keys[name].signer(); err != nil {
			return fmt.Errorf("emulator: card state key %s: %w", name, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = st
	c.resetVolatile()
	return nil
}

// Load makes a card from a MarshalBinary export.
func Load(b []byte) (*Card, error) {
	c := &Card{failAfter: -1}
	if err := c.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return c, nil
}

// Inspect reports what the card holds, for tests and QA tooling that must
// not go through the card's own access rules: the data object tags and the
// key references that hold a key.
func (c *Card) Inspect() (objects []uint, keys []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.st.Objects {
		if t, err := strconv.ParseUint(name, 16, 32); err == nil {
			objects = append(objects, uint(t))
		}
	}
	for name := range c.st.Keys {
		if r, err := strconv.ParseUint(name, 16, 8); err == nil {
			keys = append(keys, byte(r))
		}
	}
	slices.Sort(objects)
	slices.Sort(keys)
	return objects, keys
}
