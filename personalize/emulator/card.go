package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"sync"

	"id06/personalize/apdu"
)

// pivAID is the full PIV application identifier (SP 800-73-4 part 1 §2.2).
var pivAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}

const (
	swOK             = 0x9000
	swWrongLength    = 0x6700
	swSecurity       = 0x6982
	swBlocked        = 0x6983
	swConditions     = 0x6985
	swWrongData      = 0x6A80
	swFuncNotSupp    = 0x6A81
	swNotFound       = 0x6A82
	swMemoryFull     = 0x6A84
	swIncorrectP1P2  = 0x6A86
	swRefNotFound    = 0x6A88
	swInsNotSupp     = 0x6D00
	swClaNotSupp     = 0x6E00
	swMemoryFailure  = 0x6581
	swLastCmdInChain = 0x6883
)

const (
	keyPIN  = 0x80
	keyPUK  = 0x81
	keyMgmt = 0x9B
	maxPIN  = 3
	maxPUK  = 3
	// maxChain bounds the data a chained command may accumulate.
	maxChain = 64 * 1024
)

// Card is one emulated PIV card. It implements apdu.Card; all methods are
// safe for concurrent use.
type Card struct {
	mu sync.Mutex
	st state
	// onChange persists the card after a state-changing command; a failure
	// answers the command with 6581 (memory failure), as a card whose
	// EEPROM write failed would.
	onChange func(state []byte) error

	// Volatile state, lost at power off or reset.
	pinVerified bool
	mgmtAuthed  bool
	witness     []byte // pending mutual-auth witness (plain)
	challenge   []byte // pending external-auth challenge (plain)
	chain       *apdu.Command
	pending     []byte // response data awaiting GET RESPONSE
	dirty       bool   // persistent state changed by the current command

	// Fault injection.
	failAfter  int // write APDUs allowed before removal; <0 = never
	writeAPDUs int
	removed    bool
}

// New makes a blank card from stock. It panics only on an invalid stock,
// which is a programming error; call stock.Validate first for user input.
func New(stock Stock) *Card {
	if err := stock.Validate(); err != nil {
		panic(err)
	}
	uid := stock.UID
	if uid == nil {
		uid = make([]byte, 7)
		rand.Read(uid)
		uid[0] = 0x04 // NXP manufacturer byte, as most 7-byte UIDs carry
	}
	c := &Card{failAfter: -1}
	c.st = blankState(stock, append([]byte(nil), uid...))
	return c
}

// UID is the chip UID answered to FF CA 00 00 00.
func (c *Card) UID() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.st.UID...)
}

// ATR is a contactless-style ATR (PC/SC part 3 §3.1.3.2.3) whose historical
// bytes name the emulator.
func (c *Card) ATR() []byte {
	hist := []byte("ID06-PIV-EMU")
	atr := []byte{0x3B, 0x80 | byte(len(hist)), 0x80, 0x01}
	atr = append(atr, hist...)
	var tck byte
	for _, b := range atr[1:] {
		tck ^= b
	}
	return append(atr, tck)
}

// Close ends a session like SCardDisconnect with SCARD_RESET_CARD: security
// status is lost, stored data stays.
func (c *Card) Close() error {
	c.PowerOn()
	return nil
}

// PowerOn is a cold or warm reset: it clears the security status and any
// pending chain, and puts a removed card back into the reader. A pending
// FailAfterWrites survives it.
func (c *Card) PowerOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetVolatile()
	c.removed = false
}

func (c *Card) resetVolatile() {
	c.pinVerified = false
	c.mgmtAuthed = false
	c.witness, c.challenge, c.chain, c.pending = nil, nil, nil, nil
}

// FailAfterWrites simulates pulling the card out mid-personalization: after
// n more write APDUs (PUT DATA, GENERATE, CHANGE REFERENCE DATA, RESET RETRY
// COUNTER and the YubiKey writes, counting each chained part), the
// next one is not applied and Transmit returns apdu.ErrCardRemoved until
// PowerOn. It fires once. n < 0 cancels.
func (c *Card) FailAfterWrites(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failAfter = n
	c.writeAPDUs = 0
}

// SetOnChange installs a hook that receives the card's MarshalBinary state
// after every command that changed it, to persist the card.
func (c *Card) SetOnChange(f func(state []byte) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onChange = f
}

func isWrite(ins byte) bool {
	switch ins {
	case 0xDB, 0x47, 0x24, 0x2C, 0xFF, 0xFA, 0xFB, 0xFE:
		return true
	}
	return false
}

// Transmit executes one command APDU.
func (c *Card) Transmit(ctx context.Context, raw []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil, apdu.ErrCardRemoved
	}
	cmd, err := apdu.ParseCommand(raw)
	if err != nil {
		return sw(swWrongLength), nil
	}
	if isWrite(cmd.INS) && cmd.CLA&^0x10 == 0 {
		if c.failAfter >= 0 && c.writeAPDUs >= c.failAfter {
			c.failAfter = -1
			c.removed = true
			c.resetVolatile()
			return nil, apdu.ErrCardRemoved
		}
		c.writeAPDUs++
	}
	data, status := c.exec(cmd)
	if c.dirty {
		c.dirty = false
		if c.onChange != nil {
			b, err := c.marshalLocked()
			if err == nil {
				err = c.onChange(b)
			}
			if err != nil {
				slog.Error("emulator: persisting card state failed", "err", err)
				return sw(swMemoryFailure), nil
			}
		}
	}
	c.dirty = false
	return c.respond(cmd, data, status), nil
}

func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

// respond sends at most Ne bytes and keeps the rest for GET RESPONSE (61xx).
func (c *Card) respond(cmd apdu.Command, data []byte, status uint16) []byte {
	if status != swOK || len(data) == 0 {
		c.pending = nil
		return append(data, sw(status)...)
	}
	ne := cmd.Le
	if ne == 0 || (!cmd.Extended && ne > 256) {
		// Le absent: be lenient like real PIV cards and answer up to 256.
		ne = 256
	}
	if len(data) <= ne {
		c.pending = nil
		return append(append([]byte(nil), data...), sw(swOK)...)
	}
	c.pending = data[ne:]
	out := append([]byte(nil), data[:ne]...)
	rest := min(len(c.pending), 256)
	return append(out, 0x61, byte(rest))
}

func (c *Card) exec(cmd apdu.Command) ([]byte, uint16) {
	if cmd.INS == 0xC0 && cmd.CLA&^0x10 == 0 {
		return c.getResponse()
	}
	c.pending = nil
	if cmd.CLA == 0xFF {
		return c.pcscPseudo(cmd)
	}
	if cmd.CLA&^0x10 != 0 {
		c.chain = nil
		return nil, swClaNotSupp
	}
	// Command chaining (ISO 7816-4 §5.1.1.1): collect, answer 9000.
	if c.chain != nil {
		if c.chain.INS != cmd.INS || c.chain.P1 != cmd.P1 || c.chain.P2 != cmd.P2 {
			c.chain = nil
			return nil, swLastCmdInChain
		}
		if len(c.chain.Data)+len(cmd.Data) > maxChain {
			c.chain = nil
			return nil, swWrongLength
		}
		c.chain.Data = append(c.chain.Data, cmd.Data...)
		if cmd.CLA&0x10 != 0 {
			return nil, swOK
		}
		cmd.Data, c.chain = c.chain.Data, nil
	} else if cmd.CLA&0x10 != 0 {
		first := cmd
		first.Data = append([]byte(nil), cmd.Data...)
		c.chain = &first
		return nil, swOK
	}
	switch cmd.INS {
	case 0xA4:
		return c.selectApp(cmd)
	case 0xCB:
		return c.getData(cmd)
	case 0xDB:
		return c.putData(cmd)
	case 0x20:
		return c.verify(cmd)
	case 0x24:
		return c.changeReference(cmd)
	case 0x2C:
		return c.resetRetryCounter(cmd)
	case 0x87:
		return c.generalAuthenticate(cmd)
	case 0x47:
		return c.generateKey(cmd)
	case 0xFF:
		return c.setManagementKey(cmd)
	}
	if c.st.Yubico {
		return c.yubico(cmd)
	}
	return nil, swInsNotSupp
}

func (c *Card) getResponse() ([]byte, uint16) {
	if c.pending == nil {
		return nil, swConditions
	}
	data := c.pending
	c.pending = nil
	return data, swOK
}

// pcscPseudo answers the PC/SC part 3 GET DATA pseudo-APDU for the UID.
func (c *Card) pcscPseudo(cmd apdu.Command) ([]byte, uint16) {
	if cmd.INS != 0xCA {
		return nil, swInsNotSupp
	}
	if cmd.P1 != 0x00 || cmd.P2 != 0x00 {
		return nil, swFuncNotSupp
	}
	return append([]byte(nil), c.st.UID...), swOK
}

// selectApp answers SELECT of the PIV AID (or a right-truncated prefix of at
// least the 5-byte RID plus PIX start) with the application property
// template (SP 800-73-4 part 2 §3.1.1).
func (c *Card) selectApp(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x04 {
		return nil, swNotFound
	}
	if len(cmd.Data) < 5 || len(cmd.Data) > len(pivAID) || !bytes.Equal(cmd.Data, pivAID[:len(cmd.Data)]) {
		return nil, swNotFound
	}
	c.resetVolatile()
	apt := apdu.TLV(0x4F, pivAID[5:]) // PIX of the PIV application
	apt = append(apt, apdu.TLV(0x79, apdu.TLV(0x4F, pivAID[:5]))...)
	apt = append(apt, apdu.TLV(0x50, []byte("ID06 PIV emulator"))...)
	algs := []byte{}
	supported := []byte{Alg3DES, AlgAES128, AlgAES192, AlgAES256, AlgRSA2048, AlgECCP256, AlgECCP384}
	if c.st.NoAES {
		supported = []byte{Alg3DES, AlgRSA2048, AlgECCP256, AlgECCP384}
	}
	for _, a := range supported {
		algs = append(algs, apdu.TLV(0x80, []byte{a})...)
	}
	algs = append(algs, 0x06, 0x00)
	apt = append(apt, apdu.TLV(0xAC, algs)...)
	return apdu.TLV(0x61, apt), swOK
}

// secretHash is how PIN and PUK are kept: salted, never in clear.
func secretHash(salt, ref []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(ref)
	return h.Sum(nil)
}

func (c *Card) checkSecret(key byte, ref []byte) bool {
	want := c.st.PINHash
	if key == keyPUK {
		want = c.st.PUKHash
	}
	return subtle.ConstantTimeCompare(secretHash(c.st.Salt, ref), want) == 1
}

func (c *Card) retries(key byte) *int {
	if key == keyPUK {
		return &c.st.PUKRetries
	}
	return &c.st.PINRetries
}

// tryReference checks a PIN or PUK against its retry counter: 9000, 63Cx or
// 6983 (blocked). It marks the state dirty when a counter moved.
func (c *Card) tryReference(key byte, ref []byte) uint16 {
	left := c.retries(key)
	if *left == 0 {
		return swBlocked
	}
	if !c.checkSecret(key, ref) {
		*left--
		c.markDirty()
		return 0x63C0 | uint16(*left)
	}
	max := c.st.PINMax
	if key == keyPUK {
		max = c.st.PUKMax
	}
	if *left != max {
		*left = max
		c.markDirty()
	}
	return swOK
}

func (c *Card) verify(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P2 != keyPIN && cmd.P2 != keyPUK {
		return nil, swRefNotFound
	}
	switch {
	case cmd.P1 == 0xFF && len(cmd.Data) == 0:
		if cmd.P2 == keyPIN {
			c.pinVerified = false
		}
		return nil, swOK
	case cmd.P1 != 0x00:
		return nil, swIncorrectP1P2
	case len(cmd.Data) == 0:
		left := *c.retries(cmd.P2)
		if left == 0 {
			return nil, swBlocked
		}
		if cmd.P2 == keyPIN && c.pinVerified {
			return nil, swOK
		}
		return nil, 0x63C0 | uint16(left)
	case len(cmd.Data) != 8:
		return nil, swWrongData
	}
	status := c.tryReference(cmd.P2, cmd.Data)
	if cmd.P2 == keyPIN {
		c.pinVerified = status == swOK
	}
	return nil, status
}

func (c *Card) changeReference(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x00 {
		return nil, swIncorrectP1P2
	}
	if cmd.P2 != keyPIN && cmd.P2 != keyPUK {
		return nil, swRefNotFound
	}
	if len(cmd.Data) != 16 {
		return nil, swWrongData
	}
	old, nw := cmd.Data[:8], cmd.Data[8:]
	if cmd.P2 == keyPIN && !validPINRef(nw) {
		return nil, swWrongData
	}
	if status := c.tryReference(cmd.P2, old); status != swOK {
		if cmd.P2 == keyPIN {
			c.pinVerified = false
		}
		return nil, status
	}
	c.setSecret(cmd.P2, nw)
	if cmd.P2 == keyPIN {
		c.pinVerified = true
	}
	return nil, swOK
}

func (c *Card) setSecret(key byte, ref []byte) {
	if key == keyPUK {
		c.st.PUKHash = secretHash(c.st.Salt, ref)
		c.st.PUKDefault = false
	} else {
		c.st.PINHash = secretHash(c.st.Salt, ref)
		c.st.PINDefault = false
	}
	c.markDirty()
}

func (c *Card) resetRetryCounter(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x00 {
		return nil, swIncorrectP1P2
	}
	if cmd.P2 != keyPIN {
		return nil, swRefNotFound
	}
	if len(cmd.Data) != 16 {
		return nil, swWrongData
	}
	puk, pin := cmd.Data[:8], cmd.Data[8:]
	if !validPINRef(pin) {
		return nil, swWrongData
	}
	if status := c.tryReference(keyPUK, puk); status != swOK {
		return nil, status
	}
	c.setSecret(keyPIN, pin)
	c.st.PINRetries = c.st.PINMax
	c.pinVerified = false
	return nil, swOK
}

func (c *Card) markDirty() { c.dirty = true }

func fmtTag(tag uint) string { return fmt.Sprintf("%X", tag) }
