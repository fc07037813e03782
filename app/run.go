package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/fx"
)

// Run builds the app from opts, starts it within Config.StartTimeout, waits
// for SIGINT or SIGTERM, and stops it within Config.StopTimeout. It returns
// nil after a clean stop; main exits with 0 then and with 1 otherwise:
//
//	func main() {
//		if err := app.Run(catga.Module, orders.Module); err != nil {
//			os.Exit(1)
//		}
//	}
//
// Errors are logged before they are returned.
func Run(opts ...fx.Option) error {
	cfg, err := LoadConfig()
	if err != nil {
		err = fmt.Errorf("config: %w", err)
		fmt.Fprintln(stderr, "catga: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return err
	}
	// SIGINT and SIGTERM are caught from here on: fx starts relaying them
	// only once its start hooks have run, and one that came in between (the
	// "started" line is the last hook's) would otherwise end the process
	// at once, with no drain.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	a := fx.New(append(opts, fx.StartTimeout(cfg.StartTimeout), fx.StopTimeout(cfg.StopTimeout))...)
	// Start returns the error of a.New too; Module's fx logger reports
	// either in one line.
	startCtx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return err
	}
	select {
	case <-a.Wait():
	case <-sigs:
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.StopTimeout)
	defer cancelStop()
	if err := a.Stop(stopCtx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("app: stop took longer than CATGA_STOP_TIMEOUT %v: %w", cfg.StopTimeout, err)
		}
		return err
	}
	return nil
}
