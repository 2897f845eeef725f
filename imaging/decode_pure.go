//go:build !cgo

package imaging

import "errors"

// Without cgo every JPEG takes the pure-Go decoder (slower, same results).
const turboAvailable = false

func turboDecode([]byte, int) (*rgb, error) { return nil, errors.New("libjpeg-turbo not built in") }
