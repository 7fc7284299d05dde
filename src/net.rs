//! The gateway's own sockets.

/// Accept queue length: `TcpListener::bind` asks for 128, which a burst of
/// a few hundred new connections overflows (and each overflow is a 1 s SYN
/// retransmit for that caller).
pub const BACKLOG: u32 = 4096;

/// Binds `addr` for serving, with a [`BACKLOG`]-long accept queue.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
