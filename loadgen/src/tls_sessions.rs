//! The client's session store for TLS resumption: every TLS 1.3 ticket the server sends is kept
//! (up to [`TICKETS_PER_SERVER`] per server name) so every reconnect can resume.
//!
//! Where it sits in the data path: rustls asks it for a ticket when it builds a ClientHello
//! (`take_tls13_ticket`, `tls12_session`, `kx_hint`) and hands it what the server sends after a
//! handshake (`insert_tls13_ticket`, `set_tls12_session`). One store is shared by every worker
//! through the run's `ClientConfig` (`tls.rs`).
//!
//! Why not rustls's `ClientSessionMemoryCache`: it keeps at most 8 TLS 1.3 tickets per server
//! name, and a TLS 1.3 ticket is single-use. A load generator reconnects many connections to the
//! *same* name at once (50 connections in handshake-only mode reconnect all the time), so with
//! 8 tickets only about half the handshakes found one and the rest were full handshakes:
//! `--tls-resume on` measured a mix. This store keeps thousands of tickets per name, so a
//! reconnect finds one whenever an earlier connection received one. The newest ticket is used
//! first (the oldest would expire first); when a name holds [`TICKETS_PER_SERVER`] tickets, the
//! oldest is dropped. Server names are bounded too ([`MAX_SERVERS`]; loadgen talks to one).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;

/// TLS 1.3 tickets kept per server name: more than the connections of any run reconnect at once
/// (servers send one or two tickets per handshake; rustls and tokio-rustls send two). A ticket
/// is a few hundred bytes, so a full store is about a megabyte.
pub const TICKETS_PER_SERVER: usize = 4096;

/// Server names remembered; a further name evicts the one inserted first.
pub const MAX_SERVERS: usize = 16;

/// What is kept for one server name.
#[derive(Default)]
struct ServerSessions {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

/// A bounded in-memory [`ClientSessionStore`] that keeps [`TICKETS_PER_SERVER`] TLS 1.3 tickets
/// per server name (see the module docs).
pub struct TicketStore {
    tickets_per_server: usize,
    servers: Mutex<Servers>,
}

#[derive(Default)]
struct Servers {
    by_name: HashMap<ServerName<'static>, ServerSessions>,
    /// Names in insertion order, for eviction.
    order: VecDeque<ServerName<'static>>,
}

impl Servers {
    fn entry(&mut self, name: ServerName<'static>) -> &mut ServerSessions {
        if !self.by_name.contains_key(&name) {
            if self.order.len() == MAX_SERVERS {
                if let Some(oldest) = self.order.pop_front() {
                    self.by_name.remove(&oldest);
                }
            }
            self.order.push_back(name.clone());
        }
        self.by_name.entry(name).or_default()
    }
}

impl TicketStore {
    /// A store keeping up to [`TICKETS_PER_SERVER`] tickets per name.
    pub fn new() -> TicketStore {
        TicketStore::with_capacity(TICKETS_PER_SERVER)
    }

    /// A store keeping up to `tickets_per_server` TLS 1.3 tickets per name (at least one).
    pub fn with_capacity(tickets_per_server: usize) -> TicketStore {
        TicketStore {
            tickets_per_server: tickets_per_server.max(1),
            servers: Mutex::new(Servers::default()),
        }
    }

    /// TLS 1.3 tickets held for `name` now.
    pub fn tickets(&self, name: &ServerName<'_>) -> usize {
        self.lock().by_name.get(name).map_or(0, |s| s.tls13.len())
    }

    fn lock(&self) -> MutexGuard<'_, Servers> {
        // A worker that panicked while holding the lock cannot have left the maps half updated
        // (every edit is one call on them), so the data is still usable.
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for TicketStore {
    fn default() -> Self {
        TicketStore::new()
    }
}

impl std::fmt::Debug for TicketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Session secrets are not printed.
        f.debug_struct("TicketStore")
            .field("tickets_per_server", &self.tickets_per_server)
            .finish_non_exhaustive()
    }
}

impl ClientSessionStore for TicketStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.lock().entry(server_name).kx_hint = Some(group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().by_name.get(server_name).and_then(|s| s.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.lock().entry(server_name).tls12 = Some(value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.lock()
            .by_name
            .get(server_name)
            .and_then(|s| s.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(s) = self.lock().by_name.get_mut(server_name) {
            s.tls12 = None;
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let limit = self.tickets_per_server;
        let mut servers = self.lock();
        let tickets = &mut servers.entry(server_name).tls13;
        if tickets.len() >= limit {
            tickets.pop_front();
        }
        tickets.push_back(value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.lock()
            .by_name
            .get_mut(server_name)
            .and_then(|s| s.tls13.pop_back())
    }
}

#[cfg(test)]
mod tests {
    //! Real tickets from an in-memory rustls server: a client handshakes, receives its tickets,
    //! and the store must hand them back one per handshake, bounded.
    use super::*;
    use rustls::client::Resumption;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{
        ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
    };
    use std::sync::Arc;

    struct Pki {
        server: Arc<ServerConfig>,
        roots: RootCertStore,
    }

    fn pki() -> Pki {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        server.send_tls13_tickets = 2;
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        Pki {
            server: Arc::new(server),
            roots,
        }
    }

    fn client_config(pki: &Pki, store: Arc<TicketStore>) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.roots.clone())
            .with_no_client_auth();
        config.resumption = Resumption::store(store);
        Arc::new(config)
    }

    fn transfer(from: &mut Connection, to: &mut Connection) {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).unwrap();
        }
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    /// One handshake (plus the tickets that follow it); returns whether it resumed.
    fn handshake(pki: &Pki, config: &Arc<ClientConfig>) -> bool {
        let name = ServerName::try_from("localhost").unwrap();
        let mut client =
            Connection::Client(ClientConnection::new(Arc::clone(config), name).unwrap());
        let mut server =
            Connection::Server(ServerConnection::new(Arc::clone(&pki.server)).unwrap());
        for _ in 0..4 {
            transfer(&mut client, &mut server);
            transfer(&mut server, &mut client);
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        client.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    #[test]
    fn every_reconnect_of_many_finds_a_ticket() {
        let pki = pki();
        let store = Arc::new(TicketStore::new());
        let config = client_config(&pki, Arc::clone(&store));
        let name = ServerName::try_from("localhost").unwrap();
        // 50 "connections" handshake before any reconnects (as a run starts).
        let first: usize = (0..50).map(|_| usize::from(handshake(&pki, &config))).sum();
        assert!(first >= 49, "only the first handshake is full: {first}");
        assert!(store.tickets(&name) >= 50, "{}", store.tickets(&name));
        // All 50 reconnect at once: rustls's cache (8 tickets) would resume 8 of them.
        let resumed: usize = (0..50).map(|_| usize::from(handshake(&pki, &config))).sum();
        assert_eq!(resumed, 50);
    }

    #[test]
    fn tickets_are_bounded_per_name() {
        let pki = pki();
        let store = Arc::new(TicketStore::with_capacity(5));
        let config = client_config(&pki, Arc::clone(&store));
        for _ in 0..10 {
            handshake(&pki, &config);
        }
        let name = ServerName::try_from("localhost").unwrap();
        assert_eq!(store.tickets(&name), 5);
        let other = ServerName::try_from("example.com").unwrap();
        assert_eq!(store.tickets(&other), 0);
        assert!(store.take_tls13_ticket(&other).is_none());
    }

    #[test]
    fn server_names_are_bounded() {
        let mut servers = Servers::default();
        for i in 0..(MAX_SERVERS + 3) {
            let name = ServerName::try_from(format!("s{i}.example")).unwrap();
            servers.entry(name).kx_hint = Some(NamedGroup::X25519);
        }
        assert_eq!(servers.by_name.len(), MAX_SERVERS);
        assert_eq!(servers.order.len(), MAX_SERVERS);
        let first = ServerName::try_from("s0.example").unwrap();
        assert!(!servers.by_name.contains_key(&first));
    }
}
