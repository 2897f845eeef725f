package personalize

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"image/color"
	"image/jpeg"
	"strings"
	"time"

	"id06/personalize/apdu"
)

// PIV data objects this profile writes (SP 800-73-4 part 1, table 3).
type object struct {
	Name        string
	Tag         uint   // BER-TLV tag used with GET/PUT DATA
	ContainerID uint16 // used in the security object's DG mapping
	NeedsPIN    bool   // read access rule "PIN"
}

var (
	objCert         = object{"Certificate 9A", 0x5FC105, 0x0101, false}
	objCardAuthCert = object{"Certificate 9E", 0x5FC101, 0x0500, false}
	objCHUID        = object{"CHUID", 0x5FC102, 0x3000, false}
	objCCC          = object{"CCC", 0x5FC107, 0xDB00, false}
	objPrinted      = object{"Printed Information", 0x5FC109, 0x3001, true}
	objFacial       = object{"Facial Image", 0x5FC108, 0x6030, true}
	objSecurity     = object{"Security Object", 0x5FC106, 0x9000, false}
)

// written lists the objects in write order: the security object last,
// after the objects it hashes.
var written = []object{objCert, objCardAuthCert, objCHUID, objCCC, objPrinted, objFacial, objSecurity}

// hashed lists the objects covered by the security object, with their data
// group numbers (the numbering is the issuer's choice, SP 800-73-4 part 1, "Security Object").
// Certificates (9A and 9E alike) are left out as the standard recommends:
// they carry their own signature. The CCC lists no objects, so the Card
// Authentication certificate needs no entry there either.
var hashed = []struct {
	DG  int
	Obj object
}{{1, objCHUID}, {2, objCCC}, {3, objPrinted}, {4, objFacial}}

func (o object) String() string { return fmt.Sprintf("%s (%X)", o.Name, o.Tag) }

// OIDs for the signed objects (SP 800-73-4 part 1, FIPS 201, ICAO 9303 part 10).
var (
	oidCHUIDSecurityObject = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 1}
	oidPIVBiometricObject  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 2}
	oidPIVSignerDN         = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 5}
	oidPIVFASCN            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 6}
	oidEntryUUID           = asn1.ObjectIdentifier{1, 3, 6, 1, 1, 16, 4}
	oidLDSSecurityObject   = asn1.ObjectIdentifier{2, 23, 136, 1, 1, 1}
	oidSHA256              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

// --- FASC-N (TIG SCEPACS, 40 BCD characters with odd parity, 25 bytes) ---

// fascn is the PIV-I style FASC-N: non-federal issuers use agency code
// 9999, system code 9999 and credential number 999999, so the card is
// identified by the GUID; we still put the card number's digits in the
// person identifier so a FASC-N-only reader shows something useful.
type fascn struct {
	Agency, System, Credential, CS, ICI, PI, OC, OI, POA string
}

func newFASCN(cardNumber string) (fascn, error) {
	var digits strings.Builder
	for _, r := range cardNumber {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	pi := digits.String()
	if len(pi) > 10 {
		return fascn{}, fmt.Errorf("card number %q has %d digits; the FASC-N person identifier holds 10: %w", cardNumber, len(pi), ErrCardData)
	}
	pi = strings.Repeat("0", 10-len(pi)) + pi
	// OC 3 = commercial enterprise; POA 1 = employee.
	return fascn{Agency: "9999", System: "9999", Credential: "999999", CS: "0", ICI: "1", PI: pi, OC: "3", OI: "9999", POA: "1"}, nil
}

const (
	fascnSS = 0xB
	fascnFS = 0xD
	fascnES = 0xF
)

func (f fascn) encode() ([]byte, error) {
	var chars []byte
	add := func(field string, n int) error {
		if len(field) != n {
			return fmt.Errorf("FASC-N field %q must have %d digits", field, n)
		}
		for _, c := range field {
			if c < '0' || c > '9' {
				return fmt.Errorf("FASC-N field %q is not numeric", field)
			}
			chars = append(chars, byte(c-'0'))
		}
		return nil
	}
	chars = append(chars, fascnSS)
	steps := []struct {
		v   string
		n   int
		sep byte
	}{
		{f.Agency, 4, fascnFS}, {f.System, 4, fascnFS}, {f.Credential, 6, fascnFS},
		{f.CS, 1, fascnFS}, {f.ICI, 1, fascnFS}, {f.PI, 10, 0}, {f.OC, 1, 0}, {f.OI, 4, 0}, {f.POA, 1, fascnES},
	}
	for _, s := range steps {
		if err := add(s.v, s.n); err != nil {
			return nil, err
		}
		if s.sep != 0 {
			chars = append(chars, s.sep)
		}
	}
	var lrc byte
	for _, c := range chars {
		lrc ^= c
	}
	chars = append(chars, lrc)
	// Each character: 4 data bits least significant first, then an odd
	// parity bit; the 200 bits are packed most significant bit first.
	out := make([]byte, 25)
	bit := 0
	for _, c := range chars {
		ones := 0
		for i := range 4 {
			b := c >> i & 1
			ones += int(b)
			setBit(out, bit, b)
			bit++
		}
		setBit(out, bit, byte(1-ones%2))
		bit++
	}
	return out, nil
}

func setBit(b []byte, i int, v byte) {
	if v != 0 {
		b[i/8] |= 0x80 >> (i % 8)
	}
}

func decodeFASCN(b []byte) (fascn, error) {
	if len(b) != 25 {
		return fascn{}, fmt.Errorf("FASC-N is %d bytes, want 25", len(b))
	}
	chars := make([]byte, 40)
	var lrc byte
	for i := range chars {
		var c byte
		ones := 0
		for j := range 5 {
			bit := b[(i*5+j)/8] >> (7 - (i*5+j)%8) & 1
			ones += int(bit)
			if j < 4 {
				c |= bit << j
			}
		}
		if ones%2 != 1 {
			return fascn{}, fmt.Errorf("FASC-N character %d has bad parity", i)
		}
		chars[i] = c
		if i < 39 {
			lrc ^= c
		}
	}
	if chars[39] != lrc {
		return fascn{}, errors.New("FASC-N LRC mismatch")
	}
	want := "S0000F0000F000000F0F0F0000000000000000ET"
	s := make([]byte, 0, 40)
	for i, c := range chars[:39] {
		switch {
		case want[i] == 'S' && c == fascnSS, want[i] == 'F' && c == fascnFS, want[i] == 'E' && c == fascnES:
			s = append(s, '|')
		case want[i] == '0' && c <= 9:
			s = append(s, '0'+c)
		default:
			return fascn{}, fmt.Errorf("FASC-N character %d (%X) is out of place", i, c)
		}
	}
	d := string(s)
	return fascn{Agency: d[1:5], System: d[6:10], Credential: d[11:17], CS: d[18:19], ICI: d[20:21],
		PI: d[22:32], OC: d[32:33], OI: d[33:37], POA: d[37:38]}, nil
}

// --- containers ---

// tlvs concatenates TLVs.
func tlvs(items ...[]byte) []byte { return bytes.Join(items, nil) }

// container is what PUT DATA stores and GET DATA returns: 53 L value.
func container(value []byte) []byte { return apdu.TLV(0x53, value) }

// chuidSigned is the part of the CHUID the issuer signature covers: all
// elements before the signature (SP 800-73-4 part 1 §3.1.2).
func chuidSigned(fasc []byte, guid [16]byte, expiry time.Time) []byte {
	return tlvs(
		apdu.TLV(0x30, fasc),
		apdu.TLV(0x34, guid[:]),
		apdu.TLV(0x35, []byte(expiry.Format("20060102"))),
	)
}

func buildCHUID(s signer, fasc []byte, guid [16]byte, expiry time.Time) ([]byte, error) {
	signed := chuidSigned(fasc, guid, expiry)
	sig, err := s.signDetached(signed, oidCHUIDSecurityObject, true, nil)
	if err != nil {
		return nil, fmt.Errorf("sign CHUID: %w", err)
	}
	return tlvs(signed, apdu.TLV(0x3E, sig), apdu.TLV(0xFE, nil)), nil
}

type chuid struct {
	FASCN     []byte
	GUID      [16]byte
	Expiry    time.Time
	Signed    []byte // the bytes the signature covers
	Signature []byte
}

func parseCHUID(v []byte) (chuid, error) {
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return chuid{}, err
	}
	var c chuid
	var ok bool
	if c.FASCN, ok = apdu.Find(items, 0x30); !ok || len(c.FASCN) != 25 {
		return chuid{}, errors.New("FASC-N (tag 30) missing or not 25 bytes")
	}
	g, ok := apdu.Find(items, 0x34)
	if !ok || len(g) != 16 {
		return chuid{}, errors.New("GUID (tag 34) missing or not 16 bytes")
	}
	copy(c.GUID[:], g)
	e, ok := apdu.Find(items, 0x35)
	if !ok {
		return chuid{}, errors.New("expiration date (tag 35) missing")
	}
	if c.Expiry, err = time.Parse("20060102", string(e)); err != nil {
		return chuid{}, fmt.Errorf("expiration date %q is not YYYYMMDD", e)
	}
	if c.Signature, ok = apdu.Find(items, 0x3E); !ok || len(c.Signature) == 0 {
		return chuid{}, errors.New("issuer asymmetric signature (tag 3E) missing")
	}
	if _, ok := apdu.Find(items, 0xFE); !ok {
		return chuid{}, errors.New("error detection code (tag FE) missing")
	}
	// The signature covers every element that precedes tag 3E, as stored.
	for _, it := range items {
		if it.Tag == 0x3E {
			break
		}
		c.Signed = append(c.Signed, apdu.TLV(it.Tag, it.Value)...)
	}
	return c, nil
}

func buildCertObject(cert *x509.Certificate) []byte {
	// CertInfo 00: uncompressed certificate.
	return tlvs(apdu.TLV(0x70, cert.Raw), apdu.TLV(0x71, []byte{0}), apdu.TLV(0xFE, nil))
}

func parseCertObject(v []byte) (*x509.Certificate, error) {
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return nil, err
	}
	der, ok := apdu.Find(items, 0x70)
	if !ok {
		return nil, errors.New("certificate (tag 70) missing")
	}
	if info, ok := apdu.Find(items, 0x71); ok && len(info) == 1 && info[0] != 0 {
		return nil, fmt.Errorf("CertInfo %02X: compressed certificates are not supported", info[0])
	}
	return x509.ParseCertificate(der)
}

// buildCCC is the card capability container (SP 800-73-4 part 1 table 8):
// a PIV data model 0x10 card with no capability tuples.
func buildCCC(guid [16]byte) []byte {
	// Card identifier: GSC-RID A000000116, manufacturer FF (issuer
	// assigned), card type 02 (Java Card), 14-byte card id from the GUID.
	id := append([]byte{0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02}, guid[:14]...)
	return tlvs(
		apdu.TLV(0xF0, id),
		apdu.TLV(0xF1, []byte{0x21}),
		apdu.TLV(0xF2, []byte{0x21}),
		apdu.TLV(0xF3, nil),
		apdu.TLV(0xF4, []byte{0x00}),
		apdu.TLV(0xF5, []byte{0x10}),
		apdu.TLV(0xF6, nil),
		apdu.TLV(0xF7, nil),
		apdu.TLV(0xFA, nil),
		apdu.TLV(0xFB, nil),
		apdu.TLV(0xFC, nil),
		apdu.TLV(0xFD, nil),
		apdu.TLV(0xFE, nil),
	)
}

func checkCCC(v []byte) error {
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return err
	}
	id, ok := apdu.Find(items, 0xF0)
	if !ok || (len(id) != 21 && len(id) != 0) {
		return errors.New("card identifier (tag F0) missing or not 21 bytes")
	}
	if m, ok := apdu.Find(items, 0xF5); !ok || len(m) != 1 || m[0] != 0x10 {
		return errors.New("registered data model number (tag F5) is not 10")
	}
	if _, ok := apdu.Find(items, 0xFE); !ok {
		return errors.New("error detection code (tag FE) missing")
	}
	return nil
}

// printedInfo mirrors the card face (SP 800-73-4 part 1 table 13). The
// standard asks for ASCII, so Swedish and Polish letters are folded.
type printedInfo struct {
	Name, Affiliation, Expiry, CardNumber, Issuer, OrgNumber string
}

func newPrintedInfo(d CardData, issuer string) printedInfo {
	name := d.PrintName
	if strings.TrimSpace(name) == "" {
		name = d.HolderName
	}
	return printedInfo{
		Name:        asciiField(name, 125),
		Affiliation: asciiField(d.Company, 20),
		Expiry:      strings.ToUpper(d.ValidUntil.Format("2006Jan02")),
		CardNumber:  asciiField(d.CardNumber, 20),
		Issuer:      asciiField(issuer, 15),
		OrgNumber:   asciiField(d.OrgNumber, 20),
	}
}

func (p printedInfo) encode() []byte {
	b := tlvs(
		apdu.TLV(0x01, []byte(p.Name)),
		apdu.TLV(0x02, []byte(p.Affiliation)),
		apdu.TLV(0x04, []byte(p.Expiry)),
		apdu.TLV(0x05, []byte(p.CardNumber)),
		apdu.TLV(0x06, []byte(p.Issuer)),
	)
	if p.OrgNumber != "" {
		b = append(b, apdu.TLV(0x07, []byte(p.OrgNumber))...)
	}
	return append(b, apdu.TLV(0xFE, nil)...)
}

func parsePrintedInfo(v []byte) (printedInfo, error) {
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return printedInfo{}, err
	}
	var p printedInfo
	for _, f := range []struct {
		tag uint
		dst *string
		max int
	}{{0x01, &p.Name, 125}, {0x02, &p.Affiliation, 20}, {0x04, &p.Expiry, 9}, {0x05, &p.CardNumber, 20}, {0x06, &p.Issuer, 15}} {
		val, ok := apdu.Find(items, f.tag)
		if !ok {
			return printedInfo{}, fmt.Errorf("tag %02X missing", f.tag)
		}
		if len(val) > f.max {
			return printedInfo{}, fmt.Errorf("tag %02X is %d bytes, at most %d allowed", f.tag, len(val), f.max)
		}
		*f.dst = string(val)
	}
	if org, ok := apdu.Find(items, 0x07); ok {
		p.OrgNumber = string(org)
	}
	if _, err := time.Parse("2006Jan02", titleMonth(p.Expiry)); err != nil {
		return printedInfo{}, fmt.Errorf("expiration date %q is not YYYYMMMDD", p.Expiry)
	}
	return p, nil
}

// titleMonth turns 2027NOV23 into 2027Nov23 for time.Parse.
func titleMonth(s string) string {
	if len(s) != 9 {
		return s
	}
	return s[:5] + strings.ToLower(s[5:7]) + s[7:]
}

// asciiField folds the letters of Swedish, Finnish, Norwegian, Danish,
// German, Polish and the Baltic languages to ASCII (Å→A, ł→l), drops other
// non-printable or non-ASCII runes and truncates to max bytes.
func asciiField(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x20 && r < 0x7F:
			b.WriteRune(r)
		case foldASCII[r] != "":
			b.WriteString(foldASCII[r])
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.TrimSpace(out)
}

var foldASCII = func() map[rune]string {
	m := map[rune]string{'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Œ': "OE", 'œ': "oe", 'Þ': "TH", 'þ': "th", 'Ð': "D", 'ð': "d"}
	for base, letters := range map[string]string{
		"A": "ÀÁÂÃÄÅĀĄĂ", "a": "àáâãäåāąă", "C": "ÇĆČ", "c": "çćč", "D": "Ď", "d": "ď",
		"E": "ÈÉÊËĒĘĚĖ", "e": "èéêëēęěė", "G": "Ģ", "g": "ģ", "I": "ÌÍÎÏĪĮ", "i": "ìíîïīį",
		"K": "Ķ", "k": "ķ", "L": "ŁĻĹĽ", "l": "łļĺľ", "N": "ÑŃŇŅ", "n": "ñńňņ",
		"O": "ÒÓÔÕÖØŌŐ", "o": "òóôõöøōő", "R": "ŘŔ", "r": "řŕ", "S": "ŚŠŞ", "s": "śšş",
		"T": "ŤŢ", "t": "ťţ", "U": "ÙÚÛÜŪŮŰŲ", "u": "ùúûüūůűų", "Y": "ÝŸ", "y": "ýÿ",
		"Z": "ŹŻŽ", "z": "źżž",
	} {
		for _, r := range letters {
			m[r] = base
		}
	}
	return m
}()

// --- facial image: CBEFF (SP 800-76-2, PIV patron format) + ISO/IEC 19794-5 ---

const cbeffHeaderLen = 88

// facialRecord wraps a JPEG in an ISO/IEC 19794-5:2005 facial record with
// one full-frontal image.
func facialRecord(jpg []byte) ([]byte, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
	if err != nil {
		return nil, fmt.Errorf("facial image is not a JPEG: %w: %w", err, ErrCardData)
	}
	if cfg.Width > 0xFFFF || cfg.Height > 0xFFFF {
		return nil, fmt.Errorf("facial image %dx%d is too large", cfg.Width, cfg.Height)
	}
	const headerLen, infoLen, imageInfoLen = 14, 20, 12
	total := headerLen + infoLen + imageInfoLen + len(jpg)
	b := make([]byte, 0, total)
	b = append(b, 'F', 'A', 'C', 0, '0', '1', '0', 0)
	b = binary.BigEndian.AppendUint32(b, uint32(total))
	b = binary.BigEndian.AppendUint16(b, 1) // number of facial images
	// Facial information block.
	b = binary.BigEndian.AppendUint32(b, uint32(infoLen+imageInfoLen+len(jpg)))
	b = binary.BigEndian.AppendUint16(b, 0) // feature points
	b = append(b, 0, 0, 0)                  // gender, eye colour, hair colour: unspecified
	b = append(b, 0, 0, 0)                  // feature mask
	b = append(b, 0, 0)                     // expression unspecified
	b = append(b, 0, 0, 0)                  // pose angle
	b = append(b, 0, 0, 0)                  // pose angle uncertainty
	// Image information block.
	b = append(b, 0x01, 0x00) // full frontal; JPEG
	b = binary.BigEndian.AppendUint16(b, uint16(cfg.Width))
	b = binary.BigEndian.AppendUint16(b, uint16(cfg.Height))
	colour := byte(0x01) // 24-bit RGB
	if cfg.ColorModel == color.GrayModel {
		colour = 0x03
	}
	b = append(b, colour, 0x02) // colour space; source: static photo, unknown source
	b = append(b, 0, 0, 0, 0)   // device type, quality
	return append(b, jpg...), nil
}

// parseFacialRecord returns the JPEG inside an ISO/IEC 19794-5 record.
func parseFacialRecord(b []byte) ([]byte, error) {
	if len(b) < 46 || !bytes.Equal(b[:8], []byte{'F', 'A', 'C', 0, '0', '1', '0', 0}) {
		return nil, errors.New("not an ISO/IEC 19794-5 facial record (FAC 010)")
	}
	if int(binary.BigEndian.Uint32(b[8:])) != len(b) {
		return nil, errors.New("facial record length does not match")
	}
	if binary.BigEndian.Uint16(b[12:]) != 1 {
		return nil, errors.New("facial record must hold exactly one image")
	}
	if b[34+1] != 0x00 {
		return nil, errors.New("facial image data type is not JPEG")
	}
	jpg := b[46:]
	if _, err := jpeg.DecodeConfig(bytes.NewReader(jpg)); err != nil {
		return nil, fmt.Errorf("facial image: %w", err)
	}
	return jpg, nil
}

func cbeffDate(t time.Time) []byte {
	t = t.UTC()
	return []byte{byte(t.Year() / 100), byte(t.Year() % 100), byte(t.Month()), byte(t.Day()),
		byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 'Z'}
}

func cbeffHeader(bdbLen, sbLen int, fasc []byte, created, until time.Time) []byte {
	h := make([]byte, 0, cbeffHeaderLen)
	h = append(h, 0x03, 0x0D) // patron header version 3; signed, not encrypted
	h = binary.BigEndian.AppendUint32(h, uint32(bdbLen))
	h = binary.BigEndian.AppendUint16(h, uint16(sbLen))
	h = binary.BigEndian.AppendUint16(h, 0x001B) // format owner INCITS M1
	h = binary.BigEndian.AppendUint16(h, 0x0501) // face image
	h = append(h, cbeffDate(created)...)
	h = append(h, cbeffDate(created)...)
	h = append(h, cbeffDate(until)...)
	h = append(h, 0x00, 0x00, 0x02) // biometric type: face
	h = append(h, 0x20)             // raw
	h = append(h, 0xFE)             // quality: not computed (-2)
	creator := make([]byte, 18)     // NUL-terminated, NUL-padded
	copy(creator, asciiField("ID06 station", 17))
	h = append(h, creator...)
	h = append(h, fasc...)
	return append(h, 0, 0, 0, 0) // reserved
}

// buildFacial returns the Facial Image container value: BC holds the CBEFF
// header, the facial record and the CMS signature over header + record.
// The signature's length is part of the signed header, so sign until the
// guessed length is the actual one (ECDSA DER length varies by a byte).
func buildFacial(s signer, jpg []byte, fasc []byte, guid [16]byte, created, until time.Time) ([]byte, error) {
	bdb, err := facialRecord(jpg)
	if err != nil {
		return nil, err
	}
	// SP 800-76-2 signed attributes: pivFASC-N, and entryUUID because a PIV-I FASC-N
	// (9999…) does not identify the card.
	attrs := []pkcs7Attr{{oidPIVFASCN, fasc}, {oidEntryUUID, guid[:]}}
	sbLen := 0
	for range 64 {
		hdr := cbeffHeader(len(bdb), sbLen, fasc, created, until)
		sig, err := s.signDetached(append(hdr, bdb...), oidPIVBiometricObject, false, attrs)
		if err != nil {
			return nil, fmt.Errorf("sign facial image: %w", err)
		}
		if len(sig) == sbLen {
			bc := bytes.Join([][]byte{hdr, bdb, sig}, nil)
			return tlvs(apdu.TLV(0xBC, bc), apdu.TLV(0xFE, nil)), nil
		}
		sbLen = len(sig)
	}
	return nil, errors.New("sign facial image: signature length does not settle")
}

type facial struct {
	FASCN     []byte
	JPEG      []byte
	Signed    []byte // header + biometric data block
	Signature []byte
}

func parseFacial(v []byte) (facial, error) {
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return facial{}, err
	}
	bc, ok := apdu.Find(items, 0xBC)
	if !ok {
		return facial{}, errors.New("image (tag BC) missing")
	}
	if len(bc) < cbeffHeaderLen || bc[0] != 0x03 {
		return facial{}, errors.New("CBEFF header missing or not patron format version 3")
	}
	bdbLen := int(binary.BigEndian.Uint32(bc[2:]))
	sbLen := int(binary.BigEndian.Uint16(bc[6:]))
	if cbeffHeaderLen+bdbLen+sbLen != len(bc) {
		return facial{}, fmt.Errorf("CBEFF lengths (88+%d+%d) do not add up to %d", bdbLen, sbLen, len(bc))
	}
	if binary.BigEndian.Uint16(bc[10:]) != 0x0501 || bc[38] != 0x02 {
		return facial{}, errors.New("CBEFF header does not describe a face image")
	}
	f := facial{
		FASCN:     bc[59:84],
		Signed:    bc[:cbeffHeaderLen+bdbLen],
		Signature: bc[cbeffHeaderLen+bdbLen:],
	}
	if f.JPEG, err = parseFacialRecord(bc[cbeffHeaderLen : cbeffHeaderLen+bdbLen]); err != nil {
		return facial{}, err
	}
	return f, nil
}

// --- security object (SP 800-73-4 part 1, "Security Object"; ICAO 9303 part 10) ---

type dataGroupHash struct {
	Number int
	Hash   []byte
}

type ldsSecurityObject struct {
	Version       int
	HashAlgorithm pkix.AlgorithmIdentifier
	Hashes        []dataGroupHash
}

// buildSecurityObject hashes each covered container exactly as GET DATA
// returns it (53 L value) and signs the LDS security object.
func buildSecurityObject(s signer, containers map[uint][]byte) ([]byte, error) {
	var mapping []byte
	lds := ldsSecurityObject{}
	lds.HashAlgorithm.Algorithm = oidSHA256
	for _, h := range hashed {
		c, ok := containers[h.Obj.Tag]
		if !ok {
			return nil, fmt.Errorf("security object: %s not built", h.Obj)
		}
		mapping = append(mapping, byte(h.DG), byte(h.Obj.ContainerID>>8), byte(h.Obj.ContainerID))
		lds.Hashes = append(lds.Hashes, dataGroupHash{h.DG, sha256Sum(c)})
	}
	der, err := asn1.Marshal(lds)
	if err != nil {
		return nil, err
	}
	so, err := s.signEmbedded(der, oidLDSSecurityObject)
	if err != nil {
		return nil, fmt.Errorf("sign security object: %w", err)
	}
	return tlvs(apdu.TLV(0xBA, mapping), apdu.TLV(0xBB, so), apdu.TLV(0xFE, nil)), nil
}

type securityObject struct {
	Mapping map[int]uint16 // data group number → container ID
	CMS     []byte
	// Hashes maps container ID to the SHA-256 of the container; filled
	// from the signed content by fillHashes.
	Hashes map[uint16][]byte
}

func parseSecurityObject(v []byte) (securityObject, error) {
	items, err := apdu.ParseTLV(v)
	if err != nil {
		return securityObject{}, err
	}
	mapping, ok := apdu.Find(items, 0xBA)
	if !ok || len(mapping)%3 != 0 || len(mapping) == 0 {
		return securityObject{}, errors.New("DG mapping (tag BA) missing or malformed")
	}
	so := securityObject{Mapping: map[int]uint16{}, Hashes: map[uint16][]byte{}}
	if so.CMS, ok = apdu.Find(items, 0xBB); !ok {
		return securityObject{}, errors.New("LDS security object (tag BB) missing")
	}
	for i := 0; i < len(mapping); i += 3 {
		so.Mapping[int(mapping[i])] = binary.BigEndian.Uint16(mapping[i+1:])
	}
	return so, nil
}

// fillHashes decodes the signed LDS security object content into so.Hashes.
func (so *securityObject) fillHashes(content []byte) error {
	var lds ldsSecurityObject
	rest, err := asn1.Unmarshal(content, &lds)
	if err != nil {
		return fmt.Errorf("LDS security object is not valid DER: %w", err)
	}
	if len(rest) != 0 {
		return errors.New("LDS security object has trailing bytes")
	}
	if !lds.HashAlgorithm.Algorithm.Equal(oidSHA256) {
		return fmt.Errorf("hash algorithm %v is not SHA-256", lds.HashAlgorithm.Algorithm)
	}
	for _, h := range lds.Hashes {
		cid, ok := so.Mapping[h.Number]
		if !ok {
			return fmt.Errorf("data group %d has no container in the mapping", h.Number)
		}
		so.Hashes[cid] = h.Hash
	}
	return nil
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
