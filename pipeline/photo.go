package pipeline

import (
	"context"
	"fmt"

	"id06/imaging"
	"id06/order"
)

var photoMoves = map[order.State]order.State{order.Queued: order.Imaging, order.Imaging: order.Imaging}

// photoOnce checks one order's photo and crops its portrait.
func (p *Pipeline) photoOnce(ctx context.Context) (bool, error) {
	c, err := p.claim(ctx, photoMoves)
	if c == nil {
		return false, err
	}
	start := p.now()
	defer func() { p.metrics.Stage("photo", "", p.now().Sub(start)) }()
	photo, err := p.store.Blob(ctx, c.ID, "photo")
	if err != nil {
		return true, fmt.Errorf("order %s: photo: %w", c.ID, err)
	}
	res := p.photo(photo)
	pass := res.Verdict == "pass"
	note := "photo passed the checks"
	if c.PhotoOverride == "pass" && res.Portrait != nil {
		pass, note = true, "photo accepted by an operator's override"
	}
	if !pass {
		p.log.Info("photo refused", "order", c.ID, "reasons", len(res.Reasons))
		return true, p.store.NeedsFixPhoto(ctx, c, res.Reasons)
	}
	portrait, err := imaging.EncodePNG(res.Portrait, 300)
	if err != nil {
		return true, p.store.Fail(ctx, c, "portrait could not be encoded: "+err.Error())
	}
	err = p.store.PhotoPassed(ctx, c, map[string][]byte{"portrait": portrait, "chip_jpeg": res.ChipJPEG}, note)
	if err == nil {
		p.Wake()
	}
	return true, err
}
