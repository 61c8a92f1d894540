//go:build !linux

package router

import "errors"

// Shared polling (sharedpoll_linux.go) needs poll(2) and eventfd.
type sharedPoller struct{}

func newSharedPoller() (*sharedPoller, error) {
	return nil, errors.New("shared polling needs Linux")
}

func (*sharedPoller) add(*worker, *portState) bool { return false }
func (*sharedPoller) wake()                        {}
func (*sharedPoller) close()                       {}
func (r *Router) runSharedPoll(*sharedPoller)      {}
