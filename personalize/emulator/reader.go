package emulator

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"id06/internal/atomicfile"
	"id06/personalize/apdu"
)

// Fault is injected into the next blank the reader feeds.
type Fault struct {
	// RemoveAfterWrites > 0 pulls the card out after that many write APDUs
	// (see Card.FailAfterWrites). The card stays in the slot: the next
	// Connect powers it up again, half-written.
	RemoveAfterWrites int
	// WrongMgmtKey feeds a blank whose management key is not the stock's.
	WrongMgmtKey bool
	// MemoryFull feeds a blank with room for only 1 KB of data objects.
	MemoryFull bool
}

// Reader is a simulated reader holding one card at a time, fed from an
// endless stack of blanks.
type Reader struct {
	name     string
	stock    Stock
	stateDir string

	mu    sync.Mutex
	card  *Card
	fault *Fault
}

const slotFile = "slot.json"

// NewReader makes a simulated reader. With stateDir "" the card lives in
// memory; otherwise the card in the slot is saved to stateDir after every
// change, so a restarted station finds the same half-written card.
func NewReader(name string, stock Stock, stateDir string) *Reader {
	return &Reader{name: name, stock: stock, stateDir: stateDir}
}

// Name is the reader's name.
func (r *Reader) Name() string { return r.name }

// InjectNext applies f to the next blank fed into the reader (not to a
// card already in the slot).
func (r *Reader) InjectNext(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = &f
}

// Card returns the card in the slot, or nil.
func (r *Reader) Card() *Card {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.card
}

// Connect powers up the card in the slot, feeding a new blank if empty.
func (r *Reader) Connect(ctx context.Context) (apdu.Card, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := r.stock.Validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card == nil {
		c, err := r.load()
		if err != nil {
			return nil, err
		}
		if c == nil {
			if c, err = r.feed(); err != nil {
				return nil, err
			}
			if r.fault != nil && r.fault.RemoveAfterWrites > 0 {
				c.FailAfterWrites(r.fault.RemoveAfterWrites)
			}
			r.fault = nil
		}
		r.card = c
	}
	r.card.PowerOn()
	return r.card, nil
}

func (r *Reader) feed() (*Card, error) {
	s := r.stock
	if f := r.fault; f != nil {
		if f.WrongMgmtKey {
			s.MgmtKey = make([]byte, len(s.MgmtKey))
			for i := range s.MgmtKey {
				s.MgmtKey[i] = r.stock.MgmtKey[i] ^ 0x5A
			}
		}
		if f.MemoryFull {
			s.Capacity = 1024
		}
	}
	c := New(s)
	if r.stateDir == "" {
		return c, nil
	}
	c.SetOnChange(r.save)
	b, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return c, r.save(b)
}

func (r *Reader) save(b []byte) error {
	if err := os.MkdirAll(r.stateDir, 0o700); err != nil {
		return fmt.Errorf("emulator: reader state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(r.stateDir, slotFile), b, 0o600); err != nil {
		return fmt.Errorf("emulator: saving the card in reader %q: %w", r.name, err)
	}
	return nil
}

func (r *Reader) load() (*Card, error) {
	if r.stateDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(r.stateDir, slotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("emulator: reading the card in reader %q: %w", r.name, err)
	}
	c, err := Load(b)
	if err != nil {
		return nil, fmt.Errorf("emulator: the card saved in %s is unreadable: %w", r.stateDir, err)
	}
	c.SetOnChange(r.save)
	return c, nil
}

// Eject moves the card out of the reader (to the printer or the reject
// bin); the next Connect feeds a new blank. A persisted card is kept as
// stateDir/ejected/UID.json for inspection.
func (r *Reader) Eject(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card == nil && r.stateDir == "" {
		return nil
	}
	if r.stateDir != "" {
		src := filepath.Join(r.stateDir, slotFile)
		if _, err := os.Stat(src); err == nil {
			uid := ""
			if r.card != nil {
				uid = hex.EncodeToString(r.card.UID())
			} else if c, err := r.load(); err == nil && c != nil {
				uid = hex.EncodeToString(c.UID())
			}
			dir := filepath.Join(r.stateDir, "ejected")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("emulator: eject: %w", err)
			}
			if err := os.Rename(src, filepath.Join(dir, uid+".json")); err != nil {
				return fmt.Errorf("emulator: eject: %w", err)
			}
		}
	}
	if r.card != nil {
		r.card.SetOnChange(nil)
	}
	r.card = nil
	return nil
}
