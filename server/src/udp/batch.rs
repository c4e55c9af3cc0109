//! The datagram syscalls of a UDP loop: `recvmmsg` takes up to `batch` datagrams in one call
//! and `sendmmsg` sends up to `batch` replies in one call, instead of one `recvfrom`/`sendto`
//! each. On an echo at 64 B that is the difference between ~2 and ~2/batch syscalls per
//! datagram (measured with `strace -c -f`, figures in the README's UDP section), which is why
//! this file holds the crate's only `unsafe` outside TLS: libc has no safe wrapper for the
//! `mmsghdr` arrays.
//!
//! The buffers are allocated once per loop and never resized, so the raw pointers the headers
//! hold into them stay valid for the life of the batch (moving the struct moves only the `Vec`
//! handles, not their heap storage).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// One received datagram, as the loop hands it to the handler.
pub(crate) struct Received<'a> {
    pub(crate) peer: SocketAddr,
    pub(crate) data: &'a [u8],
    /// The datagram was longer than the slot (`MSG_TRUNC`): `data` is cut, drop it.
    pub(crate) truncated: bool,
}

/// Receive buffers and headers for one `recvmmsg` call.
pub(crate) struct RecvBatch {
    slots: Vec<u8>,
    slot_size: usize,
    iovecs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    headers: Vec<libc::mmsghdr>,
    /// Datagrams filled by the last call.
    filled: usize,
}

// SAFETY: the raw pointers inside `iovecs`/`headers` point only into this struct's own heap
// buffers, which move with it; no other thread can reach them.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub(crate) fn new(batch: usize, slot_size: usize) -> RecvBatch {
        let batch = batch.max(1);
        let mut slots = vec![0u8; batch * slot_size];
        let mut iovecs: Vec<libc::iovec> = slots
            .chunks_mut(slot_size)
            .map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            })
            .collect();
        // SAFETY: sockaddr_storage and mmsghdr are plain C structs for which all-zero bytes are
        // a valid value (null pointers, zero lengths).
        let mut addrs: Vec<libc::sockaddr_storage> =
            (0..batch).map(|_| unsafe { zeroed() }).collect();
        let headers = (0..batch)
            .map(|i| {
                // SAFETY: as above, all-zero is a valid mmsghdr.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_iov = &mut iovecs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        RecvBatch {
            slots,
            slot_size,
            iovecs,
            addrs,
            headers,
            filled: 0,
        }
    }

    /// One `recvmmsg(MSG_DONTWAIT)`: returns how many datagrams arrived (`WouldBlock` when none).
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in &mut self.headers {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        debug_assert_eq!(self.iovecs.len(), self.headers.len());
        debug_assert_eq!(self.slots.len(), self.headers.len() * self.slot_size);
        // SAFETY: every header points at a live sockaddr_storage (with its size in msg_namelen)
        // and one iovec covering a live, exclusively owned slot of `slot_size` bytes; the
        // arrays have `headers.len()` entries, which is the count passed; the timeout is null.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.filled = 0;
            return Err(io::Error::last_os_error());
        }
        self.filled = n as usize;
        Ok(self.filled)
    }

    /// Datagram `i` of the last call (`i < filled`). A source address the kernel did not give
    /// as IPv4/IPv6 yields `None`.
    pub(crate) fn get(&self, i: usize) -> Option<Received<'_>> {
        debug_assert!(i < self.filled);
        let h = &self.headers[i];
        let mut storage = socket2::SockAddrStorage::zeroed();
        // SAFETY: `SockAddrStorage` is a transparent wrapper of the platform's sockaddr_storage,
        // so viewing it as one is sound. The kernel wrote msg_namelen (<= sizeof
        // sockaddr_storage) bytes of a socket address into addrs[i], copied whole here, and
        // SockAddr::new takes the storage by value with that length.
        let addr = unsafe {
            *storage.view_as::<libc::sockaddr_storage>() = self.addrs[i];
            socket2::SockAddr::new(storage, h.msg_hdr.msg_namelen)
        };
        let peer = addr.as_socket()?;
        let len = (h.msg_len as usize).min(self.slot_size);
        let start = i * self.slot_size;
        Some(Received {
            peer,
            data: &self.slots[start..start + len],
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        })
    }
}

/// Headers for one `sendmmsg` call over datagrams owned by the caller.
pub(crate) struct SendBatch {
    iovecs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the pointers are rewritten on every call and only used during it.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub(crate) fn new(batch: usize) -> SendBatch {
        let batch = batch.max(1);
        SendBatch {
            iovecs: (0..batch)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
            addrs: (0..batch).map(|_| unsafe { zeroed() }).collect(),
            headers: (0..batch).map(|_| unsafe { zeroed() }).collect(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// One `sendmmsg(MSG_DONTWAIT)` of the first `capacity()` items: returns how many were sent
    /// (the kernel stops at the first that fails; an error means the first failed).
    pub(crate) fn send<'a>(
        &mut self,
        fd: RawFd,
        items: impl Iterator<Item = (&'a SocketAddr, &'a [u8])>,
    ) -> io::Result<usize> {
        let mut count = 0;
        for (i, (peer, data)) in items.take(self.headers.len()).enumerate() {
            let addr = socket2::SockAddr::from(*peer);
            // SAFETY: `addr.len()` bytes are a valid socket address and fit in the
            // sockaddr_storage we copy them into.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    addr.as_ptr().cast::<u8>(),
                    (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast::<u8>(),
                    addr.len() as usize,
                );
            }
            self.iovecs[i] = libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            };
            let h = &mut self.headers[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        // SAFETY: the first `count` headers point at filled sockaddr_storage entries and iovecs
        // whose buffers are borrowed for 'a, alive for the whole call; the kernel only reads
        // them (and writes msg_len).
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_round_trip_with_truncation() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        client.send_to(b"one", to).unwrap();
        client.send_to(&[7u8; 100], to).unwrap();
        client.send_to(b"three", to).unwrap();
        let mut batch = RecvBatch::new(8, 16);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 3 && std::time::Instant::now() < deadline {
            match batch.recv(server.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let r = batch.get(i).unwrap();
                        assert_eq!(r.peer, client.local_addr().unwrap());
                        got.push((r.data.to_vec(), r.truncated));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got[0], (b"one".to_vec(), false));
        assert_eq!(got[1], (vec![7u8; 16], true));
        assert_eq!(got[2], (b"three".to_vec(), false));

        let mut send = SendBatch::new(4);
        let peer = client.local_addr().unwrap();
        let items = [(peer, b"a".to_vec()), (peer, b"bb".to_vec())];
        let sent = send
            .send(server.as_raw_fd(), items.iter().map(|(p, d)| (p, &d[..])))
            .unwrap();
        assert_eq!(sent, 2);
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(client.recv(&mut buf).unwrap(), 1);
        assert_eq!(client.recv(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"bb");
    }
}
