package vpcd

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"id06/internal/atomicfile"
	"id06/personalize/emulator"
)

// RunSimCard is `station sim card --vpcd HOST:PORT [--stock NAME] [--uid HEX]
// [--state FILE] [--mgmt-alg ALG] [--mgmt-key HEX] [--capacity BYTES]
// [--remove-after-writes N]`: it inserts a blank emulated card into pcscd's
// vpcd reader until ctx ends. With --state the card is loaded from and
// saved to FILE, so it survives restarts like a real card would.
func RunSimCard(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sim card", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("vpcd", "127.0.0.1:35963", "vpcd `HOST:PORT` of pcscd's virtual reader (vpcd listens on 35963 for reader 00 00)")
	stockName := fs.String("stock", "generic", "blank stock `NAME`: generic (PIV only) or yubikey (YubiKey extensions, 3,052-byte objects)")
	uidHex := fs.String("uid", "", "chip UID as `HEX` (4–10 bytes); default random 7 bytes")
	statePath := fs.String("state", "", "keep the card in `FILE` across restarts")
	removeAfter := fs.Int("remove-after-writes", 0, "fault injection: pull the card out after `N` write APDUs (it is re-inserted a second later)")
	mgmtAlg := fs.String("mgmt-alg", "3des", "transport management key `ALG`: 3des, aes128, aes192 or aes256")
	mgmtKey := fs.String("mgmt-key", "", "transport management key as `HEX` (default 0102030405060708 repeated to the key length)")
	capacity := fs.Int("capacity", -1, "object memory in `BYTES` (default the stock's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim card: unexpected argument %q", fs.Arg(0))
	}
	stock, err := emulator.StockNamed(*stockName)
	if err != nil {
		return fmt.Errorf("sim card: --stock: %w", err)
	}
	if *uidHex != "" {
		uid, err := hex.DecodeString(*uidHex)
		if err != nil {
			return fmt.Errorf("sim card: --uid %q is not hex: %w", *uidHex, err)
		}
		stock.UID = uid
	}
	algs := map[string]byte{"3des": emulator.Alg3DES, "aes128": emulator.AlgAES128, "aes192": emulator.AlgAES192, "aes256": emulator.AlgAES256}
	alg, ok := algs[*mgmtAlg]
	if !ok {
		return fmt.Errorf("sim card: --mgmt-alg %q: want 3des, aes128, aes192 or aes256", *mgmtAlg)
	}
	stock.MgmtAlg = alg
	if *mgmtKey != "" {
		key, err := hex.DecodeString(*mgmtKey)
		if err != nil {
			return fmt.Errorf("sim card: --mgmt-key is not hex: %w", err)
		}
		stock.MgmtKey = key
	} else {
		stock.MgmtKey = bytes.Repeat(emulator.DefaultManagementKey[:8], 4)[:keyLen(alg)]
	}
	if *capacity != -1 {
		stock.Capacity = *capacity
	}
	if err := stock.Validate(); err != nil {
		return fmt.Errorf("sim card: %w", err)
	}
	card, err := loadOrNew(*statePath, stock)
	if err != nil {
		return err
	}
	switch {
	case *removeAfter < 0:
		return fmt.Errorf("sim card: --remove-after-writes must be positive")
	case *removeAfter > 0:
		card.FailAfterWrites(*removeAfter)
	}
	fmt.Fprintf(stdout, "card UID %X in vpcd %s (Ctrl-C to remove)\n", card.UID(), *addr)
	return Serve(ctx, *addr, card)
}

func loadOrNew(path string, stock emulator.Stock) (*emulator.Card, error) {
	if path == "" {
		return emulator.New(stock), nil
	}
	var card *emulator.Card
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		card = emulator.New(stock)
	case err != nil:
		return nil, fmt.Errorf("sim card: %w", err)
	default:
		if card, err = emulator.Load(b); err != nil {
			return nil, fmt.Errorf("sim card: %s: %w", path, err)
		}
		if stock.UID != nil && !bytes.Equal(card.UID(), stock.UID) {
			return nil, fmt.Errorf("sim card: %s holds the card with UID %X, not --uid %X", path, card.UID(), stock.UID)
		}
	}
	card.SetOnChange(func(state []byte) error { return writeState(path, state) })
	b, err = card.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return card, writeState(path, b)
}

// writeState replaces path atomically, so a crash never leaves half a card.
func writeState(path string, b []byte) error {
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("sim card: saving the card: %w", err)
	}
	return nil
}

func keyLen(alg byte) int {
	switch alg {
	case emulator.AlgAES128:
		return 16
	case emulator.AlgAES256:
		return 32
	}
	return 24
}
