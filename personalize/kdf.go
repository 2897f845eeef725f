package personalize

import (
	"encoding/binary"
	"errors"
)

// kdfCounter is the key derivation function in counter mode of NIST SP
// 800-108r1 §4.1 with HMAC-SHA256 as the PRF and a 32-bit counter:
//
//	K(i) = PRF(KI, [i]32 || Label || 0x00 || Context || [L]32), i = 1, 2, …
//
// and the output is the first L bits of K(1) || K(2) || …. The PRF keeps
// KI, so the key may stay inside a PKCS#11 token.
func kdfCounter(prf PRF, label, context []byte, n int) ([]byte, error) {
	if n <= 0 || n > 1<<29 {
		return nil, errors.New("kdf: bad output length")
	}
	fixed := make([]byte, 0, len(label)+1+len(context)+4)
	fixed = append(fixed, label...)
	fixed = append(fixed, 0x00)
	fixed = append(fixed, context...)
	fixed = binary.BigEndian.AppendUint32(fixed, uint32(n*8))
	var out []byte
	for i := uint32(1); len(out) < n; i++ {
		k, err := prf(append(binary.BigEndian.AppendUint32(nil, i), fixed...))
		if err != nil {
			return nil, err
		}
		out = append(out, k...)
	}
	return out[:n], nil
}
