// Command stdnet-overlay writes the -overlay that gives Go's net package the host's network
// (package outwasm/stdnet) for guests/go/build:
//
//	stdnet-overlay GOROOT DIR [MAIN]
//
// writes the overlay's files and DIR/overlay.json for the toolchain at GOROOT, and prints the
// JSON file's path. With MAIN (the main package's directory), a file is added to that package
// importing outwasm/wasinet, which sets the hooks: the build passes it when the guest links
// net.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"outwasm/stdnet"
)

const hooks = `// Added by guests/go/build: outwasm/wasinet gives Go's net package the host's network.
package main

import _ "outwasm/wasinet"
`

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: stdnet-overlay GOROOT DIR [MAIN]")
		os.Exit(2)
	}
	extra := map[string][]byte{}
	if len(os.Args) == 4 {
		extra[filepath.Join(os.Args[3], "zz_outwasm_stdnet.go")] = []byte(hooks)
	}
	path, err := stdnet.Overlay(os.Args[1], os.Args[2], extra)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stdnet-overlay:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
