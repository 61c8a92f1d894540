// Package lab builds throw-away network labs in network namespaces for the
// end-to-end tests and the demo: namespaces, veth pairs between them, and a
// vrouter process running in one of them. Every name carries a per-lab
// prefix; Close removes everything the lab made. Only documentation and
// private address ranges are used, and nothing touches the root namespace.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var seq atomic.Uint32

// Lab is a set of namespaces and processes.
type Lab struct {
	Prefix string
	Dir    string // scratch directory (configs, logs, captures)

	mu      sync.Mutex
	ns      []string
	procs   []*exec.Cmd
	cleanup []func()
	Log     func(format string, args ...any)
}

// New makes an empty lab. Names are "<prefix>-<name>"; the prefix is short
// because interface names are limited to 15 characters.
func New(tag string) (*Lab, error) {
	p := fmt.Sprintf("%s%d%d", tag, os.Getpid()%1000, seq.Add(1))
	dir, err := os.MkdirTemp("", "vrlab-"+p+"-")
	if err != nil {
		return nil, err
	}
	return &Lab{Prefix: p, Dir: dir, Log: func(string, ...any) {}}, nil
}

// NS creates a namespace (loopback up, IPv6 off so the router sees no
// IPv6 noise) and returns its full name.
func (l *Lab) NS(name string) (string, error) {
	full := l.Prefix + "-" + name
	if out, err := exec.Command("ip", "netns", "add", full).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %v: %s", full, err, out)
	}
	l.mu.Lock()
	l.ns = append(l.ns, full)
	l.mu.Unlock()
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"},
		{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"},
	} {
		if _, err := l.Exec(full, c...); err != nil {
			return "", err
		}
	}
	return full, nil
}

// Veth creates a veth pair with one end in each namespace (created there
// directly, never in the root namespace) and sets both up.
func (l *Lab) Veth(nsA, ifA, nsB, ifB string) error {
	if out, err := exec.Command("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB).CombinedOutput(); err != nil {
		return fmt.Errorf("veth %s/%s - %s/%s: %v: %s", nsA, ifA, nsB, ifB, err, out)
	}
	if _, err := l.Exec(nsA, "ip", "link", "set", ifA, "up"); err != nil {
		return err
	}
	_, err := l.Exec(nsB, "ip", "link", "set", ifB, "up")
	return err
}

// Exec runs a command inside a namespace and returns its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	return l.ExecTimeout(ns, 60*time.Second, args...)
}

// ExecTimeout is Exec with a deadline.
func (l *Lab) ExecTimeout(ns string, d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return l.ExecContext(ctx, ns, args...)
}

// ExecContext is Exec that kills the command when ctx is done (ip netns
// exec execs the command itself, so the kill reaches it).
func (l *Lab) ExecContext(ctx context.Context, ns string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", ns}, args...)
	out, err := exec.CommandContext(ctx, "ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("[%s] %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Start runs a long-lived command in a namespace; Close kills it.
func (l *Lab) Start(ns string, logName string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	f, err := os.Create(filepath.Join(l.Dir, logName))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.cleanup = append(l.cleanup, func() { f.Close() })
	l.mu.Unlock()
	return cmd, nil
}

// Defer registers f to run on Close (before namespaces are removed).
func (l *Lab) Defer(f func()) {
	l.mu.Lock()
	l.cleanup = append(l.cleanup, f)
	l.mu.Unlock()
}

// Close kills the lab's processes and removes its namespaces and files.
func (l *Lab) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.procs) - 1; i >= 0; i-- {
		p := l.procs[i]
		if p.Process != nil && p.ProcessState == nil {
			p.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				p.Process.Kill()
				<-done
			}
		}
	}
	for i := len(l.cleanup) - 1; i >= 0; i-- {
		l.cleanup[i]()
	}
	for _, ns := range l.ns {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	l.ns, l.procs, l.cleanup = nil, nil, nil
	if os.Getenv("VRLAB_KEEP") == "" {
		os.RemoveAll(l.Dir)
	}
}

// Router is a vrouter process in a lab.
type Router struct {
	lab     *Lab
	NS      string
	Config  string // path of the config file
	Socket  string
	Cmd     *exec.Cmd
	LogFile string
}

// Binary finds bin/vrouter from the repository root (VROUTER_BIN overrides).
func Binary() (string, error) {
	if b := os.Getenv("VROUTER_BIN"); b != "" {
		return b, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	b := filepath.Join(root, "bin", "vrouter")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("%s not found: run 'make build' first (or set VROUTER_BIN)", b)
	}
	return filepath.Abs(b)
}

// StartRouter writes cfg (TOML; the string "SOCKET" is replaced by the
// lab's socket path) and runs vrouter in ns, waiting until its console answers.
func (l *Lab) StartRouter(ns, name, cfg string) (*Router, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(l.Dir, name+".sock")
	path := filepath.Join(l.Dir, name+".toml")
	cfg = strings.ReplaceAll(cfg, "SOCKET", sock)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	r := &Router{lab: l, NS: ns, Config: path, Socket: sock, LogFile: filepath.Join(l.Dir, name+".log")}
	cmd, err := l.Start(ns, name+".log", bin, "run", "-c", path)
	if err != nil {
		return nil, err
	}
	r.Cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	l.Defer(func() {})
	wait := 10 * time.Second
	if os.Getenv("VROUTER_RACE") != "" {
		wait = 40 * time.Second // a router built with -race starts several times slower
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return nil, fmt.Errorf("vrouter exited at start:\n%s", r.Log())
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return r, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("vrouter did not open its console in %v:\n%s", wait, r.Log())
}

// Log returns what the router printed so far.
func (r *Router) Log() string {
	b, _ := os.ReadFile(r.LogFile)
	return string(b)
}

// Console runs `vrouter console -s SOCKET args...` and returns its output.
func (r *Router) Console(args ...string) (string, error) {
	bin, err := Binary()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, append([]string{"console", "-s", r.Socket}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// Signal sends sig to the router process (its child, through ip netns exec).
func (r *Router) Signal(sig os.Signal) error { return r.Cmd.Process.Signal(sig) }

// Lines splits output into non-empty lines.
func Lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			out = append(out, t)
		}
	}
	return out
}
