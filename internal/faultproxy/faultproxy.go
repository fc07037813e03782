// Package faultproxy is an in-process TCP proxy for fault tests: put it
// between a client and a broker, then add latency with jitter, blackhole
// the link (bytes stop flowing both ways while connections stay open, as
// when a route dies silently), or reset every connection.
package faultproxy

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections on its address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	latency   time.Duration
	jitter    time.Duration
	holes     chan struct{} // closed while the link flows; replaced while blackholed
	blackhole bool
	back      chan struct{} // the same, for the target-to-client direction alone
	backHole  bool
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// Start listens on a free port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	flowing := make(chan struct{})
	close(flowing)
	p := &Proxy{ln: ln, target: target, holes: flowing, back: flowing, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every chunk by latency ± jitter, in order.
func (p *Proxy) SetLatency(latency, jitter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency, p.jitter = latency, jitter
}

// Blackhole stops (on) or resumes (off) all forwarding.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.blackhole {
		return
	}
	p.blackhole = on
	if on {
		p.holes = make(chan struct{})
	} else {
		close(p.holes)
	}
}

// BlackholeReplies stops (on) or resumes (off) forwarding from the target
// to the clients, while what clients send still reaches the target: a
// request is received and handled, its reply held until off.
func (p *Proxy) BlackholeReplies(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.backHole {
		return
	}
	p.backHole = on
	if on {
		p.back = make(chan struct{})
	} else {
		close(p.back)
	}
}

// Reset closes every connection abruptly (RST).
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	if p.blackhole {
		p.blackhole = false
		close(p.holes)
	}
	if p.backHole {
		p.backHole = false
		close(p.back)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Reset()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	p.waitFlowing(false)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, true) || !p.track(server, true) {
		client.Close()
		server.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, false) }()
	go func() { defer wg.Done(); p.pipe(client, server, true) }()
	wg.Wait()
	p.track(client, false)
	p.track(server, false)
}

// waitFlowing blocks while the link is blackholed and, for the
// target-to-client direction (back), while replies are.
func (p *Proxy) waitFlowing(back bool) {
	for {
		p.mu.Lock()
		holes, replies := p.holes, p.back
		p.mu.Unlock()
		<-holes
		if back {
			<-replies
		}
		p.mu.Lock()
		flowing := !p.blackhole && (!back || !p.backHole)
		p.mu.Unlock()
		if flowing {
			return
		}
	}
}

type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst, chunk by chunk, through the faults; back is the
// target-to-client direction.
func (p *Proxy) pipe(dst, src net.Conn, back bool) {
	defer dst.Close()
	defer src.Close()
	queue := make(chan chunk, 64)
	done := make(chan struct{})
	go func() { // the writer: in order, each chunk at its time
		defer close(done)
		for c := range queue {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			p.waitFlowing(back)
			if _, err := dst.Write(c.data); err != nil {
				for range queue {
				}
				return
			}
		}
	}()
	var last time.Time
	buf := make([]byte, 32<<10)
	for {
		p.waitFlowing(back)
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			lat, jit := p.latency, p.jitter
			p.mu.Unlock()
			at := time.Now().Add(lat)
			if jit > 0 {
				at = at.Add(time.Duration(rand.Int64N(int64(2*jit))) - jit)
			}
			if at.Before(last) {
				at = last
			}
			last = at
			queue <- chunk{data: append([]byte(nil), buf[:n]...), at: at}
		}
		if err != nil {
			close(queue)
			<-done
			if err != io.EOF {
				return
			}
			return
		}
	}
}
