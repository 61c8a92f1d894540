package router

import (
	"bufio"
	"encoding/binary"
	"os"
	"sync"
	"time"
)

// capture writes the frames seen on one port, in and out, to a pcap file
// (libpcap format, LINKTYPE_ETHERNET) that tcpdump and Wireshark read. Workers
// check the port's capture pointer once per batch; writing happens only
// while a capture runs.
type capture struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	left int
	path string
	done chan struct{}
	hdr  [16]byte
}

func newCapture(path string, n int) (*capture, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	c := &capture{f: f, w: bufio.NewWriterSize(f, 256<<10), left: n, path: path, done: make(chan struct{})}
	var gh [24]byte
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b2c3d4) // microsecond timestamps
	binary.LittleEndian.PutUint16(gh[4:], 2)
	binary.LittleEndian.PutUint16(gh[6:], 4)
	binary.LittleEndian.PutUint32(gh[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(gh[20:], 1)     // LINKTYPE_ETHERNET
	if _, err := c.w.Write(gh[:]); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// write records frames; it returns false once the capture is complete.
func (c *capture) write(frames [][]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left <= 0 {
		return false
	}
	now := time.Now()
	for _, f := range frames {
		if c.left <= 0 {
			break
		}
		n := len(f)
		if n > 65535 {
			n = 65535
		}
		binary.LittleEndian.PutUint32(c.hdr[0:], uint32(now.Unix()))
		binary.LittleEndian.PutUint32(c.hdr[4:], uint32(now.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(c.hdr[8:], uint32(n))
		binary.LittleEndian.PutUint32(c.hdr[12:], uint32(len(f)))
		c.w.Write(c.hdr[:])
		c.w.Write(f[:n])
		c.left--
	}
	if c.left <= 0 {
		c.closeLocked()
		return false
	}
	return true
}

func (c *capture) closeLocked() {
	if c.f != nil {
		c.w.Flush()
		c.f.Close()
		c.f = nil
		close(c.done)
	}
}

func (c *capture) stop() {
	c.mu.Lock()
	c.left = 0
	c.closeLocked()
	c.mu.Unlock()
}

// captureFrames feeds frames to p's capture, if one runs.
func (p *portState) captureFrames(frames [][]byte) {
	if c := p.capture.Load(); c != nil {
		if !c.write(frames) {
			p.capture.CompareAndSwap(c, nil)
		}
	}
}
