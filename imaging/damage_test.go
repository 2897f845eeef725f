package imaging

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// damaged returns the cases of issue 12 for one photo: the file cut at
// 50, 70, 90 and 99%.
func truncations(data []byte) map[string][]byte {
	out := map[string][]byte{}
	for _, pct := range []int{50, 70, 90, 99} {
		out[fmt.Sprintf("cut at %d%%", pct)] = data[:len(data)*pct/100]
	}
	return out
}

// TestTruncatedPhotoRefused: a cut-off upload used to be accepted and
// printed with a grey block from the cut down (or came back no_face). It
// must be refused at intake as incomplete, be unreadable_image in the
// stage, and every decoder path must report it on its own.
func TestTruncatedPhotoRefused(t *testing.T) {
	jpg := readPhoto(t, "dev/pass_london_010_03.jpg")
	pngData := encodePNG(t, toRGBA(decodeAll(t, jpg)))
	for format, good := range map[string][]byte{"jpeg": jpg, "png": pngData} {
		h, herr := parseHeader(good)
		if herr != nil {
			t.Fatal(herr)
		}
		for name, data := range truncations(good) {
			t.Run(format+" "+name, func(t *testing.T) {
				wantIncomplete(t, CheckPhotoHeader(data))
				wantUnreadable(t, CheckPhoto(data))
				// The decoders must see it too (files stored before intake
				// checked, and the second line of defence).
				for path, err := range decodePaths(data, h) {
					if err == nil {
						t.Errorf("%s decoder accepts the cut file", path)
					}
				}
			})
		}
	}
}

// decodePaths decodes data with every decoder its format has, with the
// header of the intact file (as if the structure check had passed).
func decodePaths(data []byte, h header) map[string]error {
	out := map[string]error{}
	if h.format == formatPNG {
		_, out["png"] = decodeScaled(data, h, 1)
		return out
	}
	_, out["image/jpeg"] = decodeGo(data, h, 2)
	if turboAvailable {
		_, out["libjpeg"] = decodeScaled(data, h, 2)
	}
	return out
}

func wantIncomplete(t *testing.T, err error) {
	t.Helper()
	var he *HeaderError
	if !errors.As(err, &he) || he.Code != CodeUnreadable || !strings.HasPrefix(he.Message, "the file is incomplete or damaged") {
		t.Errorf("intake: %v, want unreadable_image, the file is incomplete or damaged", err)
	}
}

func wantUnreadable(t *testing.T, res *Result) {
	t.Helper()
	if res.Verdict != VerdictUnreadable || len(res.Reasons) != 1 || res.Reasons[0].Code != CodeUnreadable || res.Portrait != nil {
		t.Errorf("stage: %s %v, want unreadable_image without a portrait", res.Verdict, res.Reasons)
	}
}

// TestCorruptButCompletePhoto: a JPEG with a damaged entropy segment keeps
// its structure (JPEG has no checksum), so intake cannot see it without
// decoding and accepts it. The stage then refuses it as unreadable_image
// when the decoder notices: libjpeg warns on about a third of single-byte
// changes and image/jpeg errs on about a fifth (measured over 550 flips in
// four portraits); a change no decoder notices decodes to a few wrong
// blocks and is judged like any other content. A PNG carries CRCs, so a
// changed byte is refused at intake.
func TestCorruptButCompletePhoto(t *testing.T) {
	jpg := readPhoto(t, "dev/pass_london_010_03.jpg")
	flipped := append([]byte{}, jpg...)
	flipped[len(flipped)/2+40] ^= 0x01 // a bad Huffman code for both decoders
	if err := CheckPhotoHeader(flipped); err != nil {
		t.Errorf("intake refuses a structurally intact JPEG: %v", err)
	}
	wantUnreadable(t, CheckPhoto(flipped))
	h, _ := parseHeader(jpg)
	for path, err := range decodePaths(flipped, h) {
		if err == nil {
			t.Errorf("%s decoder accepts the damaged entropy data", path)
		}
	}

	pngData := encodePNG(t, toRGBA(decodeAll(t, jpg)))
	pngFlipped := append([]byte{}, pngData...)
	pngFlipped[len(pngFlipped)/2] ^= 0x01
	wantIncomplete(t, CheckPhotoHeader(pngFlipped))
	wantUnreadable(t, CheckPhoto(pngFlipped))
}

// TestCutAndClosedFiles covers damage that keeps a well-formed outer
// structure, which intake accepts and the stage's decoders must catch: a
// JPEG cut and closed with an end marker (what "repair" tools do), and a
// PNG whose pixel data is short although every chunk's CRC is right.
func TestCutAndClosedFiles(t *testing.T) {
	jpg := readPhoto(t, "dev/pass_london_010_03.jpg")
	closed := append(append([]byte{}, jpg[:len(jpg)*7/10]...), 0xFF, 0xD9)
	src := decodeAll(t, jpg)
	var short bytes.Buffer
	z := zlib.NewWriter(&short)
	row := make([]byte, 1+3*src.w)
	for y := 0; y < src.h/2; y++ {
		copy(row[1:], src.pix[3*y*src.w:3*(y+1)*src.w])
		z.Write(row)
	}
	z.Close()
	ihdr := append(appendUint32s(src.w, src.h), 8, 2, 0, 0, 0)
	shortPNG := appendChunk(appendChunk(appendChunk(append([]byte{}, pngSignature...), "IHDR", ihdr), "IDAT", short.Bytes()), "IEND", nil)
	for name, data := range map[string][]byte{"jpeg cut and closed": closed, "png with half its rows": shortPNG} {
		t.Run(name, func(t *testing.T) {
			if err := CheckPhotoHeader(data); err != nil {
				t.Fatalf("intake: %v (the structure is intact)", err)
			}
			wantUnreadable(t, CheckPhoto(data))
			h, _ := parseHeader(data)
			for path, err := range decodePaths(data, h) {
				if err == nil {
					t.Errorf("%s decoder accepts it", path)
				}
			}
		})
	}
}

func appendUint32s(v ...int) []byte {
	var out []byte
	for _, x := range v {
		out = append(out, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return out
}
