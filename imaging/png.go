package imaging

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"io"
)

// pngChunks walks the chunks of a PNG after its signature, checks every
// CRC, and requires IHDR first and IEND last: a cut-off or damaged file
// fails here, before any pixel is inflated. fn sees every chunk but IEND.
func pngChunks(data []byte, fn func(typ string, body []byte) error) error {
	i := 8
	for n := 0; ; n++ {
		if i+12 > len(data) {
			return errors.New("the file ends before the PNG end marker (IEND)")
		}
		size := int64(binary.BigEndian.Uint32(data[i:]))
		if size > int64(len(data)-i-12) {
			return errors.New("the file ends inside a PNG chunk")
		}
		typ := data[i+4 : i+8]
		end := i + 8 + int(size)
		if crc32.ChecksumIEEE(data[i+4:end]) != binary.BigEndian.Uint32(data[end:]) {
			return fmt.Errorf("the PNG chunk %q has a wrong checksum", typ)
		}
		switch {
		case n == 0 && string(typ) != "IHDR":
			return errors.New("the PNG file does not start with its image header")
		case string(typ) == "IEND":
			return nil
		}
		if fn != nil {
			if err := fn(string(typ), data[i+8:end]); err != nil {
				return err
			}
		}
		i = end + 4
	}
}

// pngInfo is what the decoder needs from the chunks before the pixels.
type pngInfo struct {
	w, h       int
	depth      int // bits per sample
	colorType  int
	interlaced bool
	palette    [][3]uint8
	alpha      []uint8 // tRNS for palettes
	transKey   []uint16
	idat       [][]byte
}

// channels per colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA).
var pngChannels = map[int]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

func readPNGInfo(data []byte) (*pngInfo, error) {
	p := &pngInfo{}
	err := pngChunks(data, func(typ string, b []byte) error {
		switch typ {
		case "IHDR":
			if len(b) != 13 {
				return errors.New("bad PNG header")
			}
			p.w, p.h = int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
			p.depth, p.colorType, p.interlaced = int(b[8]), int(b[9]), b[12] == 1
			if b[10] != 0 || b[11] != 0 || b[12] > 1 {
				return errors.New("unsupported PNG compression, filter or interlace method")
			}
			if !validPNGDepth(p.colorType, p.depth) {
				return fmt.Errorf("unsupported PNG colour type %d at %d bits", p.colorType, p.depth)
			}
		case "PLTE":
			if len(b)%3 != 0 || len(b) > 3*256 {
				return errors.New("bad PNG palette")
			}
			for j := 0; j < len(b); j += 3 {
				p.palette = append(p.palette, [3]uint8{b[j], b[j+1], b[j+2]})
			}
		case "tRNS":
			switch p.colorType {
			case 3:
				p.alpha = b
			case 0, 2:
				for j := 0; j+1 < len(b); j += 2 {
					p.transKey = append(p.transKey, binary.BigEndian.Uint16(b[j:]))
				}
			}
		case "IDAT":
			p.idat = append(p.idat, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.w <= 0 || p.h <= 0 || len(p.idat) == 0 || (p.colorType == 3 && len(p.palette) == 0) {
		return nil, errors.New("the PNG file has no image data")
	}
	return p, nil
}

func validPNGDepth(ct, d int) bool {
	switch ct {
	case 0:
		return d == 1 || d == 2 || d == 4 || d == 8 || d == 16
	case 3:
		return d == 1 || d == 2 || d == 4 || d == 8
	case 2, 4, 6:
		return d == 8 || d == 16
	}
	return false
}

// adam7 are the interlace passes: first pixel and spacing in x and y.
var adam7 = [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}

// decodePNG decodes region r (stored coordinates at 1/denom) of a PNG by
// inflating and unfiltering one row at a time into a box reduction: two
// rows of the image and the returned raster are all it holds, so a
// 50-megapixel 16-bit PNG (400 MB as image.NRGBA64) costs a few MB.
func decodePNG(data []byte, denom int, r image.Rectangle) (*rgb, error) {
	p, err := readPNGInfo(data)
	if err != nil {
		return nil, err
	}
	readers := make([]io.Reader, len(p.idat))
	for i, b := range p.idat {
		readers[i] = bytes.NewReader(b)
	}
	z, err := zlib.NewReader(io.MultiReader(readers...))
	if err != nil {
		return nil, fmt.Errorf("PNG image data: %w", err)
	}
	defer z.Close()
	red := newReducer(p.w, p.h, denom, r)
	bitsPP := p.depth * pngChannels[p.colorType]
	bpp := max(1, bitsPP/8) // filter distance in bytes
	passes := [][4]int{{0, 0, 1, 1}}
	if p.interlaced {
		passes = adam7[:]
	}
	cur := make([]uint8, 1+(bitsPP*p.w+7)/8)
	prev := make([]uint8, len(cur))
	out := make([]uint8, 3*p.w)
	for _, ps := range passes {
		pw, ph := (p.w-ps[0]+ps[2]-1)/ps[2], (p.h-ps[1]+ps[3]-1)/ps[3]
		if pw <= 0 || ph <= 0 {
			continue
		}
		n := 1 + (bitsPP*pw+7)/8
		clear(prev[:n])
		for j := 0; j < ph; j++ {
			if _, err := io.ReadFull(z, cur[:n]); err != nil {
				return nil, fmt.Errorf("PNG image data ends early: %w", err)
			}
			if err := unfilter(cur[:n], prev[:n], bpp); err != nil {
				return nil, err
			}
			y := ps[1] + j*ps[3]
			if red.wantRow(y) {
				p.toRGB(cur[1:n], pw, out)
				red.add(y, out[:3*pw], ps[0], ps[2])
			}
			cur, prev = prev, cur
		}
	}
	// Reading on to the end makes zlib check its Adler-32 of the pixels.
	if n, err := z.Read(cur[:1]); n > 0 || err != io.EOF {
		return nil, fmt.Errorf("PNG image data does not end with the image (%d more bytes, %v)", n, err)
	}
	return red.result(), nil
}

// unfilter undoes the PNG row filter in place; row[0] is the filter type.
func unfilter(row, prev []uint8, bpp int) error {
	cdat, pdat := row[1:], prev[1:]
	switch row[0] {
	case 0:
	case 1:
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += cdat[i-bpp]
		}
	case 2:
		// Eight bytes at a time, without carries between them.
		const hi = 0x8080808080808080
		i := 0
		for ; i+8 <= len(cdat); i += 8 {
			a, b := binary.LittleEndian.Uint64(cdat[i:]), binary.LittleEndian.Uint64(pdat[i:])
			binary.LittleEndian.PutUint64(cdat[i:], ((a&^hi)+(b&^hi))^((a^b)&hi))
		}
		for ; i < len(cdat); i++ {
			cdat[i] += pdat[i]
		}
	case 3:
		for i := 0; i < bpp && i < len(cdat); i++ {
			cdat[i] += pdat[i] / 2
		}
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += uint8((int(cdat[i-bpp]) + int(pdat[i])) / 2)
		}
	case 4:
		for i := range cdat {
			var a, c int
			if i >= bpp {
				a, c = int(cdat[i-bpp]), int(pdat[i-bpp])
			}
			b := int(pdat[i])
			pa, pb, pc := absInt(b-c), absInt(a-c), absInt(a+b-2*c)
			switch {
			case pa <= pb && pa <= pc:
				cdat[i] += uint8(a)
			case pb <= pc:
				cdat[i] += uint8(b)
			default:
				cdat[i] += uint8(c)
			}
		}
	default:
		return fmt.Errorf("bad PNG filter type %d", row[0])
	}
	return nil
}

// toRGB converts n unfiltered pixels to RGB, compositing transparency
// over white at 16-bit precision as color.NRGBA64's premultiplied RGBA()
// does (8-bit results within 1 of the Go decoder's path).
func (p *pngInfo) toRGB(src []uint8, n int, dst []uint8) {
	ch := pngChannels[p.colorType]
	if p.transKey == nil && p.fastRGB(src, n, dst) {
		return
	}
	for x := 0; x < n; x++ {
		var c [4]uint32 // 16-bit R, G, B, A
		switch p.colorType {
		case 3:
			c[3] = 0xFFFF // an index beyond the palette is opaque black, as in image/png
			if idx := int(p.sample(src, x)); idx < len(p.palette) {
				pc := p.palette[idx]
				c[0], c[1], c[2] = uint32(pc[0])*0x101, uint32(pc[1])*0x101, uint32(pc[2])*0x101
				if idx < len(p.alpha) {
					c[3] = uint32(p.alpha[idx]) * 0x101
				}
			}
		case 0, 4:
			v := p.sample(src, x*ch)
			c[0] = p.wide(v)
			c[1], c[2], c[3] = c[0], c[0], 0xFFFF
			if ch == 2 {
				c[3] = p.wide(p.sample(src, x*ch+1))
			} else if len(p.transKey) == 1 && p.transKey[0] == v {
				c[3] = 0
			}
		case 2, 6:
			var raw [3]uint16
			for k := range raw {
				raw[k] = p.sample(src, x*ch+k)
				c[k] = p.wide(raw[k])
			}
			c[3] = 0xFFFF
			if ch == 4 {
				c[3] = p.wide(p.sample(src, x*ch+3))
			} else if len(p.transKey) == 3 && raw == [3]uint16(p.transKey) {
				c[3] = 0
			}
		}
		a := c[3]
		for k := 0; k < 3; k++ {
			dst[3*x+k] = uint8((c[k]*a/0xFFFF + 0xFFFF - a) >> 8)
		}
	}
}

// fastRGB converts the common layouts without transparency keys directly
// (the same arithmetic as the general loop of toRGB) and reports whether it did.
func (p *pngInfo) fastRGB(src []uint8, n int, dst []uint8) bool {
	switch {
	case p.depth == 8 && p.colorType == 2:
		copy(dst, src[:3*n])
	case p.depth == 8 && p.colorType == 0:
		for x, v := range src[:n] {
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	case p.depth == 8 && p.colorType == 6:
		for x := 0; x < n; x++ {
			s, d := src[4*x:4*x+4:4*x+4], dst[3*x:3*x+3:3*x+3]
			a := uint32(s[3]) * 0x101
			for k := 0; k < 3; k++ {
				d[k] = uint8((uint32(s[k])*0x101*a/0xFFFF + 0xFFFF - a) >> 8)
			}
		}
	case p.depth == 16 && (p.colorType == 2 || p.colorType == 6):
		ch := pngChannels[p.colorType]
		for x := 0; x < n; x++ {
			s, d := src[2*ch*x:2*ch*(x+1)], dst[3*x:3*x+3:3*x+3]
			a := uint32(0xFFFF)
			if ch == 4 {
				a = uint32(s[6])<<8 | uint32(s[7])
			}
			if a == 0xFFFF { // opaque: the high bytes
				d[0], d[1], d[2] = s[0], s[2], s[4]
				continue
			}
			for k := 0; k < 3; k++ {
				v := uint32(s[2*k])<<8 | uint32(s[2*k+1])
				d[k] = uint8((v*a/0xFFFF + 0xFFFF - a) >> 8)
			}
		}
	default:
		return false
	}
	return true
}

// sample returns the i-th sample of a row at the image's bit depth.
func (p *pngInfo) sample(src []uint8, i int) uint16 {
	switch p.depth {
	case 16:
		return binary.BigEndian.Uint16(src[2*i:])
	case 8:
		return uint16(src[i])
	}
	perByte := 8 / p.depth
	shift := uint(8 - p.depth*(1+i%perByte))
	return uint16(src[i/perByte]>>shift) & (1<<p.depth - 1)
}

// wide scales a sample to 16 bits.
func (p *pngInfo) wide(v uint16) uint32 {
	switch p.depth {
	case 16:
		return uint32(v)
	case 8:
		return uint32(v) * 0x101
	}
	return uint32(v) * 0xFFFF / (1<<p.depth - 1)
}
