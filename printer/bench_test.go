package printer

import "testing"

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
