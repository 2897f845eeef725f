package imaging

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// Generators for decompression bombs: images of one colour, tens of
// megapixels in a few hundred kilobytes, written row by row so that the
// test never holds the decoded image itself.

// uniformPNG16 is a w x h PNG, 16 bits per RGBA sample, every pixel c.
func uniformPNG16(w, h int, c [4]uint16) []byte {
	var idat bytes.Buffer
	z, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, 1+8*w)
	for x := 0; x < w; x++ {
		for k, v := range c {
			binary.BigEndian.PutUint16(row[1+8*x+2*k:], v)
		}
	}
	z.Write(row)
	clear(row) // filter "up" with zero differences: every further row is zeros
	row[0] = 2
	for y := 1; y < h; y++ {
		z.Write(row)
	}
	z.Close()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	out := append([]byte{}, pngSignature...)
	out = appendChunk(out, "IHDR", ihdr)
	out = appendChunk(out, "IDAT", idat.Bytes())
	return appendChunk(out, "IEND", nil)
}

func appendChunk(out []byte, typ string, body []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	start := len(out)
	out = append(out, typ...)
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}

// jpegSpec describes a JPEG of one level in every component.
type jpegSpec struct {
	w, h        int
	sampling    [][2]int // per component; 4 components are Adobe CMYK
	progressive bool
	level       int // 0..255
}

// uniformJPEG writes the JPEG: quantisation 1, one DC difference for the
// first block of each component and nothing else, so each further block is
// two bits (baseline) or a share of an end-of-band run (progressive).
func uniformJPEG(s jpegSpec) []byte {
	nc := len(s.sampling)
	out := []byte{0xFF, 0xD8}
	seg := func(m byte, body []byte) {
		out = append(out, 0xFF, m)
		out = binary.BigEndian.AppendUint16(out, uint16(len(body)+2))
		out = append(out, body...)
	}
	if nc == 4 {
		seg(0xEE, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}) // transform 0: CMYK
	}
	dqt := make([]byte, 65)
	for i := 1; i < 65; i++ {
		dqt[i] = 1
	}
	seg(0xDB, dqt)
	hmax, vmax := 1, 1
	sof := []byte{8}
	sof = binary.BigEndian.AppendUint16(sof, uint16(s.h))
	sof = binary.BigEndian.AppendUint16(sof, uint16(s.w))
	sof = append(sof, byte(nc))
	for c, hv := range s.sampling {
		sof = append(sof, byte(c+1), byte(hv[0]<<4|hv[1]), 0)
		hmax, vmax = max(hmax, hv[0]), max(vmax, hv[1])
	}
	sofMarker := byte(0xC0)
	if s.progressive {
		sofMarker = 0xC2
	}
	seg(sofMarker, sof)
	dc := 8 * (s.level - 128) // DC coefficient of a flat block
	cat := bits.Len(uint(absInt(dc)))
	// DC table: '0' = difference 0, '10' = the first block's category.
	dht := []byte{0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if cat > 0 {
		dht[2] = 1
		dht = append(dht, byte(cat))
	}
	if s.progressive { // AC: end-of-band runs EOB0..EOB14, all 4-bit codes
		dht = append(dht, 0x10, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		for r := 0; r < 15; r++ {
			dht = append(dht, byte(r<<4))
		}
	} else { // AC: only end of block, '0'
		dht = append(dht, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00)
	}
	seg(0xC4, dht)
	mcuX, mcuY := (s.w+8*hmax-1)/(8*hmax), (s.h+8*vmax-1)/(8*vmax)
	scan := func(comps []int, ss, se byte, body func(bw *bitWriter)) {
		hdr := []byte{byte(len(comps))}
		for _, c := range comps {
			hdr = append(hdr, byte(c+1), 0x00)
		}
		seg(0xDA, append(hdr, ss, se, 0))
		bw := &bitWriter{out: out}
		body(bw)
		out = bw.flush()
	}
	dcBlock := func(bw *bitWriter, first bool) {
		if !first || cat == 0 {
			bw.put(0, 1)
			return
		}
		bw.put(0b10, 2)
		v := dc
		if v < 0 {
			v += 1<<cat - 1
		}
		bw.put(uint32(v), cat)
	}
	all := make([]int, nc)
	for c := range all {
		all[c] = c
	}
	scan(all, 0, map[bool]byte{false: 63, true: 0}[s.progressive], func(bw *bitWriter) {
		for m := 0; m < mcuX*mcuY; m++ {
			for _, hv := range s.sampling {
				for b := 0; b < hv[0]*hv[1]; b++ {
					dcBlock(bw, m == 0 && b == 0)
					if !s.progressive {
						bw.put(0, 1) // end of block
					}
				}
			}
		}
	})
	if s.progressive {
		for c, hv := range s.sampling {
			bw := ((s.w*hv[0]+hmax-1)/hmax + 7) / 8
			bh := ((s.h*hv[1]+vmax-1)/vmax + 7) / 8
			scan([]int{c}, 1, 63, func(w *bitWriter) {
				for n := bw * bh; n > 0; {
					r := min(n, 32767)
					e := bits.Len(uint(r)) - 1
					w.put(uint32(e), 4)
					w.put(uint32(r-1<<e), e)
					n -= r
				}
			})
		}
	}
	return append(out, 0xFF, 0xD9)
}

// bitWriter packs entropy-coded bits MSB first with JPEG byte stuffing.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc int
}

func (b *bitWriter) put(v uint32, n int) {
	b.acc = b.acc<<n | uint64(v)&(1<<n-1)
	b.nacc += n
	for b.nacc >= 8 {
		c := byte(b.acc >> (b.nacc - 8))
		b.out = append(b.out, c)
		if c == 0xFF {
			b.out = append(b.out, 0)
		}
		b.nacc -= 8
	}
}

// flush pads the last byte with ones, as the standard asks.
func (b *bitWriter) flush() []byte {
	if b.nacc > 0 {
		b.put(1<<(8-b.nacc)-1, 8-b.nacc)
	}
	return b.out
}
