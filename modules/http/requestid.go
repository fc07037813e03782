package httpmod

import (
	"crypto/rand"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/catga-go/catga/internal/lazyctx"
)

// requestIDs gives each request without an X-Request-Id one of the form
// "<instance>/<random>-000042": the instance says which replica served it
// (in Kubernetes and under devhost HOSTNAME names the replica, where the OS
// host name may not), the random part tells its restarts apart. The id is
// stored where middleware.GetReqID finds it.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs(instance string) *requestIDs {
	if instance == "" {
		instance = os.Getenv("HOSTNAME")
	}
	if instance == "" {
		instance, _ = os.Hostname()
	}
	if instance == "" {
		instance = "localhost"
	}
	return &requestIDs{prefix: instance + "/" + rand.Text()[:10]}
}

// next is the next id: fmt.Sprintf("%s-%06d", prefix, n) in one allocation.
func (ids *requestIDs) next() string {
	var buf [96]byte
	b := append(append(buf[:0], ids.prefix...), '-')
	n := ids.n.Add(1)
	for p := uint64(100000); p > 1 && n < p; p /= 10 {
		b = append(b, '0')
	}
	return string(strconv.AppendUint(b, n, 10))
}

func (ids *requestIDs) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(middleware.RequestIDHeader)
		if id == "" {
			id = ids.next()
		}
		next.ServeHTTP(w, r.WithContext(&request{Ctx: lazyctx.Ctx{Parent: r.Context()}, id: id}))
	})
}
