package wasinet

import (
	"context"
	"net"
	"net/netip"
	"time"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/wit/wasi_sockets_network"
	"outwasm/internal/wit/wasi_sockets_udp"
	"outwasm/internal/wit/wasi_sockets_udp_create_socket"
)

// udpConn is a connected UDP socket over wasi:sockets (what net.Dial("udp", ...) gives through
// Go's own net package): each Write one datagram to the peer, each Read one datagram from it.
type udpConn struct {
	sock          *wasi_sockets_udp.UdpSocket
	in            *wasi_sockets_udp.IncomingDatagramStream
	out           *wasi_sockets_udp.OutgoingDatagramStream
	local, remote netip.AddrPort
	readDeadline  time.Time
	writeDeadline time.Time
	closed        bool
	// As Conn's: Close leaves the streams to the last read or write in progress.
	busy     int
	released bool
}

func (c *udpConn) isClosed() bool { return c.closed }

func (c *udpConn) enter() func() {
	c.busy++
	return func() {
		c.busy--
		c.release()
	}
}

func (c *udpConn) release() {
	if !c.closed || c.busy > 0 || c.released {
		return
	}
	c.released = true
	c.in.Drop()
	c.out.Drop()
	c.sock.Drop()
}

// dialUDP binds a socket to the family's unspecified address (the host picks the port: the
// only bind it allows) and connects it to to, which the host judges by wasm_allow_net.
func dialUDP(ctx context.Context, to netip.AddrPort) (*udpConn, *Error) {
	family := familyOf(to.Addr())
	created := wasi_sockets_udp_create_socket.CreateUdpSocket(family)
	if created.IsErr() {
		return nil, socketError(created.Err())
	}
	sock := created.Ok()
	any := netip.IPv4Unspecified()
	if family == wasi_sockets_network.IpAddressFamilyIpv6 {
		any = netip.IPv6Unspecified()
	}
	if r := sock.StartBind(network(), socketAddress(netip.AddrPortFrom(any, 0))); r.IsErr() {
		sock.Drop()
		return nil, socketError(r.Err())
	}
	for {
		done := sock.FinishBind()
		if done.IsOk() {
			break
		}
		if done.Err() != wasi_sockets_network.ErrorCodeWouldBlock {
			sock.Drop()
			return nil, socketError(done.Err())
		}
		p := sock.Subscribe()
		werr := wait(ctx, p, time.Time{})
		p.Drop()
		if werr != nil {
			sock.Drop()
			return nil, werr
		}
	}
	streams := sock.Stream(witTypes.Some(socketAddress(to)))
	if streams.IsErr() {
		sock.Drop()
		return nil, socketError(streams.Err())
	}
	c := &udpConn{sock: sock, in: streams.Ok().F0, out: streams.Ok().F1, remote: to}
	if local := sock.LocalAddress(); local.IsOk() {
		c.local = tcpAddrOf(local.Ok()).AddrPort()
	}
	return c, nil
}

// Read reads one datagram (truncated to p, as a connected socket's read is), waiting until the
// read deadline.
func (c *udpConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	defer c.enter()()
	for {
		if c.closed {
			return 0, net.ErrClosed
		}
		r := c.in.Receive(1)
		if r.IsErr() {
			return 0, socketError(r.Err())
		}
		if got := r.Ok(); len(got) > 0 {
			return copy(p, got[0].Data), nil
		}
		p := c.in.Subscribe()
		werr := waitOr(nil, p, c.readDeadline, c.isClosed)
		p.Drop()
		if werr == errClosed {
			return 0, net.ErrClosed
		}
		if werr != nil {
			return 0, werr
		}
	}
}

// Write sends p as one datagram, waiting for the host to take it until the write deadline.
func (c *udpConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	defer c.enter()()
	for {
		if c.closed {
			return 0, net.ErrClosed
		}
		room := c.out.CheckSend()
		if room.IsErr() {
			return 0, socketError(room.Err())
		}
		if room.Ok() > 0 {
			sent := c.out.Send([]wasi_sockets_udp.OutgoingDatagram{{Data: p}})
			if sent.IsErr() {
				return 0, socketError(sent.Err())
			}
			if sent.Ok() == 1 {
				return len(p), nil
			}
		}
		pollable := c.out.Subscribe()
		werr := waitOr(nil, pollable, c.writeDeadline, c.isClosed)
		pollable.Drop()
		if werr == errClosed {
			return 0, net.ErrClosed
		}
		if werr != nil {
			return 0, werr
		}
	}
}

// Close gives the streams and the socket back to the host, children first.
func (c *udpConn) Close() error {
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	c.release()
	return nil
}

func (c *udpConn) CloseWrite() error                  { return nil }
func (c *udpConn) SetReadDeadline(t time.Time) error  { c.readDeadline = t; return nil }
func (c *udpConn) SetWriteDeadline(t time.Time) error { c.writeDeadline = t; return nil }
func (c *udpConn) LocalAddrPort() netip.AddrPort      { return c.local }
