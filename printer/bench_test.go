package printer

import (
	"context"
	"fmt"
	"testing"
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
	e := startIPPEve(b)
	d, err := NewIPPDriver(e.uri)
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
		if err := d.Print(ctx, Job{ID: fmt.Sprintf("bench-%d", i), PDF: face.PDF}); err != nil {
			b.Fatal(err)
		}
	}
}
