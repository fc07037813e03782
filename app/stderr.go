package app

import "os"

// stderr is where Run reports a config error, before any logger exists.
var stderr = os.Stderr
