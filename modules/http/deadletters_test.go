package httpmod_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/catga-go/catga/catgatest"
	"github.com/catga-go/catga/cqrs"
	"github.com/catga-go/catga/cqrs/memory"
	httpmod "github.com/catga-go/catga/modules/http"
)

type Refund struct {
	OrderID string `json:"order_id"`
}

const adminToken = "s3cret-admin-token-0123"

// deadLetterBus is a bus whose Refund handler fails for good the first time.
func deadLetterBus(t *testing.T) (*cqrs.Bus, chan string) {
	t.Helper()
	tr := memory.New(memory.Options{})
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	handled := make(chan string, 4)
	failed := false
	bus, err := cqrs.New(cqrs.Options{Service: "billing", Instance: "b1", Transport: tr},
		cqrs.HandleEvent(cqrs.EventHandlerFunc[Refund](func(_ context.Context, r Refund) error {
			if !failed {
				failed = true
				return cqrs.Permanent(errors.New("bank offline"))
			}
			handled <- r.OrderID
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })
	if err := bus.Publish(context.Background(), Refund{OrderID: "o1"}); err != nil {
		t.Fatal(err)
	}
	dls, _ := bus.DeadLetters()
	catgatest.Eventually(t, 5*time.Second, "no dead letter", func() bool {
		list, _ := dls.ListDeadLetters(context.Background(), "", 0)
		return len(list) == 1
	})
	return bus, handled
}

func adminReq(method, path, token string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestDeadLetterRoutes_OffByDefault(t *testing.T) {
	bus, _ := deadLetterBus(t)
	s := newServer(t, httpmod.Config{}, nil)
	if s.MountDeadLetters(bus) {
		t.Fatal("admin routes mounted without HTTP_ADMIN_TOKEN")
	}
	problemOf(t, do(t, s.Handler(), adminReq(http.MethodGet, "/catga/deadletters", adminToken)), http.StatusNotFound)
}

func TestDeadLetterRoutes_NeedTheToken(t *testing.T) {
	bus, _ := deadLetterBus(t)
	s := newServer(t, httpmod.Config{AdminToken: adminToken}, nil)
	if !s.MountDeadLetters(bus) {
		t.Fatal("admin routes not mounted with a token")
	}
	for _, token := range []string{"", "wrong-token-wrong-token", adminToken + "x"} {
		rec := do(t, s.Handler(), adminReq(http.MethodGet, "/catga/deadletters", token))
		problemOf(t, rec, http.StatusUnauthorized)
		if rec.Header().Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
}

func TestDeadLetterRoutes_ListGetReplay(t *testing.T) {
	bus, handled := deadLetterBus(t)
	s := newServer(t, httpmod.Config{AdminToken: adminToken}, nil)
	s.MountDeadLetters(bus)

	rec := do(t, s.Handler(), adminReq(http.MethodGet, "/catga/deadletters?service=billing", adminToken))
	var list struct {
		DeadLetters []httpmod.DeadLetterView `json:"dead_letters"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); rec.Code != http.StatusOK || err != nil || len(list.DeadLetters) != 1 {
		t.Fatalf("list = %d %s", rec.Code, rec.Body)
	}
	dl := list.DeadLetters[0]
	if dl.Message != "Refund" || dl.Service != "billing" || dl.Error != "bank offline" || dl.Attempts != 1 || string(dl.Payload) != `{"order_id":"o1"}` {
		t.Fatalf("dead letter %+v", dl)
	}
	if rec := do(t, s.Handler(), adminReq(http.MethodGet, "/catga/deadletters/"+dl.ID, adminToken)); rec.Code != http.StatusOK {
		t.Fatalf("get = %d %s", rec.Code, rec.Body)
	}
	problemOf(t, do(t, s.Handler(), adminReq(http.MethodGet, "/catga/deadletters?limit=0", adminToken)), http.StatusUnprocessableEntity)

	if rec := do(t, s.Handler(), adminReq(http.MethodPost, "/catga/deadletters/"+dl.ID+"/replay", adminToken)); rec.Code != http.StatusAccepted {
		t.Fatalf("replay = %d %s", rec.Code, rec.Body)
	}
	select {
	case id := <-handled:
		if id != "o1" {
			t.Fatalf("replayed %s, want o1", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the replayed message was not handled")
	}
	problemOf(t, do(t, s.Handler(), adminReq(http.MethodPost, "/catga/deadletters/"+dl.ID+"/replay", adminToken)), http.StatusNotFound)
	problemOf(t, do(t, s.Handler(), adminReq(http.MethodGet, "/catga/deadletters/"+dl.ID, adminToken)), http.StatusNotFound)
}

func TestConfig_ShortAdminTokenRefusedAndNeverPrinted(t *testing.T) {
	if err := (httpmod.Config{AdminToken: "short"}).WithDefaults().Validate(); err == nil {
		t.Fatal("a 5-character admin token was accepted")
	}
	c := httpmod.Config{AdminToken: adminToken}
	if s := c.String(); s == "" || contains(s, adminToken) {
		t.Fatalf("Config.String() = %q shows the token", s)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
