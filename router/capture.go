package router

import (
	"bufio"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capture writes the frames seen on one port, in and out, to a pcap file
// (libpcap format, microsecond timestamps, LINKTYPE_ETHERNET) that tcpdump
// and Wireshark read, through gopacket's pcapgo writer into a large buffer:
// no allocation per frame (TestCaptureWriteAllocs). Workers check the port's
// capture pointer once per batch; writing happens only while a capture runs.
type capture struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	pw   *pcapgo.Writer
	ci   gopacket.CaptureInfo // reused for every frame
	left int
	path string
	done chan struct{}
	// failed is called once, outside the data path's lock order concerns
	// (from the writing worker, after the file is closed), when a write
	// fails: a full disk ends the capture, it never blocks or breaks the
	// port.
	failed func(path string, err error)
	err    error
}

// captureSnapLen is the longest part of a frame written; longer frames are
// cut and keep their original length in the record.
const captureSnapLen = 65535

func newCapture(path string, n int) (*capture, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	c := &capture{f: f, w: bufio.NewWriterSize(f, 256<<10), left: n, path: path, done: make(chan struct{})}
	c.pw = pcapgo.NewWriter(c.w)
	// The header is flushed at once so that a file that cannot be written
	// (a full disk) is an error of the capture command itself.
	err = c.pw.WriteFileHeader(captureSnapLen, layers.LinkTypeEthernet)
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil {
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
	c.ci.Timestamp = time.Now()
	for _, f := range frames {
		if c.left <= 0 {
			break
		}
		n := min(len(f), captureSnapLen)
		c.ci.CaptureLength, c.ci.Length = n, len(f)
		if err := c.pw.WritePacket(c.ci, f[:n]); err != nil {
			c.fail(err)
			return false
		}
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
		err := c.w.Flush()
		if cerr := c.f.Close(); err == nil {
			err = cerr
		}
		c.f = nil
		close(c.done)
		if err != nil && c.err == nil {
			c.fail(err)
		}
	}
}

// fail ends the capture after a write error (under mu) and reports it.
func (c *capture) fail(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	c.left = 0
	if c.f != nil {
		c.f.Close()
		c.f = nil
		close(c.done)
	}
	if c.failed != nil {
		c.failed(c.path, err)
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
