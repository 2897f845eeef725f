//go:build cgo

package imaging

/*
#cgo pkg-config: libjpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// Outcomes of decode besides 0 (done).
enum { DEC_ERROR = 1, DEC_DAMAGED = 2, DEC_TOO_LARGE = 3 };

struct dec_err {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	int code;
	char msg[JMSG_LENGTH_MAX];
};

static void dec_fail(j_common_ptr c, int code) {
	struct dec_err *e = (struct dec_err *)c->err;
	(*c->err->format_message)(c, e->msg);
	e->code = code;
	longjmp(e->jb, 1);
}

static void on_error(j_common_ptr c) {
	int m = c->err->msg_code;
	dec_fail(c, m == JERR_NO_BACKING_STORE || m == JERR_OUT_OF_MEMORY ? DEC_TOO_LARGE : DEC_ERROR);
}

// Every libjpeg warning means the decoder filled in or skipped data: a
// truncated file (grey below the cut), a corrupt entropy segment, stray
// bytes. Such a photo must not reach a card, so the first warning stops.
static void on_message(j_common_ptr c, int level) {
	if (level < 0) dec_fail(c, DEC_DAMAGED);
}

// A progressive file with thousands of tiny scans costs minutes of CPU for
// a few kilobytes (TurboJPEG's TJFLAG_LIMITSCANS uses the same bound).
static void on_progress(j_common_ptr c) {
	j_decompress_ptr d = (j_decompress_ptr)c;
	if (d->is_decompressor && d->input_scan_number > 500) {
		struct dec_err *e = (struct dec_err *)c->err;
		snprintf(e->msg, sizeof e->msg, "progressive JPEG with more than 500 scans");
		e->code = DEC_ERROR;
		longjmp(e->jb, 1);
	}
}

// decode reads the JPEG at scale 1/denom and writes the rectangle
// [x0, x0+w) x [y0, y0+h) of the scaled image to dst as RGB (3 bytes per
// pixel, rows of 3*w bytes). CMYK and YCCK files (Adobe inverted, as every
// CMYK JPEG writer stores them) are converted to RGB here. Rows below the
// rectangle are not decoded unless full is set; full also reads to the end
// of the file, so damage anywhere in it is reported. libjpeg allocates at
// most max_mem bytes (its whole-image buffer of a progressive file counts).
static int decode(const unsigned char *buf, unsigned long size, int denom,
                  int x0, int y0, int w, int h, int full_w, int full_h, int full,
                  unsigned char *dst, long max_mem, char *err, int errlen) {
	struct jpeg_decompress_struct d;
	struct dec_err e;
	struct jpeg_progress_mgr prog;
	unsigned char *volatile row = NULL; // volatile: read after longjmp
	memset(&e, 0, sizeof e);
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = on_error;
	e.pub.emit_message = on_message;
	if (setjmp(e.jb)) {
		snprintf(err, errlen, "%s", e.msg);
		free(row);
		jpeg_destroy_decompress(&d);
		return e.code;
	}
	jpeg_create_decompress(&d);
	d.mem->max_memory_to_use = max_mem;
	prog.progress_monitor = on_progress;
	d.progress = &prog;
	jpeg_mem_src(&d, buf, size);
	jpeg_read_header(&d, TRUE);
	int cmyk = d.num_components == 4;
	if (cmyk && !d.saw_Adobe_marker) {
		// Without the Adobe marker the colour model is a guess; the Go
		// decoder refuses such files too.
		snprintf(e.msg, sizeof e.msg, "4-component JPEG without Adobe colour information");
		e.code = DEC_ERROR;
		longjmp(e.jb, 1);
	}
	d.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
	d.scale_num = 1;
	d.scale_denom = denom;
	jpeg_start_decompress(&d);
	if ((int)d.output_width != full_w || (int)d.output_height != full_h) {
		snprintf(e.msg, sizeof e.msg, "scaled size %ux%u, expected %dx%d", d.output_width, d.output_height, full_w, full_h);
		e.code = DEC_ERROR;
		longjmp(e.jb, 1);
	}
	JDIMENSION cx = x0, cw = w;
	if (w < full_w) jpeg_crop_scanline(&d, &cx, &cw); // widens to iMCU columns
	int comps = d.output_components;
	if (cmyk || cx != (JDIMENSION)x0 || cw != (JDIMENSION)w) {
		row = malloc((size_t)cw * comps);
		if (!row) { snprintf(e.msg, sizeof e.msg, "out of memory"); e.code = DEC_TOO_LARGE; longjmp(e.jb, 1); }
	}
	if (y0 > 0) jpeg_skip_scanlines(&d, y0);
	int skip = x0 - (int)cx;
	for (int y = 0; y < h; y++) {
		unsigned char *out = dst + (size_t)y * w * 3;
		JSAMPROW rp = row ? row : out;
		if (jpeg_read_scanlines(&d, &rp, 1) != 1) {
			snprintf(e.msg, sizeof e.msg, "no scanline %d", y0 + y);
			e.code = DEC_DAMAGED;
			longjmp(e.jb, 1);
		}
		if (!row) continue;
		if (!cmyk) { memcpy(out, row + (size_t)skip * 3, (size_t)w * 3); continue; }
		const unsigned char *p = row + (size_t)skip * 4;
		for (int x = 0; x < w; x++, p += 4, out += 3) {
			unsigned k = p[3];
			out[0] = p[0] * k / 255;
			out[1] = p[1] * k / 255;
			out[2] = p[2] * k / 255;
		}
	}
	if (full && y0 + h == full_h) {
		jpeg_finish_decompress(&d); // reads on to EOI: trailing damage warns
	} else {
		jpeg_abort_decompress(&d);
	}
	free(row);
	jpeg_destroy_decompress(&d);
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

const turboAvailable = true

// turboDecode decodes region r (in stored coordinates at scale 1/denom,
// not oriented) of a JPEG with libjpeg-turbo. With full set r must be the
// whole image, and any damage in the file is an error.
func turboDecode(data []byte, h header, denom int, r image.Rectangle, full bool) (*rgb, error) {
	fw, fh := scaledSize(h.w, h.h, denom)
	if len(data) == 0 || r.Empty() || !r.In(image.Rect(0, 0, fw, fh)) {
		return nil, errors.New("empty JPEG or region outside the image")
	}
	m := newRGB(r.Dx(), r.Dy())
	var errBuf [C.JMSG_LENGTH_MAX]C.char
	rc := C.decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(denom),
		C.int(r.Min.X), C.int(r.Min.Y), C.int(r.Dx()), C.int(r.Dy()), C.int(fw), C.int(fh), cBool(full),
		(*C.uchar)(unsafe.Pointer(&m.pix[0])), C.long(photoMemoryLimit), &errBuf[0], C.int(len(errBuf)))
	switch rc {
	case 0:
		return m, nil
	case C.DEC_TOO_LARGE:
		return nil, &tooLargeError{}
	case C.DEC_DAMAGED:
		return nil, fmt.Errorf("damaged JPEG: %s", C.GoString(&errBuf[0]))
	default:
		return nil, fmt.Errorf("decoding JPEG: %s", C.GoString(&errBuf[0]))
	}
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
