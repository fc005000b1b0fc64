// Package stdnet makes the -overlay with which guests/go/build gives Go's own net package the
// host's network on wasip1 (and os.Hostname the agent's host name): net.Dial, net.Dialer, net.LookupHost and everything built on them
// (crypto/tls.Dial, a plugin's own http.Transport, database and queue clients) dial through
// the same wasi:sockets imports, the same wasm_allow_net policy and deadlines as
// outwasm/wasinet, with the plugin's source unchanged.
//
// On wasip1, std net's sockets are an in-process fake (net_fake.go, fd_fake.go) and its
// resolver reaches only that fake. The overlay keeps those files, read from the Go toolchain
// that builds (nothing of Go's source is carried here), renames the few declarations that
// decide where a socket goes, and adds net_outwasm.go.in, which redefines them: a dialed
// socket or a lookup goes to hooks that outwasm/wasinet sets (go:linkname) when it is linked
// in; listening, and everything without the hooks, stays in the fake. The renames are found on
// the syntax tree and applied as byte edits, so the files are otherwise Go's own; a toolchain
// whose net lacks one of them is refused, naming it.
package stdnet

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed net_outwasm.go.in
var netOutwasm []byte

//go:embed os_outwasm.go.in
var osOutwasm []byte

// rename is one declaration of std the overlay renames: the function (or method of recv) name
// in the file pkg/file of GOROOT/src becomes to.
type rename struct {
	file, recv, name, to string
}

var renames = []rename{
	{"net/net_fake.go", "", "socket", "fakeSocket"},
	{"net/fd_fake.go", "netFD", "Read", "fakeRead"},
	{"net/fd_fake.go", "netFD", "Write", "fakeWrite"},
	{"net/fd_fake.go", "netFD", "Close", "fakeClose"},
	{"net/fd_fake.go", "netFD", "shutdown", "fakeShutdown"},
	{"net/fd_fake.go", "netFD", "SetDeadline", "fakeSetDeadline"},
	{"net/fd_fake.go", "netFD", "SetReadDeadline", "fakeSetReadDeadline"},
	{"net/fd_fake.go", "netFD", "SetWriteDeadline", "fakeSetWriteDeadline"},
	{"net/lookup_unix.go", "Resolver", "lookupHost", "goosLookupHost"},
	{"net/lookup_unix.go", "Resolver", "lookupIP", "goosLookupIP"},
	// os.Hostname answers the agent's host name once the host has told it (outwasm sets it at
	// Init), not wasip1's constant "wasip1": log/syslog and others put it in what they send.
	{"os/sys_bsd.go", "", "hostname", "goosHostname"},
}

// added are the files the overlay adds, by path under GOROOT/src.
var added = map[string][]byte{
	"net/net_outwasm.go":     netOutwasm,
	"os/hostname_outwasm.go": osOutwasm,
}

// hostField is added to fd_fake.go's netFD: the host's socket, nil for a fake one.
const hostField = "\n\t// host is the host's socket (net_outwasm.go); nil for the fake network's.\n\thost outwasmConn\n"

// Overlay writes the overlay for the toolchain at goroot into dir and answers the path of its
// JSON file (go build -overlay). extra maps more paths (files added to other packages) to
// their contents.
func Overlay(goroot, dir string, extra map[string][]byte) (string, error) {
	src := filepath.Join(goroot, "src")
	replace := map[string]string{}
	write := func(target string, content []byte) error {
		backing := filepath.Join(dir, fmt.Sprintf("%d-%s.go.txt", len(replace), strings.TrimSuffix(filepath.Base(target), ".go")))
		if err := os.WriteFile(backing, content, 0o644); err != nil {
			return fmt.Errorf("failed to write the overlay file %s: %w", backing, err)
		}
		replace[target] = backing
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", dir, err)
	}
	files := []string{}
	for _, r := range renames {
		if !slices.Contains(files, r.file) {
			files = append(files, r.file)
		}
	}
	for _, file := range files {
		path := filepath.Join(src, file)
		src, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("failed to read Go's %s (is this Go 1.25 or later?): %w", path, err)
		}
		edited, err := edit(path, src)
		if err != nil {
			return "", err
		}
		if err := write(path, edited); err != nil {
			return "", err
		}
	}
	for file, content := range added {
		if err := write(filepath.Join(src, file), content); err != nil {
			return "", err
		}
	}
	for target, content := range extra {
		if err := write(target, content); err != nil {
			return "", err
		}
	}
	out, err := json.MarshalIndent(map[string]any{"Replace": replace}, "", "  ")
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(dir, "overlay.json")
	return overlay, os.WriteFile(overlay, out, 0o644)
}

// edit applies the renames of one file of std net (and the host field to netFD's struct).
type byteEdit struct {
	at, end int
	text    string
}

func edit(path string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("failed to parse Go's %s: %w", path, err)
	}
	base := filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path))
	var edits []byteEdit
	offset := func(p token.Pos) int { return fset.Position(p).Offset }
	for _, r := range renames {
		if r.file != base {
			continue
		}
		found := false
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Name.Name != r.name || receiver(fn) != r.recv {
				continue
			}
			found = true
			edits = append(edits, byteEdit{offset(fn.Name.Pos()), offset(fn.Name.End()), r.to})
		}
		if !found {
			what := r.name
			if r.recv != "" {
				what = "(*" + r.recv + ")." + r.name
			}
			return nil, fmt.Errorf("Go's %s has no %s: this toolchain's std is not the one the overlay knows (Go 1.25, 1.26)", path, what)
		}
	}
	if base == "net/fd_fake.go" {
		found := false
		ast.Inspect(file, func(n ast.Node) bool {
			if spec, ok := n.(*ast.TypeSpec); ok && spec.Name.Name == "netFD" {
				if st, ok := spec.Type.(*ast.StructType); ok {
					found = true
					edits = append(edits, byteEdit{offset(st.Fields.Closing), offset(st.Fields.Closing), hostField})
				}
			}
			return true
		})
		if !found {
			return nil, fmt.Errorf("Go's %s has no struct netFD: this toolchain's net is not the one the overlay knows", path)
		}
	}
	slices.SortFunc(edits, func(a, b byteEdit) int { return b.at - a.at })
	out := slices.Clone(src)
	for _, e := range edits {
		out = slices.Concat(out[:e.at], []byte(e.text), out[e.end:])
	}
	return out, nil
}

// receiver is the type name of fn's receiver ("" for a function).
func receiver(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return ""
	}
	t := fn.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
