package pgserver

import (
	"io"
	"os"
	"strings"
	"sync"
)

// tailSize is how much of a server's latest output an error quotes.
const tailSize = 4 << 10

// output is where initdb and postgres write: Options.Log or the log file,
// and a tail of the latest run for errors. It never fails a write: a
// server whose log cannot be written must not get EPIPE on its stderr.
type output struct {
	w    io.Writer // Options.Log; nil for the file at path
	path string

	mu   sync.Mutex
	file *os.File // opened on the first write, closed when a run ends
	last []byte
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = append(o.last, p...)
	if n := len(o.last) - tailSize; n > 0 {
		o.last = append(o.last[:0], o.last[n:]...)
	}
	if o.w != nil {
		_, _ = o.w.Write(p)
		return len(p), nil
	}
	if o.file == nil {
		f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return len(p), nil
		}
		o.file = f
	}
	_, _ = o.file.Write(p)
	return len(p), nil
}

// reset forgets the tail: a new run begins.
func (o *output) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = o.last[:0]
}

// tail is the latest output, from a line's beginning.
func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := string(o.last)
	if len(o.last) == tailSize {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return strings.TrimRight(s, "\n")
}

// close closes the log file, if open.
func (o *output) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.file != nil {
		_ = o.file.Close()
		o.file = nil
	}
}
