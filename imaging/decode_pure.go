//go:build !cgo

package imaging

import (
	"errors"
	"image"
)

// Without cgo every JPEG takes the pure-Go decoder (slower, same results).
const turboAvailable = false

func turboDecode([]byte, header, int, image.Rectangle, bool) (*rgb, error) {
	return nil, errors.New("libjpeg-turbo not built in")
}
