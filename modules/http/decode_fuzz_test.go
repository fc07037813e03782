package httpmod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
)

// Bid is a command with fields of several JSON shapes, for the fuzzers.
type Bid struct {
	Customer string    `json:"customer"`
	Count    int       `json:"count"`
	Rush     bool      `json:"rush"`
	Lines    []BidLine `json:"lines"`
}

type BidLine struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

// Validate refuses a bid without a customer or with a negative quantity:
// the 422 of FuzzCommand.
func (b Bid) Validate() error {
	if b.Customer == "" {
		return errors.New("customer is required")
	}
	for i, l := range b.Lines {
		if l.Qty < 0 {
			return fmt.Errorf("lines[%d].qty is negative", i)
		}
	}
	return nil
}

// fuzzBodyLimit is the body limit of both fuzzers: small, so that the
// mutator reaches it.
const fuzzBodyLimit = 4096

// seedBodies are the f.Add seeds of both fuzzers; testdata/fuzz holds more.
var seedBodies = []string{
	`{"customer":"c1","count":2,"rush":true,"lines":[{"sku":"A","qty":2,"price":9.99}]}`,
	``,
	`{"customer":"c1","lines":[{"sku":`,
	`{"customer":"c1"} x`,
	`{"count":1e400}`,
	`{"customer":"\u00e9\ud800","lines":[{"qty":-1}]}`,
	`{"customer":"` + strings.Repeat("z", fuzzBodyLimit) + `"}`,
}

// FuzzDecode checks Decode against encoding/json: it never panics, fails
// only with a 400 or 413 RequestError, and accepts exactly the bodies within
// the limit that json.Unmarshal accepts, with the same value.
func FuzzDecode(f *testing.F) {
	for _, b := range seedBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Body = http.MaxBytesReader(nil, req.Body, fuzzBodyLimit)
		got, err := httpmod.Decode[Bid](req)

		var want Bid
		jsonErr := json.Unmarshal(body, &want)
		over := len(body) > fuzzBodyLimit
		if err == nil {
			switch {
			case over:
				t.Fatalf("Decode accepted a %d byte body over the %d byte limit", len(body), fuzzBodyLimit)
			case jsonErr != nil:
				t.Fatalf("Decode accepted %q, which json.Unmarshal refuses: %v", body, jsonErr)
			case !reflect.DeepEqual(got, want):
				t.Fatalf("Decode of %q: got %+v, json.Unmarshal got %+v", body, got, want)
			}
			return
		}
		var re *httpmod.RequestError
		if !errors.As(err, &re) {
			t.Fatalf("Decode error: got %T %v, want a *httpmod.RequestError", err, err)
		}
		switch {
		case re.Status == http.StatusRequestEntityTooLarge && !over:
			t.Fatalf("Decode said a %d byte body is over the %d byte limit: %v", len(body), fuzzBodyLimit, err)
		case re.Status == http.StatusBadRequest && !over && jsonErr == nil:
			t.Fatalf("Decode refused %q, which json.Unmarshal accepts: %v", body, err)
		case re.Status == http.StatusBadRequest && over && !malformedWithin(t, body[:fuzzBodyLimit]):
			t.Fatalf("Decode called a %d byte body malformed, but its first %d bytes, all it may read, are fine: %v", len(body), fuzzBodyLimit, err)
		case re.Status != http.StatusBadRequest && re.Status != http.StatusRequestEntityTooLarge:
			t.Fatalf("Decode error status: got %d, want 400 or 413 (%v)", re.Status, err)
		}
		if wantCode := map[int]string{400: httpmod.CodeMalformed, 413: httpmod.CodeTooLarge}[re.Status]; re.Code != wantCode {
			t.Errorf("%d code: got %q, want %q", re.Status, re.Code, wantCode)
		}
	})
}

// malformedWithin reports whether the first bytes of a body, all a reader
// under the body limit sees, already show it is no Bid: a syntax error, a
// value of the wrong type, or more than whitespace after the value. Only
// then may a body over the limit be a 400 rather than a 413. (A 413 is
// right for any body over the limit: Decode may also read on into a second
// value before it can say there is one.)
func malformedWithin(t *testing.T, prefix []byte) bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(prefix))
	var v Bid
	err := dec.Decode(&v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax), errors.As(err, &typ):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return false // the value goes on past the limit
	case err != nil:
		t.Fatalf("json.Decoder on %q: unexpected error %T %v", prefix, err, err)
	}
	return len(bytes.TrimLeft(prefix[dec.InputOffset():], " \t\r\n")) > 0
}

// FuzzCommand posts fuzzed bodies, with a Content-Length or chunked, to a
// Command route on a real server handler: every answer is 201, 400, 413 or
// 422 with a JSON body, a problem for every 4xx, and the status follows from
// what encoding/json and Validate make of the body.
func FuzzCommand(f *testing.F) {
	for _, b := range seedBodies {
		f.Add([]byte(b), false)
		f.Add([]byte(b), true)
	}
	bus, err := cqrs.New(cqrs.Options{Dispatch: cqrs.DefaultDispatch(nil)},
		cqrs.HandleCommand(cqrs.CommandHandlerFunc[Bid, string](func(_ context.Context, b Bid) (string, error) {
			return "bid-" + b.Customer, nil
		})))
	if err != nil {
		f.Fatalf("cqrs.New: %v", err)
	}
	s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0", MaxBodyBytes: fuzzBodyLimit}, nil, nil)
	if err != nil {
		f.Fatalf("httpmod.New: %v", err)
	}
	s.Mount(httpmod.MountFunc(func(r chi.Router) {
		r.Post("/bids", httpmod.Command[Bid, string](bus, http.StatusCreated, func(id string) any {
			return map[string]string{"id": id}
		}))
	}))
	h := s.Handler()

	f.Fuzz(func(t *testing.T, body []byte, chunk bool) {
		var req *http.Request
		if chunk {
			req = chunked(http.MethodPost, "/bids", string(body))
		} else {
			req = httptest.NewRequest(http.MethodPost, "/bids", bytes.NewReader(body))
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		var want Bid
		wantStatus := http.StatusCreated
		switch {
		case len(body) > fuzzBodyLimit:
			wantStatus = http.StatusRequestEntityTooLarge
		case json.Unmarshal(body, &want) != nil:
			wantStatus = http.StatusBadRequest
		case want.Validate() != nil:
			wantStatus = http.StatusUnprocessableEntity
		}
		// A chunked body is read up to the limit: what it holds there may
		// show it malformed first.
		malformedFirst := wantStatus == http.StatusRequestEntityTooLarge && chunk &&
			rec.Code == http.StatusBadRequest && malformedWithin(t, body[:fuzzBodyLimit])
		if rec.Code != wantStatus && !malformedFirst {
			t.Fatalf("POST %d bytes (chunked %v): got %d %s, want %d", len(body), chunk, rec.Code, rec.Body, wantStatus)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%d body is not JSON: %q", rec.Code, rec.Body)
		}
		ct := rec.Header().Get("Content-Type")
		if rec.Code == http.StatusCreated {
			var got map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &got)
			if ct != "application/json" {
				t.Errorf("201 Content-Type: got %q, want application/json", ct)
			}
			if id := "bid-" + want.Customer; got["id"] != id {
				t.Errorf("201 body: got id %q, want %q", got["id"], id)
			}
			return
		}
		if ct != "application/problem+json" {
			t.Errorf("%d Content-Type: got %q, want application/problem+json", rec.Code, ct)
		}
		var p httpmod.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("decode problem %q: %v", rec.Body, err)
		}
		wantCode := map[int]string{400: httpmod.CodeMalformed, 413: httpmod.CodeTooLarge, 422: string(cqrs.CodeInvalid)}[rec.Code]
		if p.Status != rec.Code || p.Code != wantCode || p.RequestID == "" {
			t.Errorf("problem: got %+v, want status %d, code %q and a request id", p, rec.Code, wantCode)
		}
	})
}
