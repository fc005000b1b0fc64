module outwasm

go 1.25

require (
	github.com/tinylib/msgp v1.6.5
	go.bytecodealliance.org/pkg v0.2.3
	golang.org/x/mod v0.27.0
)

require github.com/philhofer/fwd v1.2.0 // indirect
