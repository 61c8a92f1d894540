package router

// Shared polling ([router] shared_poll): the ports that can be read
// without blocking (port.Poller: afxdp, afpacket rings) are served by one goroutine instead
// of a worker goroutine each. It takes a batch from every port in turn,
// each with the port's own worker state (batch, tx queues, NAT worker),
// and when none has a frame it looks again for sharedSpin, then sleeps in
// one poll(2) over all their descriptors.
//
// Why: with a worker per port, traffic that comes back on a quiet port (a
// ping reply while the other port is flooded) wakes a sleeping thread,
// which then waits for a CPU while the busy worker and the sender hold
// them all: milliseconds. One thread that is already running takes the
// reply in its next pass. The price is one CPU for all these ports.
//
// Ports that are not Pollers (tap, afpacket in its recvmmsg mode) keep
// their own workers.

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"vrouter/router/port"
)

// sharedSpin is how long the shared worker looks at empty ports before it
// sleeps (the afxdp driver's own default spin).
const sharedSpin = 50 * time.Microsecond

// sharedPollMax bounds a sleep: a port closed while the poll waits on its
// descriptors is forgotten at the latest then.
const sharedPollMax = 100 // ms

// spMember is one port queue served by the shared worker.
type spMember struct {
	w   *worker
	p   *portState
	rxq port.Poller
}

type sharedPoller struct {
	mu      sync.Mutex // serialises changes of members
	members atomic.Pointer[[]*spMember]
	efd     int // eventfd: a change of members or Stop wakes the poll
}

func newSharedPoller() (*sharedPoller, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	sp := &sharedPoller{efd: efd}
	sp.members.Store(&[]*spMember{})
	return sp, nil
}

// add makes the shared worker serve w's queue of p, if that queue can be
// polled; false leaves it to a worker of its own.
func (sp *sharedPoller) add(w *worker, p *portState) bool {
	pq, ok := p.queues[w.q].(port.Poller)
	if !ok || len(pq.PollFds()) == 0 {
		return false
	}
	sp.mu.Lock()
	old := *sp.members.Load()
	ms := append(append(make([]*spMember, 0, len(old)+1), old...), &spMember{w: w, p: p, rxq: pq})
	sp.members.Store(&ms)
	sp.mu.Unlock()
	sp.wake()
	return true
}

// drop forgets the members of closed ports.
func (sp *sharedPoller) drop() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var ms []*spMember
	for _, m := range *sp.members.Load() {
		if !m.p.closed.Load() {
			ms = append(ms, m)
		}
	}
	sp.members.Store(&ms)
}

// close releases the eventfd, once the shared worker has stopped.
func (sp *sharedPoller) close() { unix.Close(sp.efd) }

func (sp *sharedPoller) wake() {
	one := uint64(1)
	_, _ = unix.Write(sp.efd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// sharedPass takes one batch from each member and processes it: busy when
// some had frames, closed when some port is closed.
func (r *Router) sharedPass(ms []*spMember, lastLog *time.Time) (busy, closed bool) {
	for _, m := range ms {
		n, err := m.rxq.TryReadBatch(m.w.rx)
		switch {
		case n > 0:
			m.w.processBatch(m.p, m.w.rx)
			busy = true
		case errors.Is(err, port.ErrClosed):
			closed = true
		case err != nil && time.Since(*lastLog) > time.Minute:
			r.log.Warn("port read failed; retrying", "port", m.p.name, "err", err)
			*lastLog = time.Now()
		}
	}
	return busy, closed
}

// runSharedPoll is the shared worker's loop, until Stop.
func (r *Router) runSharedPoll(sp *sharedPoller) {
	var (
		fds       []unix.PollFd
		fdsOf     *[]*spMember // the members fds was built for
		spinStart time.Time
		lastLog   time.Time
		drain     [8]byte
		fdErrs    []int // polls in a row that found fds[i] in error
	)
	for !r.stopped.Load() {
		msp := sp.members.Load()
		busy, closed := r.sharedPass(*msp, &lastLog)
		if closed {
			sp.drop()
			continue
		}
		if busy {
			spinStart = time.Time{}
			continue
		}
		if spinStart.IsZero() {
			spinStart = time.Now()
		}
		if time.Since(spinStart) < sharedSpin {
			continue
		}
		spinStart = time.Time{}
		if fdsOf != msp {
			fds = fds[:0]
			fds = append(fds, unix.PollFd{Fd: int32(sp.efd), Events: unix.POLLIN})
			for _, m := range *msp {
				for _, fd := range m.rxq.PollFds() {
					fds = append(fds, unix.PollFd{Fd: fd, Events: unix.POLLIN})
				}
			}
			fdsOf = msp
			fdErrs = append(fdErrs[:0], make([]int, len(fds))...)
		}
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Poll(fds, sharedPollMax); err != nil && !errors.Is(err, unix.EINTR) {
			r.log.Warn("shared poll failed", "err", err)
			time.Sleep(time.Millisecond)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			_, _ = unix.Read(sp.efd, drain[:])
		}
		// A socket whose device went away reports an error until the
		// supervisor replaces its port. Read the error (which clears it
		// on a packet socket); one that keeps failing is left out of the
		// poll (a negative descriptor is ignored) until the members
		// change, and its port is still read on every pass.
		for i := 1; i < len(fds); i++ {
			if fds[i].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) == 0 {
				fdErrs[i] = 0
				continue
			}
			_, _ = unix.GetsockoptInt(int(fds[i].Fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if fdErrs[i]++; fdErrs[i] >= 3 {
				r.log.Warn("shared poll: a descriptor keeps failing; left out of the poll until its port is replaced", "fd", fds[i].Fd)
				fds[i].Fd = -1
			}
		}
	}
}
