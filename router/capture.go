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
	if err := c.pw.WriteFileHeader(captureSnapLen, layers.LinkTypeEthernet); err != nil {
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
		c.pw.WritePacket(c.ci, f[:n])
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
