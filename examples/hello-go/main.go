// hello-go: a sandcron job in Go, as a WASI command (GOOS=wasip1 GOARCH=wasm).
//
// Go's component tooling needs modules from a proxy this build cannot reach, and a Go
// reactor component trips the preview1 adapter, so Go jobs take the command shape (F2):
// exit code 0 is success, anything else a retryable failure. A command has no `state`;
// it gets the manifest's [config] as SANDCRON_CONFIG_<KEY> environment variables and a
// manual trigger's payload on stdin. It prints "{greeting} (Go, job {name})"; the
// payload "fail" makes it exit with code 2.
// Build: bash build.sh
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	greeting := os.Getenv("SANDCRON_CONFIG_GREETING")
	if greeting == "" {
		greeting = "hello"
	}
	payload, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hello-go: cannot read the payload: %v\n", err)
		os.Exit(1)
	}
	if strings.TrimSpace(string(payload)) == "fail" {
		fmt.Fprintln(os.Stderr, "hello-go: payload asked for a failure")
		os.Exit(2)
	}
	fmt.Printf("%s (Go, job %s)\n", greeting, os.Args[0])
}
