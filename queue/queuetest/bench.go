package queuetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"id06/queue"
)

// Bench runs the store's benchmarks against the databases newDB makes.
func Bench(b *testing.B, newDB func(t testing.TB) string) {
	b.Run("ClaimComplete", func(b *testing.B) { benchClaimComplete(b, newDB(b)) })
	b.Run("Intake", func(b *testing.B) { benchIntake(b, newDB(b)) })
	b.Run("Changes", func(b *testing.B) { benchChanges(b, newDB(b)) })
}

func benchOpen(b *testing.B, dsn string) (*queue.Store, *clock) {
	c := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	s, err := queue.Open(dsn, queue.WithClock(c.now), queue.WithStation("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, c
}

// benchClaimComplete is one photo-stage cycle: claim, then finish.
func benchClaimComplete(b *testing.B, dsn string) {
	s, c := benchOpen(b, dsn)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		Submit(b, s, fmt.Sprintf("o%09d", i), false, Holder(c.now()))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j, err := s.Claim(ctx, "w", time.Minute, photoMoves)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.PhotoPassed(ctx, j, nil, "ok"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}

// benchIntake stores orders with a 300 KB photo, as the API does.
func benchIntake(b *testing.B, dsn string) {
	s, c := benchOpen(b, dsn)
	ctx := context.Background()
	photo := make([]byte, 300<<10)
	rand.Read(photo) // as incompressible as a JPEG
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Submit(ctx, queue.NewOrder{ID: fmt.Sprintf("o%09d", i), Supplier: "sup", BodyHash: "h", Doc: []byte(`{}`),
			CardType: "id06", Approvals: Holder(c.now()), Photo: photo}, "api"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// benchChanges is the poll every open operator page makes each second.
func benchChanges(b *testing.B, dsn string) {
	s, c := benchOpen(b, dsn)
	ctx := context.Background()
	for i := range 5000 {
		id := fmt.Sprintf("o-%05d", i)
		Submit(b, s, id, false, Holder(c.now()))
		if _, err := s.Cancel(ctx, id, "", "op", "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Changes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
