package pipeline

import (
	"fmt"
	"image"
	"time"

	"id06/imaging"
	"id06/order"
	"id06/printer"
)

// FaceLayout lays out the card face of an order: the pipeline's and
// `station card render`'s one way from an order to what the printer prints.
// logo is the order's logo file as uploaded (nil for none).
func FaceLayout(tmpl *printer.Template, o *order.Order, cardNumber, issuer string, validUntil time.Time, portrait image.Image, logo []byte) (*printer.Layout, error) {
	var logoImg image.Image
	if len(logo) > 0 {
		var err error
		if logoImg, err = imaging.PrepareLogo(logo, o.Company.ColorLogo); err != nil {
			return nil, fmt.Errorf("logo: %w", err)
		}
	}
	return printer.Lay(tmpl, printer.Card{
		CardType: o.CardType, PrintName: o.Holder.PrintName, Company: o.Company.Name, OrgNumber: o.Company.OrgNumber,
		CardNumber: cardNumber, Issuer: issuer, ValidUntil: validUntil,
		Portrait: portrait, Logo: logoImg, ColorLogo: o.Company.ColorLogo,
	})
}
