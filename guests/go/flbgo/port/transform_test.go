package port

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// port runs Package on one file and answers the rewritten file and the generated one.
func port(t *testing.T, src string) (string, string) {
	t.Helper()
	out, entry, err := Package([]File{{Name: "plugin.go", Src: []byte(src)}})
	if err != nil {
		t.Fatalf("the transform refused the plugin: %v", err)
	}
	for name, text := range map[string][]byte{"plugin.go": out[0], EntryFile: entry} {
		if _, err := parser.ParseFile(token.NewFileSet(), name, text, 0); err != nil {
			t.Fatalf("the transform made invalid Go in %s: %v\n%s", name, err, text)
		}
	}
	return string(out[0]), string(entry)
}

// refused runs Package on one file and answers its errors.
func refused(t *testing.T, src string) Errors {
	t.Helper()
	_, _, err := Package([]File{{Name: "plugin.go", Src: []byte(src)}})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("expected the transform to refuse the plugin, got %v", err)
	}
	return errs
}

// The entry points and forms of a typical plugin, as fluent-bit-go's examples write them.
const typical = `package main

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "typical", "a typical plugin")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	host, _ := os.Hostname()
	output.FLBPluginSetContext(plugin, host)
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	cs := C.CString("x")
	defer C.free(unsafe.Pointer(cs))
	fmt.Fprintln(os.Stderr, C.GoString(tag), int(length), C.GoString(cs), C.size_t(1))
	return output.FLB_OK
}

//export FLBPluginFlush
func FLBPluginFlush(data unsafe.Pointer, length C.int, tag *C.char) int {
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int {
	return output.FLB_OK
}

func main() {}
`

func TestRewritesTheCgoFormsAndImportsInPlace(t *testing.T) {
	out, _ := port(t, typical)
	for _, want := range []string{
		`import C "outwasm/flbgo/cgo"`,
		`"outwasm/flbgo/output"`,
		`func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.Int, tag *C.Char) int {`,
		`cs := C.CString("x")`,
		`defer C.Free(unsafe.Pointer(cs))`,
		`C.GoString(tag), int(length), C.GoString(cs), C.SizeT(1))`,
		`host, _ := output.Hostname()`,
		`"os"`, // still used by os.Stderr
	} {
		if !strings.Contains(out, want) {
			t.Errorf("expected %q in the rewritten file:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fluent-bit-go") || strings.Contains(out, "os.Hostname") {
		t.Errorf("fluent-bit-go and os.Hostname are gone:\n%s", out)
	}
	// Every line stays where it was: errors and panics name the user's lines.
	if strings.Count(out, "\n") != strings.Count(typical, "\n") {
		t.Errorf("the rewritten file has %d lines, the plugin %d", strings.Count(out, "\n"), strings.Count(typical, "\n"))
	}
	inLines, outLines := strings.Split(typical, "\n"), strings.Split(out, "\n")
	for i := range inLines {
		if strings.HasPrefix(inLines[i], "func ") && strings.Fields(inLines[i])[1] != strings.Fields(outLines[i])[1] {
			t.Errorf("line %d moved: %q became %q", i+1, inLines[i], outLines[i])
		}
	}
}

func TestRegistersTheEntryPointsTheProxyChooses(t *testing.T) {
	_, entry := port(t, typical)
	for _, want := range []string{
		`Register: func(def unsafe.Pointer) int { return int(FLBPluginRegister(def)) },`,
		`Init: func(plugin unsafe.Pointer) int { return int(FLBPluginInit(plugin)) },`,
		`FlushCtx: func(ctx unsafe.Pointer, data unsafe.Pointer, length int, tag string) int { return int(FLBPluginFlushCtx(ctx, data, (C.Int)(length), C.CString(tag))) },`,
		`Exit: func() int { return int(FLBPluginExit()) },`,
		`_ "time/tzdata"`,
		`_ "outwasm/wasinet"`,
	} {
		if !strings.Contains(entry, want) {
			t.Errorf("expected %q in the generated file:\n%s", want, entry)
		}
	}
	// FLBPluginFlushCtx is chosen over FLBPluginFlush, as the agent's proxy does.
	if strings.Contains(entry, "Flush: ") {
		t.Errorf("FLBPluginFlush is not registered beside FLBPluginFlushCtx:\n%s", entry)
	}
}

func TestChoosesExitCtxOverExitAndTakesFlushUnregisterAndGoTypes(t *testing.T) {
	_, entry := port(t, `package main

import (
	"unsafe"
	"github.com/fluent/fluent-bit-go/output"
)

func FLBPluginRegister(def unsafe.Pointer) int { return output.FLBPluginRegister(def, "x", "x") }
func FLBPluginInit(plugin unsafe.Pointer) int   { return output.FLB_OK }
func FLBPluginFlush(data unsafe.Pointer, length int, tag string) int { return output.FLB_OK }
func FLBPluginExit() int { return output.FLB_OK }
func FLBPluginExitCtx(ctx unsafe.Pointer) int { return output.FLB_OK }
func FLBPluginUnregister(def unsafe.Pointer) {}
func main() {}
`)
	for _, want := range []string{
		`Flush: func(data unsafe.Pointer, length int, tag string) int { return int(FLBPluginFlush(data, length, tag)) },`,
		`ExitCtx: func(ctx unsafe.Pointer) int { return int(FLBPluginExitCtx(ctx)) },`,
		`Unregister: func(def unsafe.Pointer) { FLBPluginUnregister(def) },`,
	} {
		if !strings.Contains(entry, want) {
			t.Errorf("expected %q in the generated file:\n%s", want, entry)
		}
	}
	if strings.Contains(entry, "Exit: ") || strings.Contains(entry, `"outwasm/flbgo/cgo"`) {
		t.Errorf("FLBPluginExit is not registered beside FLBPluginExitCtx, and without C types cgo is not imported:\n%s", entry)
	}
}

func TestHostnameOnlyUseKeepsOsImportedBlankAndNamedImports(t *testing.T) {
	out, _ := port(t, `package main

import (
	"unsafe"
	sys "os"
	flb "github.com/fluent/fluent-bit-go/output"
)

var name, _ = sys.Hostname()

func FLBPluginRegister(def unsafe.Pointer) int { return flb.FLBPluginRegister(def, name, "x") }
func FLBPluginInit(plugin unsafe.Pointer) int   { return flb.FLB_OK }
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length int, tag string) int { return flb.FLB_OK }
func main() {}
`)
	for _, want := range []string{`_ "os"`, `flb "outwasm/flbgo/output"`, `var name, _ = flb.Hostname()`} {
		if !strings.Contains(out, want) {
			t.Errorf("expected %q in the rewritten file:\n%s", want, out)
		}
	}
}

func TestHostnameInAFileWithoutTheOutputPackageImportsIt(t *testing.T) {
	out, _, err := Package([]File{
		{Name: "a.go", Src: []byte("package main\n\nimport \"os\"\n\nfunc host() string { h, _ := os.Hostname(); return h }\n")},
		{Name: "b.go", Src: []byte(`package main

import (
	"unsafe"
	"github.com/fluent/fluent-bit-go/output"
)

func FLBPluginRegister(def unsafe.Pointer) int { return output.FLBPluginRegister(def, host(), "x") }
func FLBPluginInit(plugin unsafe.Pointer) int   { return output.FLB_OK }
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length int, tag string) int { return output.FLB_OK }
func main() {}
`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "package main; import flbgo_output \"outwasm/flbgo/output\"\n\nimport _ \"os\"\n\nfunc host() string { h, _ := flbgo_output.Hostname(); return h }\n"
	if string(out[0]) != want {
		t.Errorf("expected\n%s\ngot\n%s", want, out[0])
	}
}

// A local variable named like a package is not the package.
func TestShadowedNamesAreLeftAlone(t *testing.T) {
	out, _ := port(t, `package main

import (
	"C"
	"unsafe"
	"github.com/fluent/fluent-bit-go/output"
)

type host struct{}

func (host) Hostname() (string, error) { return "mine", nil }

func FLBPluginRegister(def unsafe.Pointer) int { os := host{}; n, _ := os.Hostname(); return output.FLBPluginRegister(def, n, "x") }
func FLBPluginInit(plugin unsafe.Pointer) int   { return output.FLB_OK }
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int { return output.FLB_OK }
func main() {}
`)
	if !strings.Contains(out, "n, _ := os.Hostname()") {
		t.Errorf("a local os is not the os package:\n%s", out)
	}
}

func TestRefusesOtherCgoWithTheLineAndTheFix(t *testing.T) {
	errs := refused(t, `package main

/*
#include <stdlib.h>
static int twice(int x) { return 2 * x; }
*/
import "C"

import (
	"unsafe"
	"github.com/fluent/fluent-bit-go/output"
)

func FLBPluginRegister(def unsafe.Pointer) int { return output.FLBPluginRegister(def, "x", "x") }
func FLBPluginInit(plugin unsafe.Pointer) int   { return int(C.twice(1)) }
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int { var s C.struct_stat; _ = s; return output.FLB_OK }
func main() {}
`)
	want := []string{
		"plugin.go:5:1: the cgo preamble holds C code (\"static int twice(int x) { return 2 * x; }\")",
		"plugin.go:15:62: C.twice is C code",
		"plugin.go:16:89: C.struct_stat is C code",
	}
	if len(errs) != len(want) {
		t.Fatalf("expected %d errors, got %v", len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) || !strings.Contains(errs[i].Error(), "(fix: write it in Go") {
			t.Errorf("expected %q..., with the fix, got %q", w, errs[i].Error())
		}
	}
}

func TestRefusesMissingEntryPointsAndWrongSignatures(t *testing.T) {
	errs := refused(t, `package main

import "unsafe"

func FLBPluginInit(plugin unsafe.Pointer, extra int) int { return 1 }
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length int, tag []byte) int { return 1 }
func main() {}
`)
	text := errs.Error()
	for _, want := range []string{
		"plugin.go:1:1: the package defines no FLBPluginRegister, which the agent requires",
		"plugin.go:5:1: FLBPluginInit does not have the signature the agent calls it with, func FLBPluginInit(plugin unsafe.Pointer) int",
		"plugin.go:6:66: FLBPluginFlushCtx's tag is a []byte; the agent passes a *C.char",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("expected %q in:\n%s", want, text)
		}
	}
}

func TestRefusesOtherFluentBitGoPackagesAndNonMainPackages(t *testing.T) {
	errs := refused(t, `package plugin

import "github.com/fluent/fluent-bit-go/input"

var _ = input.FLB_OK
`)
	text := errs.Error()
	for _, want := range []string{
		`plugin.go:1:9: package plugin is not a main package`,
		`plugin.go:3:8: import "github.com/fluent/fluent-bit-go/input": out_wasm runs output plugins`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("expected %q in:\n%s", want, text)
		}
	}
}

// Module works on a copy: the files native cgo builds take, constraints blanked; a file that
// only the native build would take is refused by name and line; the user's files stay as they
// were.
func TestModuleCopiesChoosesFilesAndRefusesExcludedOnes(t *testing.T) {
	dir := t.TempDir()
	write := writer(t, dir)
	write("go.mod", "module example.com/plugin\n\ngo 1.20\n\nrequire github.com/fluent/fluent-bit-go v0.0.0-20230731091245-a7a013e2473c\n\nreplace github.com/fluent/fluent-bit-go => ../fluent-bit-go\n\nreplace example.com/lib => ./lib\n")
	write("go.sum", "")
	write("plugin/main.go", typical)
	write("plugin/cgo.go", "//go:build cgo\n\npackage main\n\nfunc helper() {}\n")
	write("plugin/nocgo.go", "//go:build !cgo\n\npackage main\n\nfunc helper() {}\n")
	write("plugin/main_test.go", "package main\n")
	write("lib/lib.go", "package lib\n\nimport \"C\"\nimport \"github.com/fluent/fluent-bit-go/output\"\n\nfunc Tag(t *C.char) string { _ = output.FLB_OK; return C.GoString(t) }\n")
	write(".git/config", "")
	sdk, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	main, err := Module(filepath.Join(dir, "plugin"), dst, sdk)
	if err != nil {
		t.Fatalf("Module: %v", err)
	}
	if main != filepath.Join(dst, "plugin") {
		t.Errorf("expected the copy's main package at %s, got %s", filepath.Join(dst, "plugin"), main)
	}
	entries, _ := os.ReadDir(main)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "cgo.go main.go "+EntryFile {
		t.Errorf("expected the native build's files and the entry points, got %v", names)
	}
	if cgo, _ := os.ReadFile(filepath.Join(main, "cgo.go")); strings.Contains(string(cgo), "go:build") {
		t.Errorf("the chosen file's constraint is blanked:\n%s", cgo)
	}
	if _, err := os.Stat(filepath.Join(dst, ".git")); err == nil {
		t.Errorf("hidden directories are not copied")
	}
	mod, _ := os.ReadFile(filepath.Join(dst, "go.mod"))
	for _, want := range []string{"go 1.25", "outwasm v0.0.0", "replace outwasm => " + sdk,
		"replace example.com/lib => " + filepath.Join(dir, "lib"), "go.bytecodealliance.org/pkg"} {
		if !strings.Contains(string(mod), want) {
			t.Errorf("expected %q in the copy's go.mod:\n%s", want, mod)
		}
	}
	if strings.Contains(string(mod), "fluent-bit-go") {
		t.Errorf("fluent-bit-go is neither required nor replaced in the copy:\n%s", mod)
	}
	lib, _ := os.ReadFile(filepath.Join(dst, "lib/lib.go"))
	if want := "package lib\n\nimport C \"outwasm/flbgo/cgo\"\nimport \"outwasm/flbgo/output\"\n\nfunc Tag(t *C.Char) string { _ = output.FLB_OK; return C.GoString(t) }\n"; string(lib) != want {
		t.Errorf("the module's other packages are rewritten too; expected\n%s\ngot\n%s", want, lib)
	}
	if user, _ := os.ReadFile(filepath.Join(dir, "plugin/main.go")); string(user) != typical {
		t.Errorf("the user's file changed")
	}

	// Files the Linux build takes for its OS are taken as it takes them (renamed, constraints
	// blanked), in the main package and the module's others; a package with a file of its
	// own for wasip1 keeps Go's choice; one using the Linux system interface is refused.
	write("plugin/linux_only.go", "//go:build linux\n\npackage main\n\nfunc fromLinux() {}\n")
	write("plugin/extra_linux.go", "package main\n\nfunc extra() {}\n")
	write("lib/certs_linux.go", "package lib\n\nfunc pool() {}\n")
	write("ported/a_linux.go", "package ported\n\nfunc a() {}\n")
	write("ported/a_other.go", "//go:build !linux\n\npackage ported\n\nfunc a() {}\n")
	main, err = Module(filepath.Join(dir, "plugin"), dst, sdk)
	if err != nil {
		t.Fatalf("Module with Linux-only files: %v", err)
	}
	for _, f := range []string{"plugin/linux_only_port.go", "plugin/extra_linux_port.go", "lib/certs_linux_port.go",
		"ported/a_linux.go", "ported/a_other.go"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("expected %s in the copy: %v", f, err)
		}
	}
	for _, f := range []string{"plugin/linux_only.go", "plugin/extra_linux.go", "lib/certs_linux.go"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err == nil {
			t.Errorf("%s is taken under its new name only", f)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(main, "linux_only_port.go")); strings.Contains(string(got), "go:build") {
		t.Errorf("the taken file's constraint is blanked:\n%s", got)
	}
	write("plugin/sys_linux.go", "package main\n\nimport \"syscall\"\n\nvar _ = syscall.Getpid\n")
	write("lib/unix_linux.go", "package lib\n\nimport (\n\t\"fmt\"\n\t\"golang.org/x/sys/unix\"\n)\n")
	_, err = Module(filepath.Join(dir, "plugin"), dst, sdk)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("expected one file refused in main, got %v", err)
	}
	if want := filepath.Join(dir, "plugin/sys_linux.go") + ":3:8: the native build takes this Linux-only file, and it imports syscall"; !strings.HasPrefix(errs[0].Error(), want) {
		t.Errorf("expected %q..., got %q", want, errs[0].Error())
	}
	os.Remove(filepath.Join(dir, "plugin/sys_linux.go"))
	_, err = Module(filepath.Join(dir, "plugin"), dst, sdk)
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Error(), "lib/unix_linux.go:5:2: the native build takes this Linux-only file, and it imports golang.org/x/sys/unix") {
		t.Fatalf("expected the other package's file refused, got %v", err)
	}
}

// The usual layout of public plugins (aws/amazon-kinesis-firehose-for-fluent-bit,
// aws/amazon-cloudwatch-logs-for-fluent-bit, newrelic/newrelic-fluent-bit-output): the main
// package at the module's root and the logic in subdirectories importing fluent-bit-go's output
// package; vendor is never rewritten.
func TestModuleRewritesSubpackagesOfAMainPackageAtTheRoot(t *testing.T) {
	dir := t.TempDir()
	write := writer(t, dir)
	write("go.mod", "module example.com/plugin\n\ngo 1.20\n\nrequire github.com/fluent/fluent-bit-go v0.0.0-20230731091245-a7a013e2473c\n")
	write("go.sum", "")
	write("main.go", typical)
	lib := "package lib\n\nimport fluentbit \"github.com/fluent/fluent-bit-go/output\"\n\nconst OK = fluentbit.FLB_OK\n"
	write("lib/lib.go", lib)
	vendored := "package output\n\n/*\nstatic int x(void) { return 1; }\n*/\nimport \"C\"\n"
	write("vendor/github.com/fluent/fluent-bit-go/output/output.go", vendored)
	sdk, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	main, err := Module(dir, dst, sdk)
	if err != nil {
		t.Fatalf("Module: %v", err)
	}
	if main != dst {
		t.Errorf("expected the copy's main package at %s, got %s", dst, main)
	}
	got, _ := os.ReadFile(filepath.Join(dst, "lib/lib.go"))
	if want := strings.Replace(lib, "github.com/fluent/fluent-bit-go/output", "outwasm/flbgo/output", 1); string(got) != want {
		t.Errorf("a subpackage of a main package at the root is rewritten; expected\n%s\ngot\n%s", want, got)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "vendor/github.com/fluent/fluent-bit-go/output/output.go")); string(got) != vendored {
		t.Errorf("vendor is left as it is, got\n%s", got)
	}
}

func TestIsPluginLooksAtImports(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"C\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if plugin, err := IsPlugin(dir); err != nil || plugin {
		t.Errorf("a string \"C\" is no cgo import: %v %v", plugin, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgo.go"), []byte("package main\n\nimport \"C\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if plugin, err := IsPlugin(dir); err != nil || !plugin {
		t.Errorf("import \"C\" is a fluent-bit-go plugin's: %v %v", plugin, err)
	}
}

func TestRaisesOnlyWhatDoesNotBuildForWasip1(t *testing.T) {
	mod := &modFile{}
	for _, r := range [][2]string{
		{"github.com/sirupsen/logrus", "v1.9.0"},
		{"github.com/sirupsen/logrus/hooks", "v1.0.0"},
		{"github.com/aws/aws-sdk-go", "v1.44.0"},
	} {
		mod.Require = append(mod.Require, struct{ Path, Version string }{r[0], r[1]})
	}
	got := raises(mod)
	if len(got) != 1 || got[0].Path != "github.com/sirupsen/logrus" || got[0].From != "v1.9.0" || got[0].To != "v1.9.4" {
		t.Fatalf("expected logrus v1.9.0 raised to v1.9.4 and nothing else, got %+v", got)
	}
	for _, v := range []string{"v1.9.4", "v1.10.2", "v2.0.0"} {
		mod.Require[0].Version = v
		if got := raises(mod); len(got) != 0 {
			t.Errorf("%s builds for wasip1 and is kept, got %+v", v, got)
		}
	}
	for _, v := range []string{"v1.9.3", "v1.9.4-rc.1", "v1.9.4-0.20250101000000-abcdefabcdef", "v1.4.2"} {
		mod.Require[0].Version = v
		if got := raises(mod); len(got) != 1 {
			t.Errorf("%s is older than v1.9.4 and is raised, got %+v", v, got)
		}
	}
}

// writer writes files (their directories made) under dir, failing t on an error.
func writer(t *testing.T, dir string) func(name, text string) {
	return func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
