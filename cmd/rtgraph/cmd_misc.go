package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/rtgraph/rtgraph/internal/config"
)

func versionString() string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	return fmt.Sprintf("rtgraph %s%s %s %s/%s", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdConfig(args []string, stdout io.Writer, environ []string) error {
	if len(args) == 0 || args[0] != "print" {
		return fmt.Errorf("%w: config needs a subcommand: print", errUsage)
	}
	fs, path := newFlags("config print", stdout)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	return config.Print(stdout, cfg)
}

func cmdHealth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flagSet("health", stdout)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "health endpoint to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("health: %s answered %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, resp.Status)
	return nil
}
