// Package port builds a fluent-bit-go output plugin unmodified: guests/go/build runs it (through
// outwasm/flbgo/cmd/flbgo-port) on a copy of the plugin's module, never on the user's files, to
// supply what cgo and the agent's Go proxy would have supplied natively:
//
//   - import "C" becomes an import of outwasm/flbgo/cgo named C, and the C forms plugins use
//     are renamed to its identifiers (C.int to C.Int, *C.char to *C.Char, C.GoString,
//     C.CString, C.free to C.Free, ...); any other C construct is an error naming its line;
//   - github.com/fluent/fluent-bit-go/output becomes outwasm/flbgo/output, the SDK's
//     compatibility package;
//   - the plugin's own os.Hostname calls become the compatibility package's (Go's wasip1
//     runtime answers "wasip1"; the host tells the agent's host name);
//   - a generated file registers the entry points the plugin defines, found by name and chosen
//     as the agent's proxy chooses them (FLBPluginFlushCtx over FLBPluginFlush,
//     FLBPluginExitCtx over FLBPluginExit, FLBPluginUnregister after exit), and imports
//     time/tzdata (time.LoadLocation has no zoneinfo files to read in the sandbox) and
//     outwasm/wasinet (net/http reaches the network through the host).
//
// The rewrites are byte-range edits at the positions go/parser gives, so every line of the copy
// is the line of the user's file: compiler errors and panics name the user's lines.
package port

import (
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// Import paths the transform maps.
const (
	FluentBitGo     = "github.com/fluent/fluent-bit-go"
	fluentBitOutput = FluentBitGo + "/output"
	compatOutput    = "outwasm/flbgo/output"
	compatCgo       = "outwasm/flbgo/cgo"
	// compatName is the name the transform gives the compatibility package where it must
	// import it itself.
	compatName = "flbgo_output"
)

// cgoNames are the C identifiers the transform supplies, with their names in outwasm/flbgo/cgo.
var cgoNames = map[string]string{
	"char": "Char", "schar": "Schar", "uchar": "Uchar", "short": "Short", "ushort": "Ushort",
	"int": "Int", "uint": "Uint", "long": "Long", "ulong": "Ulong", "longlong": "Longlong",
	"ulonglong": "Ulonglong", "float": "Float", "double": "Double", "size_t": "SizeT",
	"GoString": "GoString", "GoStringN": "GoStringN", "GoBytes": "GoBytes", "CString": "CString",
	"CBytes": "CBytes", "free": "Free",
}

// knownCgo lists cgoNames for error messages, sorted.
func knownCgo() string {
	names := make([]string, 0, len(cgoNames))
	for name := range cgoNames {
		names = append(names, "C."+name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Error is a construct the transform cannot take, at its place in the user's file.
type Error struct {
	Pos token.Position
	// Msg says what is there, Fix what to change.
	Msg, Fix string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (fix: %s)", e.Pos, e.Msg, e.Fix)
}

// Errors are all the constructs of a package the transform cannot take, in file and line order.
type Errors []*Error

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// entryPoint is an FLBPlugin* function the plugin defines.
type entryPoint struct {
	decl *ast.FuncDecl
	file *fileState
}

// fileState is one file being transformed.
type fileState struct {
	name  string
	src   []byte
	fset  *token.FileSet
	file  *ast.File
	edits []edit
	// needsCompat: the file refers to the compatibility package by compatName, which the
	// transform then imports.
	needsCompat bool
}

func (f *fileState) pos(p token.Pos) token.Position { return f.fset.Position(p) }
func (f *fileState) off(p token.Pos) int            { return f.fset.File(p).Offset(p) }

func (f *fileState) replace(node ast.Node, text string) {
	f.edits = append(f.edits, edit{f.off(node.Pos()), f.off(node.End()), text})
}

// apply is the file's source with its edits made.
func (f *fileState) apply() []byte {
	edits := append([]edit(nil), f.edits...)
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), f.src...)
	for _, e := range edits {
		out = append(out[:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out
}

// File is one Go source file of the plugin's main package.
type File struct {
	// Name is the file's path, as errors name it.
	Name string
	Src  []byte
}

// Package transforms the files of a fluent-bit-go plugin's main package: the rewritten files
// (in the order given) and the generated file that registers the entry points, or every
// construct it cannot take.
func Package(files []File) (out [][]byte, entry []byte, err error) {
	fset := token.NewFileSet()
	var errs Errors
	var states []*fileState
	for _, in := range files {
		f, perr := parser.ParseFile(fset, in.Name, in.Src, parser.ParseComments)
		if perr != nil {
			return nil, nil, perr
		}
		st := &fileState{name: in.Name, src: in.Src, fset: fset, file: f}
		errs = append(errs, st.transform()...)
		states = append(states, st)
	}
	if f := states; len(f) > 0 && f[0].file.Name.Name != "main" {
		errs = append(errs, &Error{Pos: f[0].pos(f[0].file.Name.Pos()),
			Msg: "package " + f[0].file.Name.Name + " is not a main package",
			Fix: "give guests/go/build the directory of the plugin's main package (the one built with -buildmode=c-shared)"})
	}
	points := map[string]entryPoint{}
	for _, st := range states {
		for _, decl := range st.file.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && entryPoints[fn.Name.Name] != nil {
				points[fn.Name.Name] = entryPoint{decl: fn, file: st}
			}
		}
	}
	entry, entryErrs := generate(points, states)
	errs = append(errs, entryErrs...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			a, b := errs[i].Pos, errs[j].Pos
			if a.Filename != b.Filename {
				return a.Filename < b.Filename
			}
			return a.Line < b.Line
		})
		return nil, nil, errs
	}
	for _, st := range states {
		if st.needsCompat && !st.importsCompat() {
			// On the package clause's line, so that no line of the file moves.
			end := st.off(st.file.Name.End())
			st.edits = append(st.edits, edit{end, end, "; import " + compatName + " " + strconv.Quote(compatOutput)})
		}
		out = append(out, st.apply())
	}
	return out, entry, nil
}

// Rewrite transforms one file of another package of the plugin's module (a package the main
// package imports) that imports "C" or fluent-bit-go's output package: the same rewrites as in
// the main package, without entry points.
func Rewrite(in File) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, in.Name, in.Src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	st := &fileState{name: in.Name, src: in.Src, fset: fset, file: f}
	if errs := st.transform(); len(errs) > 0 {
		return nil, errs
	}
	if st.needsCompat && !st.importsCompat() {
		end := st.off(st.file.Name.End())
		st.edits = append(st.edits, edit{end, end, "; import " + compatName + " " + strconv.Quote(compatOutput)})
	}
	return st.apply(), nil
}

// importsCompat says whether the file already imports the compatibility package as compatName.
func (f *fileState) importsCompat() bool {
	for _, spec := range f.file.Imports {
		if spec.Name != nil && spec.Name.Name == compatName {
			return true
		}
	}
	return false
}

// transform records the file's edits; the constructs it cannot take are errors.
func (f *fileState) transform() Errors {
	var errs Errors
	cgo := false
	osName := ""
	var osSpec *ast.ImportSpec
	outputName := ""
	for _, spec := range f.file.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		name := ""
		if spec.Name != nil {
			name = spec.Name.Name
		}
		switch {
		case path == "C":
			cgo = true
			errs = append(errs, f.checkPreamble(spec)...)
			f.replace(spec.Path, "C "+strconv.Quote(compatCgo))
		case path == fluentBitOutput:
			f.replace(spec.Path, strconv.Quote(compatOutput))
			outputName = name
			if name == "" {
				outputName = "output"
			}
		case path == FluentBitGo || strings.HasPrefix(path, FluentBitGo+"/"):
			errs = append(errs, &Error{Pos: f.pos(spec.Pos()),
				Msg: "import " + strconv.Quote(path) + ": out_wasm runs output plugins; only " + fluentBitOutput + " is supplied",
				Fix: "build an output plugin (its package main imports " + fluentBitOutput + ")"})
		case path == "os" && name != "_" && name != ".":
			osName, osSpec = "os", spec
			if name != "" {
				osName = name
			}
		}
	}
	if outputName == "." {
		// The compatibility package's names are then the file's own.
		outputName = ""
	}
	osUses := 0
	ast.Inspect(f.file, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		// A package name is an identifier the parser did not resolve to a declaration.
		if !ok || pkg.Obj != nil {
			return true
		}
		switch {
		case cgo && pkg.Name == "C":
			name, known := cgoNames[sel.Sel.Name]
			if !known {
				errs = append(errs, &Error{Pos: f.pos(sel.Pos()),
					Msg: "C." + sel.Sel.Name + " is C code, and GOOS=wasip1 has no C compiler for it; the transform supplies " + knownCgo(),
					Fix: "write it in Go in the plugin (and keep the cgo version behind a //go:build !wasip1 file)"})
				return false
			}
			f.replace(sel.Sel, name)
			return false
		case osName != "" && pkg.Name == osName:
			if sel.Sel.Name == "Hostname" {
				if outputName == "" {
					f.replace(sel, compatName+".Hostname")
					f.needsCompat = true
				} else {
					f.replace(sel, outputName+".Hostname")
				}
			} else {
				osUses++
			}
			return false
		}
		return true
	})
	if osSpec != nil && osUses == 0 && osSpec.Name == nil {
		// Every use was os.Hostname: the import stays, unused but allowed.
		f.edits = append(f.edits, edit{f.off(osSpec.Path.Pos()), f.off(osSpec.Path.Pos()), "_ "})
	} else if osSpec != nil && osUses == 0 {
		f.replace(osSpec.Name, "_")
	}
	return errs
}

// checkPreamble refuses a cgo preamble that holds C code: only #include lines of the C
// library (which a plugin writes for C.free), comments and blank lines are taken.
func (f *fileState) checkPreamble(spec *ast.ImportSpec) Errors {
	doc := spec.Doc
	if doc == nil {
		for _, decl := range f.file.Decls {
			if gen, ok := decl.(*ast.GenDecl); ok && gen.Tok == token.IMPORT && !gen.Lparen.IsValid() &&
				len(gen.Specs) == 1 && gen.Specs[0] == spec {
				doc = gen.Doc
			}
		}
	}
	if doc == nil {
		return nil
	}
	var errs Errors
	for _, c := range doc.List {
		text := c.Text
		if strings.HasPrefix(text, "/*") {
			text = strings.TrimSuffix(strings.TrimPrefix(text, "/*"), "*/")
		} else {
			text = strings.TrimPrefix(text, "//")
		}
		for i, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "//") || strings.HasPrefix(line, "#cgo") ||
				strings.HasPrefix(line, "#include <") && strings.HasSuffix(line, ">") {
				continue
			}
			pos := f.pos(c.Pos())
			pos.Line += i
			errs = append(errs, &Error{Pos: pos,
				Msg: "the cgo preamble holds C code (" + strconv.Quote(line) + "), and GOOS=wasip1 has no C compiler for it",
				Fix: "write it in Go in the plugin (and keep the cgo version behind a //go:build !wasip1 file)"})
			return errs
		}
	}
	return errs
}

// BuildConstraint is the position of the file's //go:build (or // +build) line, if it has one.
func BuildConstraint(name string, src []byte) (token.Position, bool) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		return token.Position{}, false
	}
	for _, group := range f.Comments {
		if group.Pos() > f.Package {
			break
		}
		for _, c := range group.List {
			if constraint.IsGoBuild(c.Text) || constraint.IsPlusBuild(c.Text) {
				return fset.Position(c.Pos()), true
			}
		}
	}
	return token.Position{}, false
}

// StripConstraints blanks the file's build constraint lines (keeping the lines): the file was
// chosen for the native build, which the wasip1 build must not undo (a //go:build cgo line).
func StripConstraints(name string, src []byte) []byte {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		return src
	}
	out := append([]byte(nil), src...)
	for _, group := range f.Comments {
		if group.Pos() > f.Package {
			break
		}
		for _, c := range group.List {
			if constraint.IsGoBuild(c.Text) || constraint.IsPlusBuild(c.Text) {
				start := fset.File(c.Pos()).Offset(c.Pos())
				for i := start; i < start+len(c.Text); i++ {
					out[i] = ' '
				}
			}
		}
	}
	return out
}
