package printer

import (
	"context"
	"fmt"
	"testing"

	"id06/printer/ippetest"
)

// BenchmarkRender is the layout cost per card: PDF and both PNG previews.
func BenchmarkRender(b *testing.B) {
	tpl := DefaultTemplate()
	c := goldenCard()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(tpl, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIPPPrint is submit-to-completed time for one card against
// ippeveprinter with an instant -c command.
func BenchmarkIPPPrint(b *testing.B) {
	e := ippetest.Start(b)
	d, err := NewIPPDriver(e.URI)
	if err != nil {
		b.Fatal(err)
	}
	face, err := Render(DefaultTemplate(), goldenCard())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := PrintOnce(ctx, d, Job{ID: fmt.Sprintf("bench-%d", i), PDF: face.PDF}); err != nil {
			b.Fatal(err)
		}
	}
}
