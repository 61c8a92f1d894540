package router

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestCaptureWriteAllocs: writing frames to a running capture allocates
// nothing per frame (the header is reused, the file is buffered).
func TestCaptureWriteAllocs(t *testing.T) {
	c, err := newCapture(filepath.Join(t.TempDir(), "a.pcap"), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	frames := [][]byte{make([]byte, 60), make([]byte, 1514), make([]byte, 9000)}
	if n := testing.AllocsPerRun(1000, func() { c.write(frames) }); n != 0 {
		t.Fatalf("%v allocations per capture write", n)
	}
}

// TestCaptureFile: the file is a pcap (microsecond timestamps, Ethernet)
// that an independent reader reads back frame by frame; frames longer than
// the snap length are cut and keep their original length.
func TestCaptureFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.pcap")
	c, err := newCapture(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xab}, 70000)
	before := time.Now().Truncate(time.Microsecond)
	if !c.write([][]byte{{1, 2, 3}, big}) {
		t.Fatal("capture ended early")
	}
	if c.write([][]byte{{4}, {5}}) { // the third frame completes it; the fourth is not written
		t.Fatal("capture still running after n frames")
	}
	<-c.done
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if rd.LinkType() != layers.LinkTypeEthernet || rd.Snaplen() != 65535 {
		t.Fatalf("link type %v, snap length %d", rd.LinkType(), rd.Snaplen())
	}
	var got [][]byte
	for {
		data, ci, err := rd.ReadPacketData()
		if err != nil {
			break
		}
		if ci.Length != len(data) && !(len(data) == 65535 && ci.Length == len(big)) {
			t.Errorf("frame of %d bytes has length %d", len(data), ci.Length)
		}
		if ci.Timestamp.Before(before) || ci.Timestamp.After(time.Now()) {
			t.Errorf("timestamp %v", ci.Timestamp)
		}
		got = append(got, data)
	}
	if len(got) != 3 || !bytes.Equal(got[0], []byte{1, 2, 3}) || !bytes.Equal(got[1], big[:65535]) || !bytes.Equal(got[2], []byte{4}) {
		t.Fatalf("read back %d frames", len(got))
	}
}

// A capture to a full disk fails at once, with the system's reason.
func TestCaptureFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	_, err := newCapture("/dev/full", 10)
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("capture to /dev/full: %v", err)
	}
}
