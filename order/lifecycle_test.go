package order

import "testing"

// One rule says which states may still be cancelled and which are at the
// devices; the two never overlap and the final states are in neither.
func TestCancellableAndDeviceStates(t *testing.T) {
	for _, st := range States {
		c, d := st.Cancellable(), st.InDevice()
		if c && d {
			t.Errorf("%s is both cancellable and in the device", st)
		}
		final := st == Produced || st == Shipped || st == Failed || st == Cancelled
		if final && (c || d) {
			t.Errorf("final state %s offers cancel %v or stop %v", st, c, d)
		}
	}
	if !Ready.Cancellable() || Encoding.Cancellable() || !Encoding.InDevice() || !Printing.InDevice() {
		t.Error("ready must be cancellable; encoding and printing are at the devices")
	}
}
