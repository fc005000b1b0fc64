package wasinet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	_ "unsafe" // go:linkname

	"outwasm/internal/wit/wasi_sockets_tcp"
)

// Go's own net package, as guests/go/build overlays it (outwasm/stdnet), dials and looks up
// through these hooks: net.Dial, net.Dialer, net.LookupHost and all built on them reach the
// host's network under wasm_allow_net, as this package's Dialer does. They are set when this
// package is linked in (the build imports it into any guest that links net).

//go:linkname stdDial net.outwasmDial
var stdDial func(ctx context.Context, network string, to netip.AddrPort) (any, error)

//go:linkname stdLookup net.outwasmLookup
var stdLookup func(ctx context.Context, host string) ([]netip.Addr, error)

func init() {
	stdDial = func(ctx context.Context, network string, to netip.AddrPort) (any, error) {
		switch network {
		case "tcp", "tcp4", "tcp6":
			c, err := connect(ctx, to, time.Time{})
			if err != nil {
				return nil, stdError("connect", to.String(), err)
			}
			return stdConn{c, c}, nil
		case "udp", "udp4", "udp6":
			c, err := dialUDP(ctx, to)
			if err != nil {
				return nil, stdError("connect", to.String(), err)
			}
			return stdConn{c, c}, nil
		}
		return nil, os.NewSyscallError("socket", syscall.EPROTONOSUPPORT)
	}
	stdLookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		addrs, err := lookup(ctx, host, time.Time{})
		if err != nil {
			e := err.(*Error)
			if e.Code == "name-unresolvable" {
				return nil, errNoSuchHost
			}
			e.Op, e.Addr, e.bare = "", host, true
			return nil, e
		}
		return addrs, nil
	}
}

// errNoSuchHost is net's word for a name without addresses (its DNSError.IsNotFound).
var errNoSuchHost = errors.New("no such host")

// stdError is err as Go's net would have it from the system: a deadline is
// os.ErrDeadlineExceeded ("i/o timeout"), a context's end is the context's error, a refused or
// reset connection is the errno (errors.Is(err, syscall.ECONNREFUSED) holds as natively);
// a denial, and anything else, keeps the host's words (a denial names wasm_allow_net).
func stdError(op, addr string, err error) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	switch {
	case e.cause != nil:
		return e.cause
	case e.timeout:
		return os.ErrDeadlineExceeded
	case e.denied:
		e.Op, e.Addr, e.bare = op, addr, true
		return e
	}
	errnos := map[string]syscall.Errno{
		"connection-refused": syscall.ECONNREFUSED, "connection-reset": syscall.ECONNRESET,
		"connection-aborted": syscall.ECONNABORTED, "remote-unreachable": syscall.EHOSTUNREACH,
		"address-in-use": syscall.EADDRINUSE, "datagram-too-large": syscall.EMSGSIZE,
	}
	if errno, ok := errnos[e.Code]; ok {
		return os.NewSyscallError(op, errno)
	}
	e.Op, e.Addr, e.bare = op, addr, true
	return e
}

// socket is what both host sockets are.
type socket interface {
	io.ReadWriteCloser
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// stdConn is a host socket as std net takes it (net_outwasm.go's outwasmConn).
type stdConn struct {
	socket
	more interface {
		CloseWrite() error
		LocalAddrPort() netip.AddrPort
	}
}

func (c stdConn) Read(p []byte) (int, error) {
	n, err := c.socket.Read(p)
	if err != nil && err != io.EOF {
		err = stdError("read", "", err)
	}
	return n, err
}

func (c stdConn) Write(p []byte) (int, error) {
	n, err := c.socket.Write(p)
	if err != nil {
		err = stdError("write", "", err)
	}
	return n, err
}

func (c stdConn) CloseWrite() error             { return c.more.CloseWrite() }
func (c stdConn) LocalAddrPort() netip.AddrPort { return c.more.LocalAddrPort() }

// CloseWrite shuts the sending side: the peer reads EOF (net.TCPConn.CloseWrite).
func (c *Conn) CloseWrite() error {
	if c.closed {
		return net.ErrClosed
	}
	if r := c.sock.Shutdown(wasi_sockets_tcp.ShutdownTypeSend); r.IsErr() {
		return socketError(r.Err())
	}
	return nil
}

// LocalAddrPort is LocalAddr as a netip.AddrPort.
func (c *Conn) LocalAddrPort() netip.AddrPort {
	if c.local == nil {
		return netip.AddrPort{}
	}
	return c.local.AddrPort()
}
