package port

import (
	"fmt"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A package may keep code for Linux in files of their own (`_linux.go`, `//go:build linux`)
// beside portable ones, so that GOOS=wasip1 misses a symbol (New Relic's output: systemCertPool
// is defined in nrclient/proxy_linux.go only). The native build is a Linux one, so the port
// takes such a file as Linux takes it, where that is sound:
//   - only files the Linux build takes for its OS (not its architecture: an _amd64.go file is
//     code for a CPU, often beside assembly), and only in the plugin's own module;
//   - only in packages that have no file of their own for wasip1 (one wasip1 takes and Linux
//     does not: then the package made its choice);
//   - only files that do not use the Linux system interface (import syscall, golang.org/x/sys/...
//     or runtime/cgo): those are refused, naming the import.
// A taken file is renamed (proxy_linux.go becomes proxy_linux_port.go, which no GOOS restricts)
// and its build constraints are blanked, lines kept.

// nativeContexts are how the plugin is built natively, and the same OS with wasm's
// architecture (to tell files excluded for the OS from those excluded for the CPU).
func nativeContexts() (native, nativeOnWasm, wasi build.Context) {
	native = build.Default
	native.GOOS, native.CgoEnabled = "linux", true
	nativeOnWasm = native
	nativeOnWasm.GOARCH = "wasm"
	wasi = build.Default
	wasi.GOOS, wasi.GOARCH, wasi.CgoEnabled = "wasip1", "wasm", true
	return
}

// linuxOnly says whether the file name in dir is one the Linux build takes for its OS and
// wasip1 does not.
func linuxOnly(dir, name string) (bool, error) {
	native, onWasm, wasi := nativeContexts()
	for _, c := range []struct {
		ctx  build.Context
		want bool
	}{{native, true}, {onWasm, true}, {wasi, false}} {
		taken, err := c.ctx.MatchFile(dir, name)
		if err != nil || taken != c.want {
			return false, err
		}
	}
	return true, nil
}

// systemImports are the packages that are the Linux system interface.
func systemImport(path string) bool {
	return path == "syscall" || path == "runtime/cgo" || strings.HasPrefix(path, "golang.org/x/sys/")
}

// takeLinux answers the name and source under which wasip1 takes the Linux-only file path, or
// an error naming the import that makes it unsound.
func takeLinux(path string, src []byte) (string, []byte, *Error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly)
	if err == nil {
		for _, spec := range f.Imports {
			if p, _ := strconv.Unquote(spec.Path.Value); systemImport(p) {
				return "", nil, &Error{
					Pos: fset.Position(spec.Pos()),
					Msg: "the native build takes this Linux-only file, and it imports " + p +
						", the Linux system interface, which GOOS=wasip1 does not have",
					Fix: "give wasip1 a file of its own (name_wasip1.go, or a //go:build !linux one)",
				}
			}
		}
	}
	name := strings.TrimSuffix(filepath.Base(path), ".go") + "_port.go"
	return name, StripConstraints(path, src), nil
}

// linuxPackages takes the Linux-only files of the copy's packages other than main (see above).
func linuxPackages(dst, main string) error {
	var errs Errors
	err := filepath.WalkDir(dst, func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if dir != dst && (d.Name() == "vendor" || d.Name() == "testdata" ||
			strings.HasPrefix(d.Name(), "_") || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if dir == main {
			return nil
		}
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			return err
		}
		native, _, wasi := nativeContexts()
		var linux []string
		for _, path := range names {
			name := filepath.Base(path)
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			byNative, err := native.MatchFile(dir, name)
			if err != nil {
				return err
			}
			byWasi, err := wasi.MatchFile(dir, name)
			if err != nil {
				return err
			}
			if byWasi && !byNative {
				return nil // the package has a file of its own for wasip1
			}
			if only, err := linuxOnly(dir, name); err != nil {
				return err
			} else if only {
				linux = append(linux, path)
			}
		}
		for _, path := range linux {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			name, out, e := takeLinux(path, src)
			if e != nil {
				errs = append(errs, e)
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
				return err
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			sayTaken(dst, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// sayTaken tells the author, as the build says a raised module, that a Linux-only file (path,
// under root) is compiled for wasip1: it is code the plugin runs that no GOOS=wasip1 build of
// the unchanged source would.
func sayTaken(root, path string) {
	if rel, err := filepath.Rel(root, path); err == nil {
		path = rel
	}
	fmt.Fprintf(os.Stderr, "flbgo-port: %s taken as the native Linux build takes it (Linux-only, "+
		"and it uses no Linux system interface)\n", path)
}
