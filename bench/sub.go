package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connResult is the connection-rate client's report (one JSON line).
type connResult struct {
	OK         int64   `json:"ok"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	FirstError string  `json:"first_error,omitempty"`
}

// subcommand runs a helper that the benchmark starts inside a namespace.
func subcommand(name string, args []string) int {
	switch name {
	case "_connserver":
		return connServer(args)
	case "_connclient":
		return connClient(args)
	}
	fmt.Fprintln(os.Stderr, "bench: unknown helper", name)
	return 2
}

// connServer accepts connections on -addr and closes each at once (the
// server closes first, so the client keeps no TIME_WAIT), for at most -d.
func connServer(args []string) int {
	fs := flag.NewFlagSet("_connserver", flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address")
	life := fs.Duration("d", 30*time.Second, "exit after this long")
	if fs.Parse(args) != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-time.After(*life):
		}
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0
			}
			continue
		}
		c.Close()
	}
}

// connClient opens and closes connections to -addr from -c goroutines for
// -d: connect, wait for the server's close, close. It prints a connResult.
func connClient(args []string) int {
	fs := flag.NewFlagSet("_connclient", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	dur := fs.Duration("d", 3*time.Second, "how long")
	conc := fs.Int("c", 8, "concurrent connectors")
	if fs.Parse(args) != nil {
		return 2
	}
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	d := net.Dialer{Timeout: time.Second}
	start := time.Now()
	end := start.Add(*dur)
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [1]byte
			for time.Now().Before(end) {
				c, err := d.Dial("tcp", *addr)
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				_, err = c.Read(buf[:])
				c.Close()
				if err != nil && !errors.Is(err, io.EOF) {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	r := connResult{OK: ok.Load(), Errors: bad.Load(), Seconds: el, PerSecond: float64(ok.Load()) / el}
	if s, _ := firstErr.Load().(string); s != "" {
		r.FirstError = s
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}
