//go:build cgo

package imaging

/*
#cgo pkg-config: libturbojpeg
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

// decode wraps the TurboJPEG calls so that one cgo call does the whole job.
// Warnings (for example a truncated file) are accepted: the decoder has
// filled the rest of the image, and the checks judge what is there.
static int decode(const unsigned char *buf, unsigned long size, unsigned char *dst,
                  int want_w, int want_h, int num, int denom, char *err, int errlen) {
	tjhandle h = tjInitDecompress();
	if (!h) { snprintf(err, errlen, "%s", tjGetErrorStr2(NULL)); return -1; }
	int w, ht, subsamp, cs;
	if (tjDecompressHeader3(h, buf, size, &w, &ht, &subsamp, &cs) != 0) {
		snprintf(err, errlen, "%s", tjGetErrorStr2(h)); tjDestroy(h); return -1;
	}
	tjscalingfactor sf = {num, denom};
	if (TJSCALED(w, sf) != want_w || TJSCALED(ht, sf) != want_h) {
		snprintf(err, errlen, "header size changed"); tjDestroy(h); return -1;
	}
	int rc = tjDecompress2(h, buf, size, dst, want_w, want_w * 3, want_h, TJPF_RGB, TJFLAG_LIMITSCANS);
	if (rc != 0 && tjGetErrorCode(h) != TJERR_WARNING) {
		snprintf(err, errlen, "%s", tjGetErrorStr2(h)); tjDestroy(h); return -1;
	}
	tjDestroy(h);
	return 0;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

const turboAvailable = true

func turboDecode(data []byte, denom int) (*rgb, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty JPEG")
	}
	h, err := parseJPEGHeader(data)
	if err != nil {
		return nil, err
	}
	w, ht := scaledSize(h.w, h.h, denom)
	m := newRGB(w, ht)
	var errBuf [200]C.char
	rc := C.decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&m.pix[0])), C.int(w), C.int(ht), 1, C.int(denom),
		&errBuf[0], C.int(len(errBuf)))
	if rc != 0 {
		return nil, fmt.Errorf("decoding JPEG: %s", C.GoString(&errBuf[0]))
	}
	return m, nil
}
