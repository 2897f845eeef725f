package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"math/big"

	"id06/personalize/apdu"
)

// YubiKey PIV extensions (Yubico "PIV commands" reference) that
// yubico-piv-tool sends: GET VERSION, GET SERIAL, GET METADATA, SET PIN
// RETRIES, RESET and IMPORT KEY, answered only by Yubico stock. The
// emulator reports firmware 5.4.3, the first line with AES management keys
// and metadata.
var yubiVersion = []byte{5, 4, 3}

func (c *Card) yubico(cmd apdu.Command) ([]byte, uint16) {
	switch cmd.INS {
	case 0xFD:
		return yubiVersion, swOK
	case 0xF8:
		return c.serial(), swOK
	case 0xF7:
		return c.metadata(cmd)
	case 0xFA:
		return c.setRetries(cmd)
	case 0xFB:
		return c.resetApplet()
	case 0xFE:
		return c.importKey(cmd)
	}
	return nil, swInsNotSupp
}

// metadata: 00 F7 00 ref.
func (c *Card) metadata(cmd apdu.Command) ([]byte, uint16) {
	ref := cmd.P2
	bit := func(b bool) byte {
		if b {
			return 1
		}
		return 0
	}
	switch {
	case ref == keyMgmt:
		out := apdu.TLV(0x01, []byte{c.st.MgmtAlg})
		out = append(out, apdu.TLV(0x02, []byte{0x00, 0x01})...)
		return append(out, apdu.TLV(0x05, []byte{bit(c.st.MgmtDef)})...), swOK
	case ref == keyPIN || ref == keyPUK:
		max, left, def := c.st.PINMax, c.st.PINRetries, c.st.PINDefault
		if ref == keyPUK {
			max, left, def = c.st.PUKMax, c.st.PUKRetries, c.st.PUKDefault
		}
		out := apdu.TLV(0x01, []byte{0xFF})
		out = append(out, apdu.TLV(0x05, []byte{bit(def)})...)
		return append(out, apdu.TLV(0x06, []byte{byte(max), byte(left)})...), swOK
	case keyRefOK(ref):
		k := c.key(ref)
		if k == nil {
			return nil, swRefNotFound
		}
		s, err := k.signer()
		if err != nil {
			return nil, swMemoryFailure
		}
		pinPolicy := byte(0x02) // once per session
		if ref == 0x9C {
			pinPolicy = 0x03
		} else if ref == 0x9E {
			pinPolicy = 0x01
		}
		out := apdu.TLV(0x01, []byte{k.Alg})
		out = append(out, apdu.TLV(0x02, []byte{pinPolicy, 0x01})...)
		out = append(out, apdu.TLV(0x03, []byte{k.Origin})...)
		return append(out, apdu.TLV(0x04, publicKeyTLVs(s.Public()))...), swOK
	}
	return nil, swRefNotFound
}

// setManagementKey: 00 FF FF FF|FE with 03 9B 18 key (alg, ref, length).
// Yubico defined it; most PIV stock takes it, as SP 800-73-4 leaves
// changing the management key to the card vendor.
func (c *Card) setManagementKey(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0xFF || (cmd.P2 != 0xFF && cmd.P2 != 0xFE) {
		return nil, swIncorrectP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurity
	}
	d := cmd.Data
	if len(d) < 3 || d[1] != keyMgmt || int(d[2]) != len(d)-3 {
		return nil, swWrongData
	}
	n, err := mgmtKeyLen(d[0])
	if err != nil || n != len(d)-3 || (c.st.NoAES && d[0] != Alg3DES) {
		return nil, swWrongData
	}
	c.st.MgmtAlg = d[0]
	c.st.MgmtKey = append([]byte(nil), d[3:]...)
	c.st.MgmtDef = false
	c.markDirty()
	return nil, swOK
}

// setRetries: 00 FA pin puk. Needs management key and PIN; resets PIN and
// PUK to the defaults, as a YubiKey does.
func (c *Card) setRetries(cmd apdu.Command) ([]byte, uint16) {
	if !c.mgmtAuthed || !c.pinVerified {
		return nil, swSecurity
	}
	if cmd.P1 == 0 || cmd.P2 == 0 || cmd.P1 > 15 || cmd.P2 > 15 {
		return nil, swIncorrectP1P2
	}
	d := DefaultStock()
	pin, _ := padPIN(d.PIN)
	c.setSecret(keyPIN, pin)
	c.setSecret(keyPUK, padRef(d.PUK))
	c.st.PINDefault, c.st.PUKDefault = true, true
	c.st.PINMax, c.st.PINRetries = int(cmd.P1), int(cmd.P1)
	c.st.PUKMax, c.st.PUKRetries = int(cmd.P2), int(cmd.P2)
	return nil, swOK
}

// resetApplet: 00 FB. Allowed only when both PIN and PUK are blocked; wipes
// objects and keys back to YubiKey factory defaults, keeping the UID and
// capacity.
func (c *Card) resetApplet() ([]byte, uint16) {
	if c.st.PINRetries != 0 || c.st.PUKRetries != 0 {
		return nil, swConditions
	}
	d := DefaultStock()
	d.Capacity, d.MaxObject, d.Yubico = c.st.Capacity, c.st.MaxObject, c.st.Yubico
	c.st = blankState(d, c.st.UID)
	c.resetVolatile()
	c.markDirty()
	return nil, swOK
}

// importKey: 00 FE alg ref with the private key as TLVs — ECC: 06 scalar;
// RSA: 01 p, 02 q, 03 dP, 04 dQ, 05 qInv (optional AA/AB policies). Needs
// management key authentication; the key's origin becomes "imported".
func (c *Card) importKey(cmd apdu.Command) ([]byte, uint16) {
	if !keyRefOK(cmd.P2) {
		return nil, swRefNotFound
	}
	if !c.mgmtAuthed {
		return nil, swSecurity
	}
	items, err := apdu.ParseTLV(cmd.Data)
	if err != nil {
		return nil, swWrongData
	}
	var priv crypto.Signer
	switch cmd.P1 {
	case AlgECCP256, AlgECCP384:
		curve := elliptic.P256()
		if cmd.P1 == AlgECCP384 {
			curve = elliptic.P384()
		}
		d, ok := apdu.Find(items, 0x06)
		if !ok || len(d) != (curve.Params().BitSize+7)/8 {
			return nil, swWrongData
		}
		k, err := ecdsa.ParseRawPrivateKey(curve, d)
		if err != nil {
			return nil, swWrongData
		}
		priv = k
	case AlgRSA2048:
		var parts [5]*big.Int
		for i := range parts {
			v, ok := apdu.Find(items, uint(i+1))
			if !ok || len(v) == 0 {
				return nil, swWrongData
			}
			parts[i] = new(big.Int).SetBytes(v)
		}
		p, q := parts[0], parts[1]
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != 2048 {
			return nil, swWrongData
		}
		e := big.NewInt(65537)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			return nil, swWrongData
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 65537}, D: d, Primes: []*big.Int{p, q}}
		if k.Validate() != nil {
			return nil, swWrongData
		}
		k.Precompute()
		priv = k
	default:
		return nil, swIncorrectP1P2
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, swWrongData
	}
	c.st.Keys[keyName(cmd.P2)] = &slot{Alg: cmd.P1, PKCS8: der, Origin: 2, priv: priv}
	c.markDirty()
	return nil, swOK
}
