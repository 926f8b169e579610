// Command firestoreemu runs the in-memory Cloud Firestore emulator.
//
// It serves the google.firestore.v1.Firestore gRPC API and the emulator's
// HTTP hooks on one port, prints "firestoreemu listening on HOST:PORT" when
// it is ready, and exits cleanly on SIGINT or SIGTERM. Point clients at it
// with FIRESTORE_EMULATOR_HOST=HOST:PORT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/baasmigrate/baasmigrate/e2e/firestoreemu"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "firestoreemu:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("firestoreemu", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 8080, "port to listen on; 0 picks a free port")
	history := fs.Duration("history", time.Hour, "how long past document versions are kept for reads at a past read_time")
	heartbeat := fs.Duration("listen-heartbeat", 10*time.Second, "how often idle Listen streams get a NO_CHANGE with a fresh resume token (0 disables)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *history <= 0 {
		return fmt.Errorf("--history must be positive, got %s", *history)
	}
	hb := *heartbeat
	if hb == 0 {
		hb = -1
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listening on %s:%d: %w", *host, *port, err)
	}
	emu := firestoreemu.New(firestoreemu.Options{History: *history, ListenHeartbeat: hb})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- emu.Serve(ln) }()
	fmt.Printf("firestoreemu listening on %s\n", ln.Addr())
	select {
	case <-ctx.Done():
		return emu.Close()
	case err := <-served:
		_ = emu.Close()
		return err
	}
}
