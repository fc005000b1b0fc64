package stdnet

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The overlay of the toolchain that runs the test: every renamed declaration found, the files
// added, and std's net and os compiling for wasip1 with it (what guests/go/build relies on).
func TestOverlayOfThisToolchainCompiles(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main")
	path, err := Overlay(runtime.GOROOT(), filepath.Join(dir, "overlay"), map[string][]byte{
		filepath.Join(main, "zz.go"): []byte("package main\n"),
	})
	if err != nil {
		t.Fatalf("Overlay: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var overlay struct{ Replace map[string]string }
	if err := json.Unmarshal(raw, &overlay); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(runtime.GOROOT(), "src")
	for _, file := range []string{"net/net_fake.go", "net/fd_fake.go", "net/lookup_unix.go", "net/net_outwasm.go",
		"os/sys_bsd.go", "os/hostname_outwasm.go"} {
		if overlay.Replace[filepath.Join(src, file)] == "" {
			t.Errorf("the overlay replaces %s: %v", file, overlay.Replace)
		}
	}
	if overlay.Replace[filepath.Join(main, "zz.go")] == "" {
		t.Errorf("the extra file is in the overlay")
	}
	for file, wants := range map[string][]string{
		"net/net_fake.go":    {"func fakeSocket("},
		"net/fd_fake.go":     {"func (fd *netFD) fakeRead(", "func (fd *netFD) fakeSetWriteDeadline(", "host outwasmConn"},
		"net/lookup_unix.go": {"func (r *Resolver) goosLookupHost(", "func (r *Resolver) goosLookupIP("},
		"os/sys_bsd.go":      {"func goosHostname("},
	} {
		edited, err := os.ReadFile(overlay.Replace[filepath.Join(src, file)])
		if err != nil {
			t.Fatal(err)
		}
		original, _ := os.ReadFile(filepath.Join(src, file))
		if strings.Count(string(edited), "\n") != strings.Count(string(original), "\n")+strings.Count(hostFieldIf(file), "\n") {
			t.Errorf("%s: the edits keep Go's lines", file)
		}
		for _, want := range wants {
			if !strings.Contains(string(edited), want) {
				t.Errorf("%s: expected %q", file, want)
			}
		}
	}
	build := exec.Command("go", "build", "-overlay", path, "net", "os")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("std net and os with the overlay do not compile for wasip1: %v\n%s", err, out)
	}
}

func hostFieldIf(file string) string {
	if file == "net/fd_fake.go" {
		return hostField
	}
	return ""
}

// A toolchain whose net lacks a declaration the overlay renames is refused, naming it.
func TestOverlayRefusesAnUnknownToolchain(t *testing.T) {
	goroot := t.TempDir()
	for _, r := range renames {
		path := filepath.Join(goroot, "src", r.file)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		pkg := filepath.Base(filepath.Dir(path))
		if err := os.WriteFile(path, []byte("package "+pkg+"\n\ntype netFD struct{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Overlay(goroot, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "has no socket") {
		t.Fatalf("expected a refusal naming socket, got %v", err)
	}
}
