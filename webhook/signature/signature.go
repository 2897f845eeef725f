// Package signature signs and checks the station's webhooks. A receiver
// imports it to check a delivery; it uses nothing but the standard library,
// so importing it pulls in nothing else of the station.
//
// The signature covers the timestamp and the exact body, so a receiver can
// refuse both forged and replayed deliveries:
//
//	Station-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. Delivery is at least once: a receiver de-duplicates on
// the event id (also "event_id" in the body).
const (
	HeaderEventID   = "Station-Event-Id"
	HeaderEventType = "Station-Event-Type"
	HeaderTimestamp = "Station-Timestamp"
	HeaderSignature = "Station-Signature"
)

// Sign returns the Station-Signature header value for body sent at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac(secret, t, body))
}

func mac(secret, t string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(t))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a Station-Signature header the way a receiver should: the
// MAC in constant time, and the timestamp within tolerance of now.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var t, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v1 == "" {
		return errors.New("signature header must be t=<unix seconds>,v1=<hex>")
	}
	got, err := hex.DecodeString(v1)
	if err != nil || !hmac.Equal(got, mac(secret, t, body)) {
		return errors.New("signature does not match the body")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %s away from now", d.Round(time.Second))
	}
	return nil
}
