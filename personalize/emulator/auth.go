package emulator

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"math/big"

	"id06/personalize/apdu"
)

func (c *Card) mgmtCipher() (cipher.Block, error) {
	if c.st.MgmtAlg == Alg3DES {
		return des.NewTripleDESCipher(c.st.MgmtKey)
	}
	return aes.NewCipher(c.st.MgmtKey)
}

func blockCrypt(b cipher.Block, in []byte, encrypt bool) []byte {
	out := make([]byte, len(in))
	if encrypt {
		b.Encrypt(out, in)
	} else {
		b.Decrypt(out, in)
	}
	return out
}

// generalAuthenticate: 00 87 alg key 7C{…} (part 2 §3.2.4).
func (c *Card) generalAuthenticate(cmd apdu.Command) ([]byte, uint16) {
	items, err := apdu.UnwrapItems(cmd.Data, 0x7C)
	if err != nil {
		return nil, swWrongData
	}
	if cmd.P2 == keyMgmt {
		return c.mgmtAuth(cmd.P1, items)
	}
	return c.privateKeyOp(cmd.P1, cmd.P2, items)
}

// mgmtAuth runs the symmetric management key protocols: mutual
// authentication (80 witness → 80 + 81 challenge → 82 response) and
// external authentication (81 request → 82 encrypted challenge).
func (c *Card) mgmtAuth(alg byte, items []apdu.TLVItem) ([]byte, uint16) {
	if alg == Alg3DESAlias {
		alg = Alg3DES
	}
	if alg != c.st.MgmtAlg {
		return nil, swIncorrectP1P2
	}
	blk, err := c.mgmtCipher()
	if err != nil {
		return nil, swConditions
	}
	n := blk.BlockSize()
	witness, hasW := apdu.Find(items, 0x80)
	chal, hasC := apdu.Find(items, 0x81)
	resp, hasR := apdu.Find(items, 0x82)
	switch {
	case hasW && len(witness) == 0 && !hasC: // step 1 of mutual auth
		c.mgmtAuthed = false
		c.witness = make([]byte, n)
		rand.Read(c.witness)
		c.challenge = nil
		return apdu.TLV(0x7C, apdu.TLV(0x80, blockCrypt(blk, c.witness, true))), swOK
	case hasW && hasC && len(witness) == n && len(chal) == n: // step 2
		want := c.witness
		c.witness = nil
		if want == nil || subtle.ConstantTimeCompare(want, witness) != 1 {
			return nil, swSecurity
		}
		c.mgmtAuthed = true
		return apdu.TLV(0x7C, apdu.TLV(0x82, blockCrypt(blk, chal, true))), swOK
	case hasC && len(chal) == 0 && !hasW: // external auth: request a challenge
		c.mgmtAuthed = false
		c.challenge = make([]byte, n)
		rand.Read(c.challenge)
		c.witness = nil
		return apdu.TLV(0x7C, apdu.TLV(0x81, c.challenge)), swOK
	case hasR && len(resp) == n && !hasW && !hasC:
		want := c.challenge
		c.challenge = nil
		if want == nil || subtle.ConstantTimeCompare(blockCrypt(blk, want, true), resp) != 1 {
			return nil, swSecurity
		}
		c.mgmtAuthed = true
		return nil, swOK
	}
	c.witness, c.challenge = nil, nil
	return nil, swWrongData
}

// keyRefOK lists the asymmetric key references: 9A 9C 9D 9E and the
// retired key management slots 82–95.
func keyRefOK(ref byte) bool {
	return ref == 0x9A || ref == 0x9C || ref == 0x9D || ref == 0x9E || (ref >= 0x82 && ref <= 0x95)
}

// privateKeyOp signs (81 input), or performs ECDH (85 peer point), with
// the key in ref. PIN rules: 9E none, 9C PIN always (one operation per
// VERIFY), the others the PIN once per session.
func (c *Card) privateKeyOp(alg, ref byte, items []apdu.TLVItem) ([]byte, uint16) {
	if !keyRefOK(ref) {
		return nil, swRefNotFound
	}
	k := c.key(ref)
	if k == nil {
		return nil, swRefNotFound
	}
	if k.Alg != alg {
		return nil, swIncorrectP1P2
	}
	if ref != 0x9E && !c.pinVerified {
		return nil, swSecurity
	}
	if r, ok := apdu.Find(items, 0x82); !ok || len(r) != 0 {
		return nil, swWrongData
	}
	signer, err := k.signer()
	if err != nil {
		return nil, swMemoryFailure
	}
	var out []byte
	if in, ok := apdu.Find(items, 0x81); ok {
		if out, ok = privateOp(signer, in); !ok {
			return nil, swWrongData
		}
	} else if peer, ok := apdu.Find(items, 0x85); ok {
		ek, isEC := signer.(*ecdsa.PrivateKey)
		if !isEC {
			return nil, swWrongData
		}
		if out, ok = agree(ek, peer); !ok {
			return nil, swWrongData
		}
	} else {
		return nil, swWrongData
	}
	if ref == 0x9C {
		c.pinVerified = false
	}
	return apdu.TLV(0x7C, apdu.TLV(0x82, out)), swOK
}

// privateOp is the card's raw private key operation: ECDSA over a digest
// the host prepared, or RSA on an already padded block.
func privateOp(signer any, in []byte) ([]byte, bool) {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(in) == 0 || len(in) > size {
			return nil, false
		}
		sig, err := ecdsa.SignASN1(rand.Reader, k, in)
		return sig, err == nil
	case *rsa.PrivateKey:
		if len(in) != k.Size() {
			return nil, false
		}
		m := new(big.Int).SetBytes(in)
		if m.Cmp(k.N) >= 0 {
			return nil, false
		}
		return new(big.Int).Exp(m, k.D, k.N).FillBytes(make([]byte, k.Size())), true
	}
	return nil, false
}

func agree(k *ecdsa.PrivateKey, peer []byte) ([]byte, bool) {
	ek, err := k.ECDH()
	if err != nil {
		return nil, false
	}
	pub, err := ek.Curve().NewPublicKey(peer)
	if err != nil {
		return nil, false
	}
	secret, err := ek.ECDH(pub)
	return secret, err == nil
}

// generateKey: 00 47 00 ref AC{80 alg [AA pin policy] [AB touch policy]}
// (part 2 §3.3.2). Needs management key authentication; answers 7F49 with
// the public key.
func (c *Card) generateKey(cmd apdu.Command) ([]byte, uint16) {
	if cmd.P1 != 0x00 {
		return nil, swIncorrectP1P2
	}
	if !keyRefOK(cmd.P2) {
		return nil, swRefNotFound
	}
	if !c.mgmtAuthed {
		return nil, swSecurity
	}
	items, err := apdu.UnwrapItems(cmd.Data, 0xAC)
	if err != nil {
		return nil, swWrongData
	}
	alg, ok := apdu.Find(items, 0x80)
	if !ok || len(alg) != 1 {
		return nil, swWrongData
	}
	var priv crypto.Signer
	switch alg[0] {
	case AlgECCP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgECCP384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case AlgRSA2048:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, swWrongData // the algorithm is in the data field
	}
	if err != nil {
		return nil, swMemoryFailure
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, swMemoryFailure
	}
	s := &slot{Alg: alg[0], PKCS8: der, Origin: 1}
	if _, err := s.signer(); err != nil {
		return nil, swMemoryFailure
	}
	c.st.Keys[keyName(cmd.P2)] = s
	c.markDirty()
	return apdu.TLV(0x7F49, publicKeyTLVs(s.priv.Public())), swOK
}

// publicKeyTLVs encodes a public key as the 7F49 template contents: 86 point
// for ECC, 81 modulus 82 exponent for RSA.
func publicKeyTLVs(pub any) []byte {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		ep, err := p.ECDH()
		if err != nil {
			return nil
		}
		return apdu.TLV(0x86, ep.Bytes())
	case *rsa.PublicKey:
		return append(apdu.TLV(0x81, p.N.Bytes()), apdu.TLV(0x82, big.NewInt(int64(p.E)).Bytes())...)
	}
	return nil
}
