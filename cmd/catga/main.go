// Command catga is the Catga CLI: "catga new" scaffolds a service, "catga
// version" prints the version. Every command has --help.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "catga:", err)
		os.Exit(1)
	}
}
