module flbgopeer

go 1.25

require (
	github.com/fluent/fluent-bit-go v0.0.0-20230731091245-a7a013e2473c
	outwasm v0.0.0
)

require (
	github.com/ugorji/go/codec v1.1.7 // indirect
	go.bytecodealliance.org/pkg v0.2.3 // indirect
)

replace outwasm => ../../../guests/go
