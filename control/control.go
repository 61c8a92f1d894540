// Package control is the router's control socket: a unix stream socket on
// which each request and each response is one JSON object on one line.
// Outside scripts talk to it directly, so the wire types and their JSON
// field names are a contract:
//
//	-> {"args":["show","ip","route"],"json":true}
//	<- {"ok":true,"output":"[...]\n"}
//	<- {"ok":false,"error":"no route to 192.0.2.7"}
//
// A connection may carry any number of requests; each is answered before
// the next is read. The server knows nothing of the commands: it hands the
// words to a Handler (the console).
package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Request is one control-socket request.
type Request struct {
	Args []string `json:"args"`
	JSON bool     `json:"json"`
}

// Response is the answer to a Request. Output may be set when OK is false
// (a command that printed something, then failed).
type Response struct {
	OK     bool   `json:"ok"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Handler runs one command: args are its words, js asks for JSON output.
// It is called from one goroutine per connection, so concurrently.
type Handler func(args []string, js bool) (string, error)

// maxRequest is the longest request line the server reads.
const maxRequest = 1 << 20

// MaxConns is how many connections the server serves at once. One more is
// answered with an error and closed, so that a flood of connections costs a
// bounded number of goroutines and buffers, never the data path's CPU or
// the router's memory.
const MaxConns = 64

// Server answers requests on a unix socket.
type Server struct {
	path string
	h    Handler
	ln   net.Listener

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	refused uint64 // connections over MaxConns
	wg      sync.WaitGroup
}

// Listen creates the socket at path (and its directory), readable and
// writable by its owner and group (0660), and serves it until Close. If a
// live server already answers on path it fails with an error that says the
// socket is in use by another router; a stale socket file is replaced.
func Listen(path string, h Handler) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use by another router", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	os.Chmod(path, 0o660)
	s := &Server{path: path, h: h, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, closes the open connections, waits for their
// handlers to return and removes the socket file.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		if len(s.conns) >= MaxConns {
			s.refused++
			s.mu.Unlock()
			refuse(c)
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// refuse answers a connection over MaxConns with an error and closes it
// (inline: the answer fits the socket buffer; the deadline bounds it anyway).
func refuse(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	json.NewEncoder(c).Encode(&Response{Error: fmt.Sprintf("control socket busy: %d connections open; try again", MaxConns)})
	c.Close()
}

// Conns is the number of connections being served and the number refused
// because MaxConns were open.
func (s *Server) Conns() (open int, refused uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.refused
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), maxRequest)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		if err := enc.Encode(s.answer(sc.Bytes())); err != nil {
			return
		}
	}
}

// answer decodes one request line and runs it.
func (s *Server) answer(line []byte) *Response {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return &Response{Error: "bad request: " + err.Error()}
	}
	out, err := s.h(req.Args, req.JSON)
	if err != nil {
		return &Response{Output: out, Error: err.Error()}
	}
	return &Response{OK: true, Output: out}
}

// Client is a connection to a control socket. It is not safe for
// concurrent use.
type Client struct {
	c  net.Conn
	rd *bufio.Reader
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 3*time.Second)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, rd: bufio.NewReaderSize(c, 1<<20)}, nil
}

// Do runs one command and returns its output. A command that fails returns
// its error text as an error, along with any output it made.
func (cl *Client) Do(args []string, js bool) (string, error) {
	b, err := json.Marshal(Request{Args: args, JSON: js})
	if err != nil {
		return "", err
	}
	_, werr := cl.c.Write(append(b, '\n'))
	// A server that refuses the connection (busy) answers and closes
	// before it reads the request: the write can fail with a broken
	// pipe while its answer is already there to read.
	line, err := cl.rd.ReadBytes('\n')
	if err != nil {
		if werr != nil {
			err = werr
		}
		return "", fmt.Errorf("control socket: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return "", fmt.Errorf("control socket: bad response: %v", err)
	}
	if !resp.OK {
		return resp.Output, errors.New(resp.Error)
	}
	return resp.Output, nil
}

// Close closes the connection.
func (cl *Client) Close() error { return cl.c.Close() }
