package port

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// EntryFile is the name of the generated file in the copy's main package.
const EntryFile = "zz_flbgo_entry_points.go"

// IsPlugin says whether the main package in dir is a fluent-bit-go plugin: one of its Go files
// imports "C" or fluent-bit-go's output package.
func IsPlugin(dir string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return false, err
	}
	for _, name := range files {
		if plugin, err := importsPlugin(name); err != nil || plugin {
			return plugin, err
		}
	}
	return false, nil
}

// importsPlugin says whether the Go file imports "C" or fluent-bit-go's output package.
func importsPlugin(name string) (bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
	if err != nil {
		return false, err
	}
	for _, spec := range f.Imports {
		if path, _ := strconv.Unquote(spec.Path.Value); path == "C" || path == fluentBitOutput {
			return true, nil
		}
	}
	return false, nil
}

// Module copies the module holding the plugin's main package dir into dst (which it empties
// first) and transforms the copy: the main package's files (those the native cgo build takes;
// a file it takes that wasip1 would not is an error), the generated entry points, and go.mod and
// go.sum, which require the SDK at sdk (the directory of module outwasm) in place of
// fluent-bit-go. It answers the copy's main package directory.
func Module(dir, dst, sdk string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	root, err := moduleRoot(dir)
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if err := copyModule(root, dst); err != nil {
		return "", err
	}
	rel, _ := filepath.Rel(root, dir)
	main := filepath.Join(dst, rel)
	if err := mainPackage(dir, main); err != nil {
		return "", err
	}
	if err := otherPackages(dst, main); err != nil {
		return "", err
	}
	if err := linuxPackages(dst, main); err != nil {
		return "", err
	}
	if err := goMod(root, dst, sdk); err != nil {
		return "", err
	}
	return main, nil
}

// Calyptia is the module of Calyptia's Go plugin SDK, which guests/go/build replaces with
// out_wasm's own (guests/go/calyptia, the same API over the SDK).
const Calyptia = "github.com/calyptia/plugin"

// IsCalyptiaPlugin says whether the main package in dir imports Calyptia's SDK.
func IsCalyptiaPlugin(dir string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return false, err
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			return false, err
		}
		for _, spec := range f.Imports {
			if path, _ := strconv.Unquote(spec.Path.Value); path == Calyptia || strings.HasPrefix(path, Calyptia+"/") {
				return true, nil
			}
		}
	}
	return false, nil
}

// CalyptiaModule copies the module holding the Calyptia SDK plugin's main package dir into dst
// and makes the copy's go.mod and go.sum replace the SDK's module with out_wasm's
// (sdk/calyptia) and require out_wasm's Go SDK at sdk; the plugin's files are left as they
// are. It answers the copy's main package directory. Nothing of Calyptia's module is fetched.
func CalyptiaModule(dir, dst, sdk string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	root, err := moduleRoot(dir)
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if err := copyModule(root, dst); err != nil {
		return "", err
	}
	rel, _ := filepath.Rel(root, dir)
	if err := linuxPackages(dst, ""); err != nil {
		return "", err
	}
	if err := goMod(root, dst, sdk); err != nil {
		return "", err
	}
	mod, err := readMod(filepath.Join(dst, "go.mod"))
	if err != nil {
		return "", err
	}
	args := []string{"mod", "edit"}
	for _, r := range mod.Replace {
		if r.Old.Path == Calyptia && r.Old.Version != "" {
			args = append(args, "-dropreplace="+r.Old.Path+"@"+r.Old.Version)
		}
	}
	args = append(args, "-replace="+Calyptia+"="+filepath.Join(sdk, "calyptia"), filepath.Join(dst, "go.mod"))
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod edit on the copy: %v: %s", err, out)
	}
	return filepath.Join(dst, rel), nil
}

// moduleRoot is the directory of the go.mod governing dir.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is in no Go module (no go.mod in it or above it): a fluent-bit-go plugin is built in its module", dir)
		}
	}
}

// copyModule copies the module at root to dst: every file but those of hidden directories and
// of nested modules (which are other modules).
func copyModule(root, dst string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if path != root {
				if strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

// mainPackage transforms the main package's files from src into dst (the copy of src).
func mainPackage(src, dst string) error {
	native := build.Default
	native.CgoEnabled = true
	// The transform does what cgo would: for choosing files, wasip1 has cgo too.
	wasi := build.Default
	wasi.GOOS, wasi.GOARCH, wasi.CgoEnabled = "wasip1", "wasm", true
	names, err := filepath.Glob(filepath.Join(src, "*.go"))
	if err != nil {
		return err
	}
	var files []File
	var errs Errors
	for _, path := range names {
		name := filepath.Base(path)
		copied := filepath.Join(dst, name)
		takenNatively, err := native.MatchFile(src, name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, "_test.go") || !takenNatively {
			// Not part of the plugin as the agent loads it; wasip1 must not take it either.
			if err := os.Remove(copied); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		taken, err := wasi.MatchFile(src, name)
		if err != nil {
			return err
		}
		if only, err := linuxOnly(src, name); err != nil {
			return err
		} else if only {
			// Taken as the Linux build takes it, where sound (linux.go).
			renamed, out, e := takeLinux(path, data)
			if e != nil {
				errs = append(errs, e)
				continue
			}
			if err := os.Remove(copied); err != nil {
				return err
			}
			sayTaken(src, path)
			files = append(files, File{Name: filepath.Join(filepath.Dir(path), renamed), Src: out})
			continue
		}
		if !taken {
			pos, ok := BuildConstraint(path, data)
			msg := "its build constraint excludes GOOS=wasip1 GOARCH=wasm, but the native build takes it"
			if !ok {
				pos = token.Position{Filename: path, Line: 1}
				msg = "its name restricts it to " + runtime.GOOS + "/" + runtime.GOARCH + ", but the native build takes it"
			}
			errs = append(errs, &Error{Pos: pos, Msg: msg,
				Fix: "let the file build for wasip1 too (add || wasip1 to the constraint, or rename it), or give wasip1 a file of its own"})
			continue
		}
		files = append(files, File{Name: path, Src: StripConstraints(path, data)})
	}
	if len(errs) > 0 {
		return errs
	}
	out, entry, err := Package(files)
	if err != nil {
		return err
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f.Name)), out[i], 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dst, EntryFile), entry, 0o644)
}

// otherPackages rewrites the files of the copy's other packages that import "C" or
// fluent-bit-go's output package (a plugin may keep its logic in a package of its own).
func otherPackages(dst, main string) error {
	var errs Errors
	err := filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// What go build never takes as a package of the module: vendor (its own
			// packages, fluent-bit-go's included), testdata, _ and . directories.
			if path != dst && (d.Name() == "vendor" || d.Name() == "testdata" ||
				strings.HasPrefix(d.Name(), "_") || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		// The main package's own files were transformed by mainPackage; its subdirectories
		// (main may be the module's root) are other packages.
		if filepath.Dir(path) == main || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		plugin, err := importsPlugin(path)
		if err != nil || !plugin {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := Rewrite(File{Name: path, Src: src})
		var fileErrs Errors
		if errors.As(err, &fileErrs) {
			errs = append(errs, fileErrs...)
			return nil
		} else if err != nil {
			return err
		}
		return os.WriteFile(path, out, 0o644)
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// modFile is what go mod edit -json tells of a go.mod.
type modFile struct {
	Go      string
	Require []struct {
		Path, Version string
	}
	Replace []struct {
		Old, New struct{ Path, Version string }
	}
}

func readMod(path string) (*modFile, error) {
	out, err := exec.Command("go", "mod", "edit", "-json", path).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("%s: %s", path, bytes.TrimSpace(exit.Stderr))
		}
		return nil, err
	}
	var m modFile
	return &m, json.Unmarshal(out, &m)
}

// goMod makes the copy's go.mod and go.sum: fluent-bit-go's requirement and replacements
// dropped (nothing of it is built), the SDK required in its place with the SDK's own
// requirements and sums, and the plugin's relative replacements made absolute (they were
// relative to root).
func goMod(root, dst, sdk string) error {
	mod, err := readMod(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	sdkMod, err := readMod(filepath.Join(sdk, "go.mod"))
	if err != nil {
		return err
	}
	args := []string{"mod", "edit"}
	required := map[string]bool{}
	for _, r := range mod.Require {
		required[r.Path] = true
		if r.Path == FluentBitGo {
			args = append(args, "-droprequire="+r.Path)
		}
	}
	for _, r := range mod.Replace {
		old := r.Old.Path
		if r.Old.Version != "" {
			old += "@" + r.Old.Version
		}
		switch {
		case r.Old.Path == FluentBitGo || r.Old.Path == "outwasm":
			args = append(args, "-dropreplace="+old)
		case r.New.Version == "" && !filepath.IsAbs(r.New.Path):
			args = append(args, "-replace="+old+"="+filepath.Join(root, r.New.Path))
		}
	}
	args = append(args, "-require=outwasm@v0.0.0", "-replace=outwasm="+sdk)
	for _, r := range sdkMod.Require {
		if !required[r.Path] {
			args = append(args, "-require="+r.Path+"@"+r.Version)
		}
	}
	if older(mod.Go, sdkMod.Go) {
		// The SDK's packages need its Go version; the module's own code keeps its meaning
		// (language changes since are opt-in per file, and none breaks a plugin that built).
		args = append(args, "-go="+sdkMod.Go)
	}
	cmd := exec.Command("go", append(args, filepath.Join(dst, "go.mod"))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod edit on the copy: %v: %s", err, out)
	}
	sum, _ := os.ReadFile(filepath.Join(dst, "go.sum"))
	sdkSum, err := os.ReadFile(filepath.Join(sdk, "go.sum"))
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(sum), "\n") {
		have[line] = true
	}
	for _, line := range strings.Split(string(sdkSum), "\n") {
		if line != "" && !have[line] {
			sum = append(sum, line+"\n"...)
		}
	}
	if err := os.WriteFile(filepath.Join(dst, "go.sum"), sum, 0o644); err != nil {
		return err
	}
	for _, r := range raises(mod) {
		// go get, not go mod edit: the raised version's own requirements and sums come too.
		get := exec.Command("go", "get", r.Path+"@"+r.To)
		get.Dir = dst
		get.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := get.CombinedOutput(); err != nil {
			return fmt.Errorf("raising %s from %s to %s in the copy (%s): %v: %s", r.Path, r.From, r.To, r.Why, err, out)
		}
		fmt.Fprintf(os.Stderr, "flbgo-port: %s %s raised to %s in the copy: %s\n", r.Path, r.From, r.To, r.Why)
	}
	return nil
}

// wasip1Minimums are the first versions of modules fluent-bit-go plugins commonly require that
// build for GOOS=wasip1, with what fails before them. A plugin requiring an older one has it
// raised in the copy (the native build keeps its own): the plugin is built as it is, with the
// nearest release of that library that builds for the target, and the build says so.
var wasip1Minimums = []struct{ Path, Version, Why string }{
	// Its terminal check has no wasip1 file before v1.9.4 ("undefined: isTerminal"). The AWS
	// Firehose and CloudWatch plugins require v1.9.0.
	{"github.com/sirupsen/logrus", "v1.9.4", "earlier versions do not compile for wasip1 (undefined: isTerminal)"},
}

// raise is one requirement of the plugin's module the copy raises.
type raise struct{ Path, From, To, Why string }

// raises are the requirements of mod older than what builds for wasip1.
func raises(mod *modFile) []raise {
	var out []raise
	for _, r := range mod.Require {
		for _, m := range wasip1Minimums {
			if r.Path == m.Path && semver.Compare(r.Version, m.Version) < 0 {
				out = append(out, raise{r.Path, r.Version, m.Version, m.Why})
			}
		}
	}
	return out
}

// older says whether Go version a (as a go.mod writes it) is before b.
func older(a, b string) bool {
	parse := func(v string) (n [3]int) {
		for i, part := range strings.SplitN(v, ".", 3) {
			fmt.Sscan(part, &n[i])
		}
		return n
	}
	x, y := parse(a), parse(b)
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}
