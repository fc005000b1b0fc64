// Command flbgo-port prepares a fluent-bit-go output plugin for guests/go/build:
//
//	flbgo-port DIR COPY SDK
//
// copies the module holding the plugin's main package DIR to COPY, transforms the copy (package
// outwasm/flbgo/port) to require the Go SDK at SDK, and prints the copy's main package
// directory, for go build to build. The plugin's own files are only read. A plugin written with
// Calyptia's Go SDK (a file imports github.com/calyptia/plugin) is copied with its go.mod
// replacing that module by out_wasm's (port.CalyptiaModule). It prints nothing and
// exits 3 when DIR is neither (no file imports "C", fluent-bit-go or Calyptia's SDK), and
// exits 1 with every construct it cannot take, each as file:line: what (fix: how).
package main

import (
	"fmt"
	"os"

	"outwasm/flbgo/port"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: flbgo-port DIR COPY SDK")
		os.Exit(2)
	}
	plugin, err := port.IsPlugin(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !plugin {
		calyptia, err := port.IsCalyptiaPlugin(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if !calyptia {
			os.Exit(3)
		}
		main, err := port.CalyptiaModule(os.Args[1], os.Args[2], os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(main)
		return
	}
	main, err := port.Module(os.Args[1], os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(main)
}
