// Command station is the ID06 card production station: the daemon (`serve`)
// and the verbs operators, suppliers and QA use around it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	cardCtx, abort := context.WithCancel(context.Background())
	// First signal: stop taking work, finish the card in hand. Second: abort it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "station: stopping after the card in hand (signal again to abort it)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "station: aborting the card in hand")
		abort()
	}()
	os.Exit(run(ctx, cardCtx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries a process exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
