package imaging

import (
	"testing"
	"time"
)

// TestBudgetFirstComeFirstServed: a request that does not fit waits, and
// later, smaller requests queue behind it instead of starving it.
func TestBudgetFirstComeFirstServed(t *testing.T) {
	b := &budget{free: 100}
	b.acquire(60)
	admitted := make(chan string, 2)
	waiters := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiting)
	}
	for i, req := range []struct {
		name string
		n    int64
	}{{"big", 70}, {"small", 10}} {
		go func() {
			b.acquire(req.n)
			admitted <- req.name
		}()
		for waiters() != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case name := <-admitted:
		t.Fatalf("%s admitted while 60 of 100 were taken and a larger request waited", name)
	case <-time.After(50 * time.Millisecond):
	}
	b.release(60)
	for range 2 {
		<-admitted
	}
	if b.free != 20 || waiters() != 0 {
		t.Errorf("free %d, %d waiting; want 20, 0", b.free, waiters())
	}
}
