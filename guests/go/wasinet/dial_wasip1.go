package wasinet

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/wit/wasi_io_streams"
	"outwasm/internal/wit/wasi_sockets_instance_network"
	"outwasm/internal/wit/wasi_sockets_ip_name_lookup"
	"outwasm/internal/wit/wasi_sockets_network"
	"outwasm/internal/wit/wasi_sockets_tcp"
	"outwasm/internal/wit/wasi_sockets_tcp_create_socket"
)

// network is the instance's network, asked for once.
var network = sync.OnceValue(wasi_sockets_instance_network.InstanceNetwork)

// Dialer dials TCP over wasi:sockets, with the shape of net.Dialer's hooks. The zero value is
// ready to use.
type Dialer struct {
	// Timeout bounds the lookup and the connection together (0: only the context and the
	// current flush's bound).
	Timeout time.Duration
}

// Dial connects to address ("host:port") on network "tcp", "tcp4" or "tcp6", like net.Dial.
func Dial(network, address string) (net.Conn, error) {
	return (&Dialer{}).DialContext(context.Background(), network, address)
}

// DialContext is Dial bounded by ctx, like net.Dialer.DialContext: usable as
// http.Transport.DialContext and wherever a client takes a dial function.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return (&Dialer{}).DialContext(ctx, network, address)
}

// Dial is DialContext without a context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address. A name is looked up by the host only when a wasm_allow_net
// grant names it (a denied lookup sends nothing); each address it gives (or an IP literal) is
// tried in turn until one connects. Connections the grants do not allow are refused before
// anything leaves the host: the error wraps ErrDenied and names wasm_allow_net.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var deadline time.Time
	if d.Timeout > 0 {
		deadline = time.Now().Add(d.Timeout)
	}
	fail := func(op string, e *Error) (net.Conn, error) {
		e.Op, e.Addr = op, address
		return nil, e
	}
	var family witTypes.Option[uint8]
	switch network {
	case "tcp":
	case "tcp4":
		family = witTypes.Some(wasi_sockets_network.IpAddressFamilyIpv4)
	case "tcp6":
		family = witTypes.Some(wasi_sockets_network.IpAddressFamilyIpv6)
	default:
		return fail("dial", &Error{Code: "network " + strconv.Quote(network) + " is not supported (tcp, tcp4, tcp6)"})
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return fail("dial", &Error{Code: err.Error()})
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fail("dial", &Error{Code: "invalid port " + strconv.Quote(portText)})
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
	} else if addrs, err = lookup(ctx, host, deadline); err != nil {
		return fail("lookup", err.(*Error))
	}
	var last *Error
	for _, ip := range addrs {
		if family.IsSome() && familyOf(ip) != family.Some() {
			continue
		}
		conn, e := connect(ctx, netip.AddrPortFrom(ip, uint16(port)), deadline)
		if e == nil {
			return conn, nil
		}
		last = e
		if e.denied || e.timeout {
			break
		}
	}
	if last == nil {
		last = &Error{Code: "no " + network + " address for " + host}
	}
	return fail("dial", last)
}

func familyOf(ip netip.Addr) uint8 {
	if ip.Is4() {
		return wasi_sockets_network.IpAddressFamilyIpv4
	}
	return wasi_sockets_network.IpAddressFamilyIpv6
}

// lookup resolves name with the host's resolver (only names a grant names are resolved).
func lookup(ctx context.Context, name string, deadline time.Time) ([]netip.Addr, error) {
	started := wasi_sockets_ip_name_lookup.ResolveAddresses(network(), name)
	if started.IsErr() {
		return nil, socketError(started.Err())
	}
	stream := started.Ok()
	defer stream.Drop()
	var addrs []netip.Addr
	for {
		next := stream.ResolveNextAddress()
		if next.IsErr() {
			if next.Err() != wasi_sockets_network.ErrorCodeWouldBlock {
				return nil, socketError(next.Err())
			}
			p := stream.Subscribe()
			werr := wait(ctx, p, deadline)
			p.Drop()
			if werr != nil {
				return nil, werr
			}
			continue
		}
		if next.Ok().IsNone() {
			return addrs, nil
		}
		addrs = append(addrs, addrOf(next.Ok().Some()))
	}
}

func addrOf(ip wasi_sockets_network.IpAddress) netip.Addr {
	if ip.Tag() == wasi_sockets_network.IpAddressIpv4 {
		a := ip.Ipv4()
		return netip.AddrFrom4([4]byte{a.F0, a.F1, a.F2, a.F3})
	}
	a := ip.Ipv6()
	var b [16]byte
	for i, v := range []uint16{a.F0, a.F1, a.F2, a.F3, a.F4, a.F5, a.F6, a.F7} {
		b[2*i], b[2*i+1] = byte(v>>8), byte(v)
	}
	return netip.AddrFrom16(b)
}

func socketAddress(ap netip.AddrPort) wasi_sockets_network.IpSocketAddress {
	ip := ap.Addr()
	if ip.Is4() {
		b := ip.As4()
		return wasi_sockets_network.MakeIpSocketAddressIpv4(wasi_sockets_network.Ipv4SocketAddress{
			Port: ap.Port(), Address: witTypes.Tuple4[uint8, uint8, uint8, uint8]{F0: b[0], F1: b[1], F2: b[2], F3: b[3]},
		})
	}
	b := ip.As16()
	w := func(i int) uint16 { return uint16(b[2*i])<<8 | uint16(b[2*i+1]) }
	return wasi_sockets_network.MakeIpSocketAddressIpv6(wasi_sockets_network.Ipv6SocketAddress{
		Port: ap.Port(),
		Address: witTypes.Tuple8[uint16, uint16, uint16, uint16, uint16, uint16, uint16, uint16]{
			F0: w(0), F1: w(1), F2: w(2), F3: w(3), F4: w(4), F5: w(5), F6: w(6), F7: w(7)},
	})
}

func tcpAddrOf(a wasi_sockets_network.IpSocketAddress) *net.TCPAddr {
	if a.Tag() == wasi_sockets_network.IpSocketAddressIpv4 {
		v := a.Ipv4()
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(
			netip.AddrFrom4([4]byte{v.Address.F0, v.Address.F1, v.Address.F2, v.Address.F3}), v.Port))
	}
	v := a.Ipv6()
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(addrOf(wasi_sockets_network.MakeIpAddressIpv6(v.Address)), v.Port))
}

// connect makes one TCP connection.
func connect(ctx context.Context, to netip.AddrPort, deadline time.Time) (*Conn, *Error) {
	created := wasi_sockets_tcp_create_socket.CreateTcpSocket(familyOf(to.Addr()))
	if created.IsErr() {
		return nil, socketError(created.Err())
	}
	sock := created.Ok()
	if r := sock.StartConnect(network(), socketAddress(to)); r.IsErr() {
		sock.Drop()
		return nil, socketError(r.Err())
	}
	for {
		done := sock.FinishConnect()
		if done.IsOk() {
			c := &Conn{sock: sock, in: done.Ok().F0, out: done.Ok().F1, remote: net.TCPAddrFromAddrPort(to)}
			if local := sock.LocalAddress(); local.IsOk() {
				c.local = tcpAddrOf(local.Ok())
			}
			return c, nil
		}
		if done.Err() != wasi_sockets_network.ErrorCodeWouldBlock {
			sock.Drop()
			return nil, socketError(done.Err())
		}
		p := sock.Subscribe()
		werr := wait(ctx, p, deadline)
		p.Drop()
		if werr != nil {
			sock.Drop()
			return nil, werr
		}
	}
}

var socketCodes = [...]string{
	"unknown", "access-denied", "not-supported", "invalid-argument", "out-of-memory", "timeout",
	"concurrency-conflict", "not-in-progress", "would-block", "invalid-state", "new-socket-limit",
	"address-not-bindable", "address-in-use", "remote-unreachable", "connection-refused",
	"connection-reset", "connection-aborted", "datagram-too-large", "name-unresolvable",
	"temporary-resolver-failure", "permanent-resolver-failure",
}

func socketError(code wasi_sockets_network.ErrorCode) *Error {
	return &Error{
		Code:    socketCodes[min(int(code), len(socketCodes)-1)],
		denied:  code == wasi_sockets_network.ErrorCodeAccessDenied,
		timeout: code == wasi_sockets_network.ErrorCodeTimeout,
	}
}

// Conn is a TCP connection over wasi:sockets: a net.Conn with deadlines.
type Conn struct {
	sock          *wasi_sockets_tcp.TcpSocket
	in            *wasi_io_streams.InputStream
	out           *wasi_io_streams.OutputStream
	local, remote *net.TCPAddr
	readDeadline  time.Time
	writeDeadline time.Time
	closed        bool
	// busy counts the reads and writes in progress: Close from another goroutine (Go's
	// http.Transport closes a connection its read loop waits on) leaves the streams to the
	// last of them, since a stream cannot be dropped while a wait holds its pollable.
	busy     int
	released bool
}

func (c *Conn) isClosed() bool { return c.closed }

// enter marks a read or write in progress; the returned func ends it.
func (c *Conn) enter() func() {
	c.busy++
	return func() {
		c.busy--
		c.release()
	}
}

// release gives the streams and socket back to the host, children first, once closed and
// idle.
func (c *Conn) release() {
	if !c.closed || c.busy > 0 || c.released {
		return
	}
	c.released = true
	c.in.Drop()
	c.out.Drop()
	c.sock.Shutdown(wasi_sockets_tcp.ShutdownTypeBoth)
	c.sock.Drop()
}

func (c *Conn) opError(op string, e *Error) error {
	e.Op, e.Addr = op, c.remote.String()
	return e
}

// Read reads what the peer sent, waiting for it until the read deadline (and the current
// flush's bound): then a timeout error that wraps os.ErrDeadlineExceeded.
func (c *Conn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	defer c.enter()()
	for {
		if c.closed {
			return 0, net.ErrClosed
		}
		r := c.in.Read(uint64(len(p)))
		if r.IsErr() {
			if r.Err().Tag() == wasi_io_streams.StreamErrorClosed {
				return 0, io.EOF
			}
			return 0, c.opError("read", ioError(r.Err()))
		}
		if n := copy(p, r.Ok()); n > 0 {
			return n, nil
		}
		pollable := c.in.Subscribe()
		werr := waitOr(nil, pollable, c.readDeadline, c.isClosed)
		pollable.Drop()
		if werr == errClosed {
			return 0, net.ErrClosed
		}
		if werr != nil {
			return 0, c.opError("read", werr)
		}
	}
}

// Write sends p whole, waiting for room until the write deadline.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	defer c.enter()()
	written := 0
	for written < len(p) {
		if c.closed {
			return written, net.ErrClosed
		}
		room := c.out.CheckWrite()
		if room.IsErr() {
			return written, c.opError("write", ioError(room.Err()))
		}
		if room.Ok() == 0 {
			pollable := c.out.Subscribe()
			werr := waitOr(nil, pollable, c.writeDeadline, c.isClosed)
			pollable.Drop()
			if werr == errClosed {
				return written, net.ErrClosed
			}
			if werr != nil {
				return written, c.opError("write", werr)
			}
			continue
		}
		k := min(uint64(len(p)-written), room.Ok())
		if w := c.out.Write(p[written : written+int(k)]); w.IsErr() {
			return written, c.opError("write", ioError(w.Err()))
		}
		written += int(k)
	}
	// Flushed, so what was written leaves now rather than with the next write.
	if f := c.out.Flush(); f.IsErr() {
		return written, c.opError("write", ioError(f.Err()))
	}
	return written, nil
}

func ioError(err wasi_io_streams.StreamError) *Error {
	if err.Tag() == wasi_io_streams.StreamErrorClosed {
		return &Error{Code: "connection closed"}
	}
	failed := err.LastOperationFailed()
	defer failed.Drop()
	return &Error{Code: failed.ToDebugString()}
}

// Close shuts the connection and gives its streams and socket back to the host, children
// first: at once, or when a read or write another goroutine has in progress gives up (it
// answers net.ErrClosed).
func (c *Conn) Close() error {
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	c.release()
	return nil
}

// LocalAddr is the connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines (zero: none).
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDeadline, c.writeDeadline = t, t
	return nil
}

// SetReadDeadline sets when a waiting Read gives up (zero: never, but for the flush's bound).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.readDeadline = t
	return nil
}

// SetWriteDeadline sets when a waiting Write gives up.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline = t
	return nil
}
