module gonet

go 1.25

require outwasm v0.0.0

require (
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/tinylib/msgp v1.6.5 // indirect
	go.bytecodealliance.org/pkg v0.2.3 // indirect
)

replace outwasm => ../../../guests/go
