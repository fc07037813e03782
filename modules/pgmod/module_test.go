package pgmod_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/catga-go/catga"
	"github.com/catga-go/catga/cqrs"
	httpmod "github.com/catga-go/catga/modules/http"
	"github.com/catga-go/catga/modules/pgmod"
	"github.com/catga-go/catga/modules/pgmod/pgtest"
)

type CreateThing struct{ Name string }
type ThingCreated struct{ Name string }

// With pgmod.Module, a command handler that writes and publishes in one Tx
// has its event delivered after commit by the module's relay, and /ready
// includes the database.
func TestModule_TxPublishIsRelayedAfterCommit(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.Shared(t).NewDatabase(t))
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("CATGA_SERVICE", "things")
	var mu sync.Mutex
	var got []string
	var bus *cqrs.Bus
	var db *pgmod.DB
	var hs *httpmod.Server
	app := fxtest.New(t, catga.Module, pgmod.Module,
		cqrs.Command[CreateThing, string](func(db *pgmod.DB, bus *cqrs.Bus) cqrs.CommandHandlerFunc[CreateThing, string] {
			return func(ctx context.Context, c CreateThing) (string, error) {
				return c.Name, db.Tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS things (name text PRIMARY KEY)`); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `INSERT INTO things VALUES ($1)`, c.Name); err != nil {
						return err
					}
					return bus.Publish(ctx, ThingCreated(c))
				})
			}
		}),
		cqrs.Event[ThingCreated](func(_ context.Context, e ThingCreated) error {
			mu.Lock()
			got = append(got, e.Name)
			mu.Unlock()
			return nil
		}),
		fx.Populate(&bus, &db, &hs),
	)
	app.RequireStart()
	defer app.RequireStop()
	defer http.DefaultClient.CloseIdleConnections()

	start := time.Now()
	if _, err := cqrs.Send[string](context.Background(), bus, CreateThing{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	t.Logf("commit to delivery: %v", time.Since(start).Round(time.Millisecond))
	// The relay removes a row after its publish returns, and the memory
	// transport may deliver before that: the row goes soon after delivery.
	waitFor(t, "the relayed row removed from the outbox", func() bool {
		d, err := db.Outbox().Depth(context.Background())
		return err == nil && d == 0
	})
	resp, err := http.Get("http://" + hs.Addr() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]any `json:"checks"`
	}
	_ = jsonDecode(resp, &body)
	if resp.StatusCode != 200 {
		t.Fatalf("/ready %d", resp.StatusCode)
	}
	if _, ok := body.Checks["postgres"]; !ok {
		t.Fatalf("/ready checks %v: want a postgres check", body.Checks)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
