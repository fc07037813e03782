package devhost

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"sync"
)

// mux writes the lines of many processes to one writer, each behind its
// coloured prefix, never interleaving two lines.
type mux struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
	width int
}

func newMux(w io.Writer, color bool) *mux { return &mux{w: w, color: color, width: 20} }

var palette = []int{31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96}

func (m *mux) paint(key, s string) string {
	if !m.color {
		return s
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return fmt.Sprintf("\x1b[%dm%s\x1b[0m", palette[h.Sum32()%uint32(len(palette))], s)
}

// writer returns a function writing lines behind prefix, coloured by key
// (all replicas of a service share a colour).
func (m *mux) writer(prefix, key string) func(string) {
	if key == "" {
		key = prefix
	}
	return func(line string) {
		m.mu.Lock()
		defer m.mu.Unlock()
		p := prefix
		if len(p) < m.width {
			p += strings.Repeat(" ", m.width-len(p))
		}
		fmt.Fprintf(m.w, "%s | %s\n", m.paint(key, p), line)
	}
}

// system writes a line of the host's own.
func (m *mux) system(who, format string, args ...any) {
	m.writer(who, "host")(fmt.Sprintf(format, args...))
}

// block writes text as it is, in one piece.
func (m *mux) block(text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprint(m.w, text)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lines is an io.Writer handing each complete line to write, for a
// process whose output goes through a writer of its own; flush hands over
// the rest. It takes one Write at a time.
type lines struct {
	write func(string)
	buf   []byte
}

func (l *lines) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.write(strings.TrimRight(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
}

func (l *lines) flush() {
	if len(l.buf) > 0 {
		l.write(string(l.buf))
		l.buf = nil
	}
}
