package cardtest

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"

	"id06/personalize/apdu"
)

var (
	tagCHUID   = []byte{0x5F, 0xC1, 0x02}
	tagCert9A  = []byte{0x5F, 0xC1, 0x05}
	tagFacial  = []byte{0x5F, 0xC1, 0x08}
	tagPrinted = []byte{0x5F, 0xC1, 0x09}
	tagSecObj  = []byte{0x5F, 0xC1, 0x06}
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

var suite = []struct {
	name string
	run  func(s *session)
}{
	{"UID", func(s *session) {
		cmd := apdu.Command{CLA: 0xFF, INS: 0xCA, Le: 256}
		a, b := s.must(cmd), s.must(cmd)
		if len(a) < 4 || len(a) > 10 || !bytes.Equal(a, b) {
			s.t.Fatalf("UID % X then % X: want a stable 4–10 byte UID", a, b)
		}
	}},
	{"SelectTemplate", func(s *session) {
		apt := s.selectPIV()
		pix := s.dig(apt, 0x61, 0x4F)
		if !bytes.HasPrefix(pivAID[5:], pix[:min(len(pix), 4)]) {
			s.t.Fatalf("APT 4F % X is not the PIV PIX", pix)
		}
		if aid := s.dig(apt, 0x61, 0x79, 0x4F); !bytes.Equal(aid, pivAID[:5]) {
			s.t.Fatalf("APT 79/4F % X, want the NIST RID", aid)
		}
		// Right-truncated AID (as yubico-piv-tool sends it) selects too.
		s.must(apdu.Command{INS: 0xA4, P1: 0x04, Data: pivAID[:5], Le: 256})
		_, err := s.do(apdu.Command{INS: 0xA4, P1: 0x04, Data: []byte{0xA0, 0, 0, 5, 0x27, 0x21, 1}, Le: 256})
		s.wantErr(err, apdu.ErrNotFound)
	}},
	{"Discovery", func(s *session) {
		out := s.must(getDataCmd([]byte{0x7E}))
		if aid := s.dig(out, 0x7E, 0x4F); !bytes.Equal(aid, pivAID) {
			s.t.Fatalf("discovery AID % X", aid)
		}
		if pol := s.dig(out, 0x7E, 0x5F2F); len(pol) != 2 || pol[0]&0x40 == 0 {
			s.t.Fatalf("PIN usage policy % X: want the PIV PIN", pol)
		}
	}},
	{"BlankObjectsAbsent", func(s *session) {
		for _, tag := range [][]byte{tagCHUID, tagCert9A, tagSecObj} {
			_, err := s.do(getDataCmd(tag))
			s.wantErr(err, apdu.ErrNotFound)
		}
	}},
	{"BadParameters", func(s *session) {
		_, err := s.do(apdu.Command{INS: 0xCB, P1: 0x00, P2: 0x00, Data: tlv(0x5C, tagCHUID), Le: 256})
		s.wantErr(err, apdu.ErrIncorrectP1P2)
		_, err = s.do(apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: []byte{0x5C, 0x05, 1}, Le: 256})
		s.wantErr(err, apdu.ErrWrongData)
		_, err = s.do(apdu.Command{INS: 0x77})
		s.wantErr(err, apdu.ErrInsNotSupported)
	}},
	{"PutDataNeedsManagementKey", func(s *session) {
		_, err := s.do(putDataCmd(tagCHUID, []byte{0x30, 0}))
		s.wantErr(err, apdu.ErrSecurityStatus)
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		_, err = s.do(putDataCmd(tagCHUID, []byte{0x30, 0}))
		s.wantErr(err, apdu.ErrSecurityStatus)
	}},
	{"MutualAuth", func(s *session) {
		s.auth()
		s.must(putDataCmd(tagCHUID, []byte{0x30, 0x01, 0x00}))
	}},
	{"MutualAuthWrongKey", func(s *session) {
		wrong := append([]byte(nil), s.cfg.MgmtKey...)
		wrong[0] ^= 0xFF
		blk := s.mgmtBlock(wrong)
		out := s.must(apdu.Command{INS: 0x87, P1: s.cfg.MgmtAlg, P2: 0x9B, Data: tlv(0x7C, tlv(0x80, nil)), Le: 256})
		enc := s.dig(out, 0x7C, 0x80)
		w := make([]byte, len(enc))
		blk.Decrypt(w, enc)
		body := append(append(tlv(0x80, w), tlv(0x81, make([]byte, len(w)))...), tlv(0x82, nil)...)
		_, err := s.do(apdu.Command{INS: 0x87, P1: s.cfg.MgmtAlg, P2: 0x9B, Data: tlv(0x7C, body), Le: 256})
		s.wantErr(err, apdu.ErrSecurityStatus)
		_, err = s.do(putDataCmd(tagCHUID, []byte{0x30, 0}))
		s.wantErr(err, apdu.ErrSecurityStatus)
	}},
	{"MutualAuthWithoutWitness", func(s *session) {
		n := 8
		if s.cfg.MgmtAlg != 0x03 {
			n = 16
		}
		body := append(append(tlv(0x80, make([]byte, n)), tlv(0x81, make([]byte, n))...), tlv(0x82, nil)...)
		_, err := s.do(apdu.Command{INS: 0x87, P1: s.cfg.MgmtAlg, P2: 0x9B, Data: tlv(0x7C, body), Le: 256})
		s.wantErr(err, apdu.ErrSecurityStatus)
	}},
	{"MutualAuthWrongAlgorithm", func(s *session) {
		alg := byte(0x08)
		if s.cfg.MgmtAlg == 0x08 {
			alg = 0x03
		}
		_, err := s.do(apdu.Command{INS: 0x87, P1: alg, P2: 0x9B, Data: tlv(0x7C, tlv(0x80, nil)), Le: 256})
		s.wantErr(err, apdu.ErrIncorrectP1P2)
	}},
	{"ExternalAuth", func(s *session) {
		blk := s.mgmtBlock(s.cfg.MgmtKey)
		out := s.must(apdu.Command{INS: 0x87, P1: s.cfg.MgmtAlg, P2: 0x9B, Data: tlv(0x7C, tlv(0x81, nil)), Le: 256})
		chal := s.dig(out, 0x7C, 0x81)
		resp := make([]byte, len(chal))
		blk.Encrypt(resp, chal)
		s.must(apdu.Command{INS: 0x87, P1: s.cfg.MgmtAlg, P2: 0x9B, Data: tlv(0x7C, tlv(0x82, resp))})
		s.must(putDataCmd(tagCHUID, []byte{0x30, 0}))
	}},
	{"PutGetShort", func(s *session) {
		s.auth()
		v := pattern(200)
		s.must(putDataCmd(tagCHUID, v))
		out := s.must(getDataCmd(tagCHUID))
		if got := s.dig(out, 0x53); !bytes.Equal(got, v) {
			s.t.Fatalf("read back %d bytes, want %d", len(got), len(v))
		}
	}},
	{"PutChainedGetResponse", func(s *session) {
		s.auth()
		v := pattern(2500)
		s.must(putDataCmd(tagCert9A, v)) // 2.5 KB: Do chains it in 255-byte parts
		// A short Le gets 256 bytes and 61xx; Do collects the rest.
		r := s.raw(getDataCmd(tagCert9A))
		if r.SW>>8 != 0x61 || len(r.Data) != 256 {
			s.t.Fatalf("first answer %d bytes SW %04X, want 256 bytes and 61xx", len(r.Data), r.SW)
		}
		g := s.raw(apdu.Command{INS: 0xC0, Le: int(r.SW&0xFF) | 0})
		if len(g.Data) == 0 || (g.SW != 0x9000 && g.SW>>8 != 0x61) {
			s.t.Fatalf("GET RESPONSE gave %d bytes SW %04X", len(g.Data), g.SW)
		}
		out := s.must(getDataCmd(tagCert9A))
		if got := s.dig(out, 0x53); !bytes.Equal(got, v) {
			s.t.Fatalf("read back %d bytes, want %d", len(got), len(v))
		}
	}},
	{"ExtendedLength", func(s *session) {
		s.auth()
		v := pattern(3000)
		cmd := putDataCmd(tagSecObj, v)
		cmd.Extended = true
		s.must(cmd)
		get := getDataCmd(tagSecObj)
		get.Extended, get.Le = true, 65536
		r := s.raw(get)
		if r.SW != 0x9000 {
			s.t.Fatalf("extended GET DATA SW %04X", r.SW)
		}
		if got := s.dig(r.Data, 0x53); !bytes.Equal(got, v) {
			s.t.Fatalf("read back %d bytes, want %d", len(got), len(v))
		}
	}},
	{"ChainBroken", func(s *session) {
		s.auth()
		first := putDataCmd(tagCHUID, pattern(100))
		first.CLA = 0x10
		if r := s.raw(first); r.SW != 0x9000 {
			s.t.Fatalf("chained part SW %04X", r.SW)
		}
		// A different command in the middle of a chain is refused.
		if r := s.raw(apdu.Command{INS: 0x20, P2: 0x80}); r.SW == 0x9000 || r.SW&0xFFF0 == 0x63C0 {
			s.t.Fatalf("VERIFY inside a PUT DATA chain answered %04X", r.SW)
		}
		_, err := s.do(getDataCmd(tagCHUID))
		s.wantErr(err, apdu.ErrNotFound)
	}},
	{"DeleteObject", func(s *session) {
		s.auth()
		s.must(putDataCmd(tagCHUID, []byte{1, 2, 3}))
		s.must(putDataCmd(tagCHUID, nil))
		_, err := s.do(getDataCmd(tagCHUID))
		s.wantErr(err, apdu.ErrNotFound)
	}},
	{"PINProtectedObjects", func(s *session) {
		s.auth()
		s.must(putDataCmd(tagFacial, pattern(600)))
		s.must(putDataCmd(tagPrinted, pattern(40)))
		for _, tag := range [][]byte{tagFacial, tagPrinted} {
			_, err := s.do(getDataCmd(tag))
			s.wantErr(err, apdu.ErrSecurityStatus)
		}
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		if got := s.dig(s.must(getDataCmd(tagFacial)), 0x53); !bytes.Equal(got, pattern(600)) {
			s.t.Fatal("facial image differs after VERIFY")
		}
		s.must(getDataCmd(tagPrinted))
		// VERIFY P1=FF drops the PIN status again.
		s.must(apdu.Command{INS: 0x20, P1: 0xFF, P2: 0x80})
		_, err := s.do(getDataCmd(tagFacial))
		s.wantErr(err, apdu.ErrSecurityStatus)
	}},
	{"MemoryFull", func(s *session) {
		if s.cfg.Capacity == 0 {
			s.t.Skip("capacity unknown")
		}
		s.auth()
		chunk := 20 * 1024
		tags := [][]byte{{0x5F, 0xC1, 0x0D}, {0x5F, 0xC1, 0x0E}, {0x5F, 0xC1, 0x0F}, {0x5F, 0xC1, 0x10}}
		var err error
		written := 0
		for _, tag := range tags {
			if _, err = s.do(putDataCmd(tag, pattern(chunk))); err != nil {
				break
			}
			written += chunk
		}
		if written > s.cfg.Capacity {
			s.t.Fatalf("wrote %d bytes into a %d-byte card", written, s.cfg.Capacity)
		}
		s.wantErr(err, apdu.ErrMemoryFull)
		// What was written before stays intact.
		if got := s.dig(s.must(getDataCmd(tags[0])), 0x53); !bytes.Equal(got, pattern(chunk)) {
			s.t.Fatal("first object damaged by the failed write")
		}
	}},
	{"VerifyPIN", func(s *session) {
		_, err := s.do(apdu.Command{INS: 0x20, P2: 0x80})
		s.wantRetries(err, 3)
		s.wantRetries(s.verifyPIN("999999"), 2)
		_, err = s.do(apdu.Command{INS: 0x20, P2: 0x80})
		s.wantRetries(err, 2)
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		// Verified: an empty VERIFY answers 9000; the counter is back at 3.
		s.must(apdu.Command{INS: 0x20, P2: 0x80})
		_, err = s.do(apdu.Command{INS: 0x20, P2: 0x80, Data: []byte{0x31, 0x32}})
		s.wantErr(err, apdu.ErrWrongData)
		_, err = s.do(apdu.Command{INS: 0x20, P2: 0x85, Data: ref(s.cfg.PIN)})
		s.wantErr(err, apdu.ErrRefDataNotFound)
		s.must(apdu.Command{INS: 0x20, P1: 0xFF, P2: 0x80})
		_, err = s.do(apdu.Command{INS: 0x20, P2: 0x80})
		s.wantRetries(err, 3)
	}},
	{"PINBlocks", func(s *session) {
		s.wantRetries(s.verifyPIN("000000"), 2)
		s.wantRetries(s.verifyPIN("000000"), 1)
		s.wantRetries(s.verifyPIN("000000"), 0)
		s.wantErr(s.verifyPIN(s.cfg.PIN), apdu.ErrAuthBlocked)
		_, err := s.do(apdu.Command{INS: 0x20, P2: 0x80})
		s.wantErr(err, apdu.ErrAuthBlocked)
	}},
	{"ChangePIN", func(s *session) {
		_, err := s.do(apdu.Command{INS: 0x24, P2: 0x80, Data: append(ref("654321"), ref("111111")...)})
		s.wantRetries(err, 2)
		_, err = s.do(apdu.Command{INS: 0x24, P2: 0x80, Data: append(ref(s.cfg.PIN), ref("12ab56")...)})
		s.wantErr(err, apdu.ErrWrongData)
		_, err = s.do(apdu.Command{INS: 0x24, P2: 0x80, Data: append(ref(s.cfg.PIN), ref("12345")...)})
		s.wantErr(err, apdu.ErrWrongData)
		s.must(apdu.Command{INS: 0x24, P2: 0x80, Data: append(ref(s.cfg.PIN), ref("24681357")...)})
		s.wantRetries(s.verifyPIN(s.cfg.PIN), 2)
		if err := s.verifyPIN("24681357"); err != nil {
			s.t.Fatal(err)
		}
	}},
	{"ChangePUK", func(s *session) {
		_, err := s.do(apdu.Command{INS: 0x24, P2: 0x81, Data: append(ref("87654321"), ref("11112222")...)})
		s.wantRetries(err, 2)
		s.must(apdu.Command{INS: 0x24, P2: 0x81, Data: append(ref(s.cfg.PUK), ref("11112222")...)})
		_, err = s.do(apdu.Command{INS: 0x2C, P2: 0x80, Data: append(ref(s.cfg.PUK), ref("333333")...)})
		s.wantRetries(err, 2)
		s.must(apdu.Command{INS: 0x2C, P2: 0x80, Data: append(ref("11112222"), ref("333333")...)})
		if err := s.verifyPIN("333333"); err != nil {
			s.t.Fatal(err)
		}
	}},
	{"ResetRetryCounter", func(s *session) {
		for range 3 {
			s.verifyPIN("000000")
		}
		s.wantErr(s.verifyPIN(s.cfg.PIN), apdu.ErrAuthBlocked)
		_, err := s.do(apdu.Command{INS: 0x2C, P2: 0x80, Data: append(ref(s.cfg.PUK), ref("1234")...)})
		s.wantErr(err, apdu.ErrWrongData)
		s.must(apdu.Command{INS: 0x2C, P2: 0x80, Data: append(ref(s.cfg.PUK), ref("975310")...)})
		_, err = s.do(apdu.Command{INS: 0x20, P2: 0x80})
		s.wantRetries(err, 3)
		if err := s.verifyPIN("975310"); err != nil {
			s.t.Fatal(err)
		}
	}},
	{"PUKBlocks", func(s *session) {
		bad := append(ref("00000000"), ref("111111")...)
		for _, left := range []int{2, 1, 0} {
			_, err := s.do(apdu.Command{INS: 0x2C, P2: 0x80, Data: bad})
			s.wantRetries(err, left)
		}
		_, err := s.do(apdu.Command{INS: 0x2C, P2: 0x80, Data: append(ref(s.cfg.PUK), ref("111111")...)})
		s.wantErr(err, apdu.ErrAuthBlocked)
		_, err = s.do(apdu.Command{INS: 0x24, P2: 0x81, Data: append(ref(s.cfg.PUK), ref("11111111")...)})
		s.wantErr(err, apdu.ErrAuthBlocked)
		// The PIN is independent of the PUK.
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
	}},
	{"GenerateNeedsManagementKey", func(s *session) {
		_, err := s.do(genCmd(0x9A, 0x11))
		s.wantErr(err, apdu.ErrSecurityStatus)
	}},
	{"GenerateBadRequest", func(s *session) {
		s.auth()
		_, err := s.do(genCmd(0x9A, 0x42))
		s.wantErr(err, apdu.ErrWrongData)
		_, err = s.do(genCmd(0x9B, 0x11))
		s.wantErr(err, apdu.ErrRefDataNotFound)
		// A failed generation leaves the slot empty.
		_, err = s.do(signCmd(0x11, 0x9E, make([]byte, 32)))
		s.wantErr(err, apdu.ErrRefDataNotFound)
	}},
	{"GenerateAndSignP256", func(s *session) {
		s.auth()
		pub := s.genEC(0x9A, 0x11, elliptic.P256())
		digest := sha256.Sum256([]byte("challenge"))
		_, err := s.do(signCmd(0x11, 0x9A, digest[:]))
		s.wantErr(err, apdu.ErrSecurityStatus)
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		sig := s.dig(s.must(signCmd(0x11, 0x9A, digest[:])), 0x7C, 0x82)
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			s.t.Fatal("9A signature does not verify with the generated public key")
		}
		// PIN once per session: a second signature needs no new VERIFY.
		s.must(signCmd(0x11, 0x9A, digest[:]))
		_, err = s.do(signCmd(0x14, 0x9A, digest[:]))
		s.wantErr(err, apdu.ErrIncorrectP1P2)
		_, err = s.do(signCmd(0x11, 0x9D, digest[:]))
		s.wantErr(err, apdu.ErrRefDataNotFound)
	}},
	{"SignatureSlotPINAlways", func(s *session) {
		s.auth()
		pub := s.genEC(0x9C, 0x11, elliptic.P256())
		digest := sha256.Sum256([]byte("document"))
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		sig := s.dig(s.must(signCmd(0x11, 0x9C, digest[:])), 0x7C, 0x82)
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			s.t.Fatal("9C signature does not verify")
		}
		_, err := s.do(signCmd(0x11, 0x9C, digest[:]))
		s.wantErr(err, apdu.ErrSecurityStatus)
	}},
	{"CardAuthNoPIN", func(s *session) {
		s.auth()
		pub := s.genEC(0x9E, 0x14, elliptic.P384())
		digest := make([]byte, 48)
		rand.Read(digest)
		sig := s.dig(s.must(signCmd(0x14, 0x9E, digest)), 0x7C, 0x82)
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			s.t.Fatal("9E P-384 signature does not verify")
		}
	}},
	{"ECDH", func(s *session) {
		s.auth()
		pub := s.genEC(0x9D, 0x11, elliptic.P256())
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		eph, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			s.t.Fatal(err)
		}
		body := append(tlv(0x82, nil), tlv(0x85, eph.PublicKey().Bytes())...)
		got := s.dig(s.must(apdu.Command{INS: 0x87, P1: 0x11, P2: 0x9D, Data: tlv(0x7C, body), Le: 256}), 0x7C, 0x82)
		cardPub, err := pub.ECDH()
		if err != nil {
			s.t.Fatal(err)
		}
		want, err := eph.ECDH(cardPub)
		if err != nil {
			s.t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			s.t.Fatal("card's ECDH secret differs from ours")
		}
	}},
	{"GenerateAndSignRSA2048", func(s *session) {
		s.auth()
		out := s.must(genCmd(0x9A, 0x07))
		n := new(big.Int).SetBytes(s.dig(out, 0x7F49, 0x81))
		e := new(big.Int).SetBytes(s.dig(out, 0x7F49, 0x82))
		pub := &rsa.PublicKey{N: n, E: int(e.Int64())}
		if pub.Size() != 256 {
			s.t.Fatalf("modulus of %d bytes", pub.Size())
		}
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("rsa"))
		// EMSA-PKCS1-v1_5 with the SHA-256 DigestInfo, padded by the host.
		prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
		t := append(prefix, digest[:]...)
		em := append([]byte{0, 1}, bytes.Repeat([]byte{0xFF}, 256-3-len(t))...)
		em = append(append(em, 0), t...)
		sig := s.dig(s.must(signCmd(0x07, 0x9A, em)), 0x7C, 0x82)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			s.t.Fatalf("RSA signature: %v", err)
		}
	}},
	{"YubicoExtensions", func(s *session) {
		if !s.cfg.Yubico {
			// Generic stock: no vendor commands a client could take
			// for a YubiKey's.
			for _, ins := range []byte{0xFD, 0xF8, 0xF7, 0xFA, 0xFB, 0xFE} {
				_, err := s.do(apdu.Command{INS: ins, P2: 0x9B, Le: 256})
				s.wantErr(err, apdu.ErrInsNotSupported)
			}
			return
		}
		if v := s.must(apdu.Command{INS: 0xFD, Le: 256}); len(v) != 3 {
			s.t.Fatalf("GET VERSION % X", v)
		}
		if v := s.must(apdu.Command{INS: 0xF8, Le: 256}); len(v) != 4 {
			s.t.Fatalf("GET SERIAL % X", v)
		}
		md := s.must(apdu.Command{INS: 0xF7, P2: 0x9B, Le: 256})
		if alg := s.dig(md, 0x01); len(alg) != 1 || alg[0] != s.cfg.MgmtAlg {
			s.t.Fatalf("management key metadata algorithm % X, want %02X", alg, s.cfg.MgmtAlg)
		}
		s.verifyPIN("000000")
		if r := s.dig(s.must(apdu.Command{INS: 0xF7, P2: 0x80, Le: 256}), 0x06); !bytes.Equal(r, []byte{3, 2}) {
			s.t.Fatalf("PIN metadata retries % X, want 03 02", r)
		}
		_, err := s.do(apdu.Command{INS: 0xF7, P2: 0x9A, Le: 256})
		s.wantErr(err, apdu.ErrRefDataNotFound)
		s.auth()
		pub := s.genEC(0x9A, 0x11, elliptic.P256())
		point := s.dig(s.must(apdu.Command{INS: 0xF7, P2: 0x9A, Le: 256}), 0x04, 0x86)
		want, _ := pub.ECDH()
		if !bytes.Equal(point, want.Bytes()) {
			s.t.Fatal("slot metadata public key differs from the generated one")
		}
	}},
	{"ImportKey", func(s *session) {
		if !s.cfg.Yubico {
			return // a Yubico extension; generic stock refuses it above
		}
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			s.t.Fatal(err)
		}
		scalar, err := ec.Bytes()
		if err != nil {
			s.t.Fatal(err)
		}
		imp := apdu.Command{INS: 0xFE, P1: 0x11, P2: 0x9D, Data: tlv(0x06, scalar)}
		_, err = s.do(imp)
		s.wantErr(err, apdu.ErrSecurityStatus)
		s.auth()
		s.must(imp)
		if err := s.verifyPIN(s.cfg.PIN); err != nil {
			s.t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("imported"))
		sig := s.dig(s.must(signCmd(0x11, 0x9D, digest[:])), 0x7C, 0x82)
		if !ecdsa.VerifyASN1(&ec.PublicKey, digest[:], sig) {
			s.t.Fatal("signature with the imported key does not verify")
		}
		_, err = s.do(apdu.Command{INS: 0xFE, P1: 0x11, P2: 0x9D, Data: tlv(0x06, scalar[:31])})
		s.wantErr(err, apdu.ErrWrongData)

		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			s.t.Fatal(err)
		}
		p, q := rk.Primes[0], rk.Primes[1]
		body := append(tlv(0x01, p.Bytes()), tlv(0x02, q.Bytes())...)
		body = append(body, tlv(0x03, rk.Precomputed.Dp.Bytes())...)
		body = append(body, tlv(0x04, rk.Precomputed.Dq.Bytes())...)
		body = append(body, tlv(0x05, rk.Precomputed.Qinv.Bytes())...)
		s.must(apdu.Command{INS: 0xFE, P1: 0x07, P2: 0x9A, Data: body})
		em := make([]byte, 256)
		em[255] = 42
		out := s.dig(s.must(signCmd(0x07, 0x9A, em)), 0x7C, 0x82)
		// Raw RSA: out^e mod n gives the input back.
		back := new(big.Int).Exp(new(big.Int).SetBytes(out), big.NewInt(int64(rk.E)), rk.N)
		if back.Cmp(big.NewInt(42)) != 0 {
			s.t.Fatal("RSA operation with the imported key is wrong")
		}
	}},
	{"Algorithm00Is3DES", func(s *session) {
		// SP 800-78-4 table 6-2 names 3DES both 00 and 03.
		if s.cfg.MgmtAlg != 0x03 {
			return
		}
		if err := s.mutualAuthAs(0x00, s.cfg.MgmtKey); err != nil {
			s.t.Fatalf("mutual authentication with algorithm 00: %v", err)
		}
		s.must(putDataCmd(tagCHUID, []byte{0x30, 0x01, 0x00}))
	}},
	{"SetManagementKey", func(s *session) {
		s.auth()
		newKey := pattern(len(s.cfg.MgmtKey))
		s.must(apdu.Command{INS: 0xFF, P1: 0xFF, P2: 0xFF, Data: append([]byte{s.cfg.MgmtAlg, 0x9B, byte(len(newKey))}, newKey...)})
		if err := s.mutualAuth(s.cfg.MgmtKey); err == nil {
			s.t.Fatal("old management key still authenticates")
		}
		if err := s.mutualAuth(newKey); err != nil {
			s.t.Fatalf("new management key: %v", err)
		}
	}},
}

func genCmd(slot, alg byte) apdu.Command {
	return apdu.Command{INS: 0x47, P2: slot, Data: tlv(0xAC, tlv(0x80, []byte{alg})), Le: 256}
}

func signCmd(alg, slot byte, in []byte) apdu.Command {
	body := append(tlv(0x82, nil), tlv(0x81, in)...)
	return apdu.Command{INS: 0x87, P1: alg, P2: slot, Data: tlv(0x7C, body), Le: 256}
}

func (s *session) genEC(slot, alg byte, curve elliptic.Curve) *ecdsa.PublicKey {
	s.t.Helper()
	point := s.dig(s.must(genCmd(slot, alg)), 0x7F49, 0x86)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		s.t.Fatalf("generated public key: %v", err)
	}
	return pub
}
