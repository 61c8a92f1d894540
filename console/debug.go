package console

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vrouter/router"
)

func (c *Console) cmdTrace(args []string, js bool) (string, error) {
	n := 10
	if len(args) == 1 {
		if _, err := fmt.Sscanf(args[0], "%d", &n); err != nil || n <= 0 || n > router.TraceMax {
			return "", fmt.Errorf("usage: trace N (1..%d)", router.TraceMax)
		}
	} else if len(args) > 1 {
		return "", fmt.Errorf("usage: trace N")
	}
	if err := c.r.Trace(n); err != nil {
		return "", err
	}
	return done(js, fmt.Sprintf("tracing the next %d packets; show trace prints them", n), map[string]any{"packets": n})
}

func (c *Console) cmdShowTrace(args []string, js bool) (string, error) {
	lines := c.r.TraceLines()
	if js {
		return toJSON(lines)
	}
	if len(lines) == 0 {
		return "no packets traced (use trace N first)\n", nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}

func (c *Console) cmdCapture(args []string, js bool) (string, error) {
	if len(args) < 2 || len(args) > 3 {
		return "", fmt.Errorf("usage: capture PORT FILE [N]   (N frames, default 100; 'capture PORT stop' ends one)")
	}
	if args[1] == "stop" {
		path, err := c.r.StopCapture(args[0])
		if err != nil {
			return "", err
		}
		return done(js, fmt.Sprintf("capture on %s stopped: %s", args[0], path), map[string]any{"port": args[0], "file": path})
	}
	n := 100
	if len(args) == 3 {
		var err error
		if n, err = strconv.Atoi(args[2]); err != nil || n <= 0 {
			return "", fmt.Errorf("bad frame count %q", args[2])
		}
	}
	if err := c.r.StartCapture(args[0], args[1], n); err != nil {
		if errors.Is(err, router.ErrNoPort) {
			return "", err
		}
		return "", fmt.Errorf("capture: %v", err)
	}
	return done(js, fmt.Sprintf("capturing the next %d frames of port %s (in and out) to %s", n, args[0], args[1]),
		map[string]any{"port": args[0], "file": args[1], "frames": n})
}
