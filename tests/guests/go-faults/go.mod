module gofaults

go 1.25

require outwasm v0.0.0

require go.bytecodealliance.org/pkg v0.2.3 // indirect

replace outwasm => ../../../guests/go
